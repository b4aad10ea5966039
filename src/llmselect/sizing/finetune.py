"""Memory and time of fine-tuning: full, LoRA and QLoRA.

Memory per device: the base weights (16-bit, or 4-bit NF4 for QLoRA), the trainable parameters'
16-bit weights, gradients, fp32 master copy and AdamW moments (16 bytes each in mixed precision),
activations (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models": 34 x s x b x h bytes per layer with 16-bit activations, plus 5 x a x s^2 x b without
fused attention; with gradient checkpointing only each layer's input, 2 x s x b x h, is kept,
and one layer is recomputed at a time), the fp32 logits and their gradient, and a fixed overhead.
Time: 6 x parameters x tokens FLOPs for full fine-tuning (forward 2, backward 4); LoRA skips the
frozen weights' gradients (about 4 x parameters x tokens); checkpointing adds one more forward.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from llmselect.catalog import Architecture, count_params
from llmselect.sizing.hardware import Device
from llmselect.sizing.quant import linear_weights

Method = Literal["full", "lora", "qlora"]
Targets = Literal["attention", "all-linear"]

TRAINABLE_BYTES = 16
"""Per trainable parameter in mixed precision: bf16 weight and gradient (2 + 2), fp32 master
weight (4) and AdamW's two fp32 moments (8)."""
NF4_BYTES = 4.127 / 8
"""4-bit NormalFloat plus double-quantized block constants: about 4.127 bits per weight
(Dettmers et al. 2023, QLoRA, section 3)."""
DEFAULT_MFU = 0.40
"""Model FLOPs utilization assumed for training (PaLM reports 46%; 30-50% is typical)."""
OVERHEAD_BYTES = 2 * 2**30


class FinetuneMemory(BaseModel):
    method: Method
    trainable_params: int
    base_weights_bytes: int
    trainable_state_bytes: int
    """Weights, gradients, master copy and optimizer moments of the trained parameters."""
    activations_bytes: int
    logits_bytes: int
    overhead_bytes: int
    total_bytes: int
    available_bytes: int
    fits: bool
    epoch_seconds: float | None
    """Time for one pass over the data, when its size is given."""


def lora_params(arch: Architecture, rank: int, targets: Targets) -> int:
    """Adapter parameters: rank x (inputs + outputs) for every targeted matrix of every layer.
    A MoE layer's experts (each of `moe_intermediate_size`) and shared expert count apart from a
    dense layer's MLP."""
    h = arch.hidden_size or 0
    heads, kv, hd = arch.num_attention_heads or 0, arch.num_key_value_heads or 0, arch.head_dim or 0
    attention = [(h, heads * hd), (h, kv * hd), (h, kv * hd), (heads * hd, h)]

    def mlp(width: int) -> list[tuple[int, int]]:
        return [(h, width), (width, h)] + ([(h, width)] if arch.mlp == "gated" else [])

    total = 0
    for index in range(arch.num_hidden_layers or 0):
        shapes = list(attention)
        if targets == "all-linear":
            if arch.is_moe_layer(index):
                width = arch.moe_intermediate_size or arch.intermediate_size or 0
                shapes += mlp(width) * (arch.num_local_experts or 1)
                if arch.shared_expert_intermediate_size:
                    shapes += mlp(arch.shared_expert_intermediate_size)
            else:
                shapes += mlp(arch.intermediate_size or 0)
        total += sum(rank * (fan_in + fan_out) for fan_in, fan_out in shapes)
    return total


def finetune_memory(
    arch: Architecture,
    device: Device,
    devices: int,
    *,
    method: Method,
    seq: int,
    batch: int,
    rank: int = 16,
    targets: Targets = "all-linear",
    checkpointing: bool = True,
    fused_attention: bool = True,
    examples: int | None = None,
    tokens_per_example: int | None = None,
    mfu: float = DEFAULT_MFU,
) -> FinetuneMemory:
    total = count_params(arch).total
    if method == "full":
        trainable = total
        base = 0.0  # the trained weights are the model: counted in the trainable state
    else:
        trainable = lora_params(arch, rank, targets)
        if method == "qlora":
            # Linear layers in NF4; embeddings, LM head and norms stay 16-bit.
            linear = linear_weights(arch)
            base = linear * NF4_BYTES + (total - linear) * 2
        else:
            base = total * 2.0
    state = trainable * TRAINABLE_BYTES

    layers, h = arch.num_hidden_layers or 0, arch.hidden_size or 0
    heads = arch.num_attention_heads or 0
    per_layer = 34 * seq * batch * h + (0 if fused_attention else 5 * heads * seq * seq * batch)
    # With checkpointing: each layer's input, plus one layer recomputed at a time.
    checkpointed = layers * 2 * seq * batch * h + per_layer
    activations = checkpointed if checkpointing else layers * per_layer
    logits = 2 * seq * batch * (arch.vocab_size or 0) * 4  # fp32 logits and their gradient

    # Data-parallel replicas hold everything; sharding (FSDP/ZeRO) is not modelled here.
    used = base + state + activations + logits + OVERHEAD_BYTES
    epoch = None
    if examples and tokens_per_example:
        tokens = examples * tokens_per_example
        per_token = 6 if method == "full" else 4
        if checkpointing:
            per_token += 2
        epoch = per_token * total * tokens / (device.bf16_flops * devices * mfu)
    return FinetuneMemory(
        method=method,
        trainable_params=trainable,
        base_weights_bytes=round(base),
        trainable_state_bytes=state,
        activations_bytes=round(activations),
        logits_bytes=round(logits),
        overhead_bytes=OVERHEAD_BYTES,
        total_bytes=round(used),
        available_bytes=device.memory_bytes,
        fits=used <= device.memory_bytes,
        epoch_seconds=epoch,
    )
