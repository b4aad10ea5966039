"""Memory and time of fine-tuning: full, LoRA and QLoRA.

Memory per device: the base weights (16-bit, or 4-bit NF4 for QLoRA), the trained parameters'
weights, gradients, master copy and optimizer state by recipe (mixed precision with AdamW: 16
bytes each; pure bf16: 8; 8-bit AdamW saves 6 of them), activations (after Korthikanti et al.
2022, "Reducing Activation Recomputation in Large Transformer Models", counted for the layer the
model really has: gated MLP width, RMSNorm's fp32 inputs; plus 5 x a x s^2 x b without fused
attention; with gradient checkpointing only each layer's input, 2 x s x b x h, is kept, and one
layer is recomputed at a time), the logits for the loss and their gradient, and a fixed overhead
(CUDA context and allocator, which torch's own peak-allocated figure does not count).
Time per step comes from the latency model of inference (`sizing/engines.py`), for the engine
training runs on: eager torch (`transformers-eager`) on a GPU, `cpu` on a CPU. The forward and
backward passes' matrix products at the engine's compute efficiency (forward 2 x parameters x
tokens plus attention; the backward twice that for full fine-tuning, once for LoRA, which skips
the frozen weights' gradients; checkpointing adds one more forward), the memory traffic of
the activations and of the optimizer's update at its bandwidth efficiency, or its fixed cost
per layer per pass where that is larger (a launch-bound step), times a measured training factor
(`TRAINING_SLOWDOWN`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from llmselect.catalog import Architecture, count_params
from llmselect.errors import UsageError
from llmselect.sizing.engines import Engine, get_engine
from llmselect.sizing.estimate import prefill_attention_flops
from llmselect.sizing.hardware import Device
from llmselect.sizing.quant import linear_weights

Method = Literal["full", "lora", "qlora"]
Targets = str
"""`attention` (q, k, v and o projections), `all-linear`, or module names: `q_proj,v_proj`."""
Precision = Literal["mixed", "bf16", "fp32"]
"""How a fully trained model's parameters, gradients and optimizer state are kept: `mixed`, bf16
weights and gradients with an fp32 master copy and fp32 state; `bf16`, everything in bf16
(torch's AdamW keeps its state in the parameters' dtype); `fp32`, everything in fp32."""
Optimizer = Literal["adamw", "adamw-8bit", "paged-adamw-8bit", "sgd"]
"""AdamW keeps two moments per parameter; bitsandbytes' 8-bit AdamW keeps them in one byte each
(paged: spilled to host memory under pressure, so the same on-device budget); plain SGD none."""

MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
GROUPS = {"attention": MODULES[:4], "all-linear": MODULES}

TRAINABLE_BYTES = 16
"""Per trainable parameter in mixed precision: bf16 weight and gradient (2 + 2), fp32 master
weight (4) and AdamW's two fp32 moments (8). LoRA adapters are kept in fp32 by peft: 4 + 4 + 8."""


def target_modules(targets: Targets) -> tuple[str, ...]:
    """The projections a LoRA target spec names, in `MODULES` order."""
    if targets in GROUPS:
        return GROUPS[targets]
    names = [n.strip() for n in targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODULES]
    if not names or unknown:
        raise UsageError(
            f"unknown LoRA target {(unknown or [targets])[0]!r}",
            hint="use attention, all-linear, or module names among " + ", ".join(MODULES),
        )
    return tuple(n for n in MODULES if n in names)


def state_bytes_per_param(method: Method, precision: Precision, optimizer: Optimizer) -> float:
    """Bytes per trained parameter: its weight, gradient, master copy and optimizer state."""
    if method != "full":
        weight = grad = 4.0  # peft keeps adapters in fp32 whatever the base's dtype
        master, moment = 0.0, 4.0
    elif precision == "bf16":
        weight = grad = 2.0
        master, moment = 0.0, 2.0
    elif precision == "fp32":
        weight = grad = 4.0
        master, moment = 0.0, 4.0
    else:
        weight = grad = 2.0
        master, moment = 4.0, 4.0
    moments = {"adamw": 2 * moment, "adamw-8bit": 2.0, "paged-adamw-8bit": 2.0, "sgd": 0.0}
    return weight + grad + master + moments[optimizer]


NF4_BYTES = 4.127 / 8
"""4-bit NormalFloat plus double-quantized block constants: about 4.127 bits per weight
(Dettmers et al. 2023, QLoRA, section 3)."""
OVERHEAD_BYTES = 2 * 2**30
TRAINING_SLOWDOWN = 1.37
"""Measured step time over the modelled passes' time, for the three LoRA steps of Llama-2-7B on
an H100 (shared H100 measurements, `finetune_step_memory.jsonl`, 2026-11-22: q,v rank 16 at
4 x 512 without and with checkpointing, 0.168 and 0.223 s; all linear layers rank 64 at 8 x 1024
with checkpointing, 1.400 s): 1.37, 1.25 and 1.40, the median taken. Autograd's bookkeeping,
the loss, the optimizer step and the backward kernels run slower than the prefill the engine's
efficiencies were measured on. Leaving each run out in turn, the other two predict it within
11% (tests/sizing/test_finetune_step.py)."""


class TrainingStep(BaseModel):
    """One optimizer step over `batch` sequences of `seq` tokens on one device."""

    engine: str
    """The engine profile whose efficiencies time it (`transformers-eager`, `cpu`)."""
    flops: float
    compute_s: float
    """The passes' matrix products at the engine's compute efficiency."""
    memory_s: float
    """The memory traffic of the activations, the adapters and the optimizer's update, at its
    bandwidth efficiency."""
    launch_s: float
    """The engine's fixed cost per layer per pass (kernel launches, host work)."""
    seconds: float
    tokens_per_s: float


class FinetuneMemory(BaseModel):
    method: Method
    precision: Precision = "mixed"
    optimizer: Optimizer = "adamw"
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
    step: TrainingStep
    epoch_seconds: float | None
    """Time for one pass over the data, when its size is given: its tokens over the step's
    speed, the devices training data-parallel."""


def lora_params(arch: Architecture, rank: int, targets: Targets) -> int:
    """Adapter parameters: rank x (inputs + outputs) for every targeted matrix of every layer.
    A MoE layer's experts (each of `moe_intermediate_size`) and shared expert count apart from a
    dense layer's MLP."""
    h = arch.hidden_size or 0
    heads, kv, hd = arch.num_attention_heads or 0, arch.num_key_value_heads or 0, arch.head_dim or 0
    chosen = target_modules(targets)
    attention = {
        "q_proj": (h, heads * hd),
        "k_proj": (h, kv * hd),
        "v_proj": (h, kv * hd),
        "o_proj": (heads * hd, h),
    }

    def mlp(width: int) -> list[tuple[int, int]]:
        shapes = {"gate_proj": (h, width), "up_proj": (h, width), "down_proj": (width, h)}
        if arch.mlp != "gated":
            shapes.pop("gate_proj")
        return [shape for name, shape in shapes.items() if name in chosen]

    total = 0
    for index in range(arch.num_hidden_layers or 0):
        shapes = [shape for name, shape in attention.items() if name in chosen]
        if arch.is_moe_layer(index):
            width = arch.moe_intermediate_size or arch.intermediate_size or 0
            shapes += mlp(width) * (arch.num_local_experts or 1)
            if arch.shared_expert_intermediate_size:
                shapes += mlp(arch.shared_expert_intermediate_size)
        else:
            shapes += mlp(arch.intermediate_size or 0)
        total += sum(rank * (fan_in + fan_out) for fan_in, fan_out in shapes)
    return total


def activation_bytes_per_token(arch: Architecture, fused_attention: bool = True) -> int:
    """Bytes one token's activations keep for the backward pass in one layer, at 16 bits:
    attention 10h (norm output, q, k, v, attention output); the MLP's input and its
    intermediates (gated: gate, up, activation, product: 2h + 8i; plain: 2h + 4i plus a mask);
    two norms' inputs, saved in fp32 by RMSNorm (8h) or in 16 bits by LayerNorm (4h).
    Korthikanti et al. 2022 count 34h for GPT (plain MLP of 4h, LayerNorm); the `5 a s`
    attention scores per token come on top without fused attention (added by the caller)."""
    h = arch.hidden_size or 0
    if arch.is_moe:  # a token passes through the experts it uses and the shared one
        width = (arch.num_experts_per_tok or 1) * (
            arch.moe_intermediate_size or arch.intermediate_size or 0
        ) + (arch.shared_expert_intermediate_size or 0)
    else:
        width = arch.intermediate_size or 0
    mlp = 2 * h + 8 * width if arch.mlp == "gated" else 2 * h + 4 * width + h
    norms = 8 * h if arch.norm == "rmsnorm" else 4 * h
    return 10 * h + mlp + norms


def _adapted_width(arch: Architecture, targets: Targets) -> int:
    """Inputs plus outputs of the projections a LoRA adapter sits on, in one layer: the
    activations each adapter reads and writes."""
    h = arch.hidden_size or 0
    q = (arch.num_attention_heads or 0) * (arch.head_dim or 0)
    kv = (arch.num_key_value_heads or 0) * (arch.head_dim or 0)
    i = arch.intermediate_size or 0
    widths = {
        "q_proj": h + q,
        "k_proj": h + kv,
        "v_proj": h + kv,
        "o_proj": q + h,
        "gate_proj": h + i if arch.mlp == "gated" else 0,
        "up_proj": h + i,
        "down_proj": i + h,
    }
    return sum(widths[m] for m in target_modules(targets))


def training_engine(device: Device) -> Engine:
    """The profile that times training: torch runs it eagerly on a GPU; `cpu` on a CPU."""
    return get_engine("transformers-eager" if device.kind == "gpu" else "cpu")


def training_step(
    arch: Architecture,
    device: Device,
    *,
    method: Method,
    seq: int,
    batch: int,
    rank: int = 16,
    targets: Targets = "all-linear",
    checkpointing: bool = True,
    precision: Precision = "mixed",
    optimizer: Optimizer = "adamw",
    engine: Engine | None = None,
) -> TrainingStep:
    """The time of one training step, from the same terms as inference's latency model."""
    engine = engine or training_engine(device)
    params = count_params(arch)
    active = params.active or params.total  # a MoE token multiplies only its experts
    layers = arch.num_hidden_layers or 0
    tokens = seq * batch
    adapters = lora_params(arch, rank, targets) if method != "full" else 0
    trained = adapters if method != "full" else params.total
    forward = 2 * active * tokens + prefill_attention_flops(arch, seq) * batch
    forward += 2 * adapters * tokens
    # Backward: gradients of the activations (as much work as the forward) and of the trained
    # weights (as much again, for the weights that are trained).
    backward = 2 * forward if method == "full" else forward + 2 * adapters * tokens
    forwards = 2 if checkpointing else 1
    flops = forwards * forward + backward
    passes = forwards + 2  # the backward launches about twice the forward's kernels
    # Each pass writes or reads every layer's saved activations once; an adapter also reads and
    # writes its projection's input and output (dropout, scaling, the sum) in 16 bits.
    per_token = activation_bytes_per_token(arch)
    if method != "full":
        per_token += 3 * 2 * _adapted_width(arch, targets)
    traffic = float(per_token * tokens * layers * passes)
    # The optimizer reads and writes every trained parameter's weight, gradient and state.
    traffic += 2 * trained * state_bytes_per_param(method, precision, optimizer)
    compute_s = flops / (device.bf16_flops * engine.compute_efficiency)
    memory_s = traffic / (device.memory_bandwidth * engine.bandwidth_efficiency)
    launch_s = passes * layers * engine.prefill_overhead_per_layer_s
    seconds = TRAINING_SLOWDOWN * max(compute_s + memory_s, launch_s)
    return TrainingStep(
        engine=engine.id,
        flops=flops,
        compute_s=compute_s,
        memory_s=memory_s,
        launch_s=launch_s,
        seconds=seconds,
        tokens_per_s=tokens / seconds,
    )


class FinetunePlan(BaseModel):
    """`fit --finetune`: what training `model` needs on `count` devices."""

    model: str
    device: str
    count: int
    memory: FinetuneMemory

    def to_json(self) -> dict[str, Any]:
        hardware = f"{self.count}x {self.device}" if self.count > 1 else self.device
        return {
            "model": self.model,
            "hardware": hardware,
            "finetune": self.memory.model_dump(mode="json"),
        }


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
    precision: Precision = "mixed",
    optimizer: Optimizer = "adamw",
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
    state = round(trainable * state_bytes_per_param(method, precision, optimizer))

    layers, h = arch.num_hidden_layers or 0, arch.hidden_size or 0
    heads = arch.num_attention_heads or 0
    tokens = seq * batch
    per_layer = activation_bytes_per_token(arch) * tokens
    if not fused_attention:
        per_layer += 5 * heads * seq * seq * batch
    # With checkpointing: each layer's input, plus one layer recomputed at a time.
    checkpointed = layers * 2 * tokens * h + per_layer
    activations = checkpointed if checkpointing else layers * per_layer
    # bf16 logits, their fp32 copy for the loss, and its fp32 gradient.
    logits = tokens * (arch.vocab_size or 0) * (2 + 4 + 4)

    # Data-parallel replicas hold everything; sharding (FSDP/ZeRO) is not modelled here.
    used = base + state + activations + logits + OVERHEAD_BYTES
    step = training_step(
        arch,
        device,
        method=method,
        seq=seq,
        batch=batch,
        rank=rank,
        targets=targets,
        checkpointing=checkpointing,
        precision=precision,
        optimizer=optimizer,
    )
    epoch = None
    if examples and tokens_per_example:
        epoch = examples * tokens_per_example / (step.tokens_per_s * devices)
    return FinetuneMemory(
        method=method,
        precision=precision,
        optimizer=optimizer,
        trainable_params=trainable,
        base_weights_bytes=round(base),
        trainable_state_bytes=state,
        activations_bytes=round(activations),
        logits_bytes=round(logits),
        overhead_bytes=OVERHEAD_BYTES,
        total_bytes=round(used),
        available_bytes=device.memory_bytes,
        fits=used <= device.memory_bytes,
        step=step,
        epoch_seconds=epoch,
    )
