"""The cache estimate against what transformers really allocates, per kind of layer.

Each case builds a tiny random model, imports its folder as a user would, runs one forward pass
over a prompt longer than any window, and weighs every tensor the returned cache holds: keys and
values of attention layers, the latent of multi-head latent attention, the convolution and
recurrent states of Mamba-2 and Gated DeltaNet layers. The estimate for transformers' dynamic
cache must give the same bytes for every kind of layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmselect.catalog.importers import import_hf_folder
from llmselect.sizing.engines import get_engine
from llmselect.sizing.estimate import cache_shares

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

BATCH, PROMPT = 2, 20
BASE = {
    "vocab_size": 128,
    "hidden_size": 64,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 96,
}
LINEAR = {
    "head_dim": 16,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 16,
    "linear_value_head_dim": 8,
    "linear_conv_kernel_dim": 4,
}
CASES: dict[str, tuple[str, dict[str, Any], set[str]]] = {
    "qwen3 (full)": ("Qwen3Config", {"head_dim": 16}, {"full"}),
    "gemma3 (sliding + full)": (
        "Gemma3TextConfig",
        {"num_hidden_layers": 7, "head_dim": 16, "sliding_window": 8},
        {"sliding", "full"},
    ),
    "gpt-oss (sliding + full, sinks)": (
        "GptOssConfig",
        {"head_dim": 16, "num_local_experts": 4, "num_experts_per_tok": 2, "sliding_window": 8},
        {"sliding", "full"},
    ),
    "llama4 (chunked + full)": (
        "Llama4TextConfig",
        {
            "head_dim": 16,
            "intermediate_size_mlp": 128,
            "num_local_experts": 4,
            "num_experts_per_tok": 1,
            "attention_chunk_size": 8,
        },
        {"chunked", "full"},
    ),
    "deepseek-v3 (latent)": (
        "DeepseekV3Config",
        {
            "num_key_value_heads": 4,
            "moe_intermediate_size": 32,
            "n_routed_experts": 8,
            "num_experts_per_tok": 2,
            "n_shared_experts": 1,
            "first_k_dense_replace": 1,
            "q_lora_rank": 24,
            "kv_lora_rank": 16,
            "qk_rope_head_dim": 8,
            "qk_nope_head_dim": 16,
            "v_head_dim": 12,
            "n_group": 2,
            "topk_group": 1,
        },
        {"latent"},
    ),
    "granite-4-h (mamba2 + full)": (
        "GraniteMoeHybridConfig",
        {
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
            "shared_intermediate_size": 48,
            "layer_types": ["mamba", "attention", "mamba", "mamba"],
            "mamba_n_heads": 8,
            "mamba_d_head": 16,
            "mamba_d_state": 16,
            "mamba_n_groups": 2,
            "mamba_expand": 2,
        },
        {"mamba2", "full"},
    ),
    "nemotron-h (mamba2 + full, MLP blocks)": (
        "NemotronHConfig",
        {
            "layers_block_type": ["mamba", "moe", "attention", "mlp"],
            "head_dim": 16,
            "mamba_num_heads": 8,
            "mamba_head_dim": 16,
            "ssm_state_size": 16,
            "n_groups": 2,
            "n_routed_experts": 4,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": 32,
            "moe_shared_expert_intermediate_size": 48,
        },
        {"mamba2", "full"},
    ),
    "falcon-h1 (attention and mamba2 side by side)": (
        "FalconH1Config",
        {
            "head_dim": 16,
            "mamba_n_heads": 8,
            "mamba_d_head": 16,
            "mamba_d_ssm": 128,
            "mamba_d_state": 16,
            "mamba_n_groups": 2,
        },
        {"hybrid-mamba2"},
    ),
    "gemma4 (global layers shaped apart, shared caches)": (
        "Gemma4TextConfig",
        {
            "num_hidden_layers": 6,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "sliding_window": 8,
            "global_head_dim": 32,
            "num_global_key_value_heads": 1,
            "attention_k_eq_v": True,
            "num_kv_shared_layers": 2,
            "hidden_size_per_layer_input": 8,
            "vocab_size_per_layer_input": 128,
            "layer_types": ["sliding_attention", "full_attention"] * 3,
        },
        {"sliding", "full"},
    ),
    "qwen3.5-moe (gated deltanet + full)": (
        "Qwen3_5MoeTextConfig",
        {
            "moe_intermediate_size": 32,
            "shared_expert_intermediate_size": 48,
            "num_experts": 8,
            "num_experts_per_tok": 2,
            **LINEAR,
        },
        {"gated-deltanet", "full"},
    ),
}


def _tensor_bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size() if value.dim() else 0
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(v) for v in value)
    return 0


@pytest.mark.parametrize("case", sorted(CASES))
def test_cache_bytes_per_layer_kind_equal_transformers(tmp_path: Path, case: str) -> None:
    config_class, fields, kinds = CASES[case]
    config = getattr(transformers, config_class)(**{**BASE, **fields})
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    model.save_pretrained(tmp_path / "model")
    card = import_hf_folder(tmp_path / "model", model_id=f"test/{config_class}")

    with torch.no_grad():
        out = model(torch.randint(3, 120, (BATCH, PROMPT)), use_cache=True)
    measured: dict[str, int] = {}
    labels = [
        "latent" if card.architecture.uses_mla and kind.value == "full" else kind.value
        for kind in card.architecture.layer_kinds()
    ]
    for label, layer in zip(labels, out.past_key_values.layers, strict=True):
        held = _tensor_bytes(vars(layer))
        if held:  # MLP-only blocks hold an empty placeholder
            measured[label] = measured.get(label, 0) + held

    # The tiny model runs in fp32: its cache is fp32 too.
    shares = cache_shares(card.architecture, PROMPT, get_engine("transformers-eager"), "fp32")
    estimated = {share.kind: share.bytes * BATCH for share in shares}
    assert set(estimated) == kinds
    assert estimated == measured
