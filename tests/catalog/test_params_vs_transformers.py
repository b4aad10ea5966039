"""The parameter count formula against real transformers models built on the fly.

Each case builds a tiny random model from a config, saves it, imports the folder and checks that
the count computed from the architecture equals the number of parameters torch holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmselect.catalog import count_params
from llmselect.catalog.importers import import_hf_folder

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

SMALL = {"vocab_size": 128}
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": (
        "LlamaConfig",
        {
            "hidden_size": 64,
            "intermediate_size": 160,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
        },
    ),
    "llama-gqa-bias": (
        "LlamaConfig",
        {
            "hidden_size": 64,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "attention_bias": True,
            "tie_word_embeddings": True,
        },
    ),
    "mistral": (
        "MistralConfig",
        {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "sliding_window": 32,
        },
    ),
    "mixtral": (
        "MixtralConfig",
        {
            "hidden_size": 64,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
        },
    ),
    "qwen2": (
        "Qwen2Config",
        {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "tie_word_embeddings": True,
        },
    ),
    "qwen3": (
        "Qwen3Config",
        {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 32,
        },
    ),
    "gemma": (
        "GemmaConfig",
        {
            "hidden_size": 48,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "head_dim": 32,
        },
    ),
    "gemma2": (
        "Gemma2Config",
        {
            "hidden_size": 48,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
        },
    ),
    "phi": (
        "PhiConfig",
        {
            "hidden_size": 64,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
        },
    ),
    "phi3": (
        "Phi3Config",
        {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "pad_token_id": 0,
        },
    ),
    "gpt_neox": (
        "GPTNeoXConfig",
        {
            "hidden_size": 64,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
        },
    ),
    "falcon-7b-style": (
        "FalconConfig",
        {
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "multi_query": True,
            "parallel_attn": True,
            "bias": False,
        },
    ),
    "falcon-40b-style": (
        "FalconConfig",
        {
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "num_kv_heads": 2,
            "new_decoder_architecture": True,
            "bias": False,
        },
    ),
    "bloom": ("BloomConfig", {"hidden_size": 64, "n_layer": 2, "n_head": 4}),
    "mpt": (
        "MptConfig",
        {"d_model": 64, "n_layers": 2, "n_heads": 4, "expansion_ratio": 4, "max_seq_len": 128},
    ),
    "gpt2": ("GPT2Config", {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 128}),
    "gptj": (
        "GPTJConfig",
        {"n_embd": 64, "n_layer": 2, "n_head": 4, "rotary_dim": 8, "n_positions": 128},
    ),
    "olmo": (
        "OlmoConfig",
        {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "pad_token_id": 1,
        },
    ),
    "olmo2": (
        "Olmo2Config",
        {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "pad_token_id": 1,
        },
    ),
    "stablelm": (
        "StableLmConfig",
        {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "use_qkv_bias": True,
        },
    ),
}

# 2025-2026 architectures: per-layer kinds, experts of their own width, shared experts, dense
# leading layers, latent attention, recurrent layers.
_QWEN_LINEAR = {
    "head_dim": 16,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 16,
    "linear_value_head_dim": 8,
    "linear_conv_kernel_dim": 4,
}
_MAMBA = {
    "mamba_n_heads": 8,
    "mamba_d_head": 16,
    "mamba_d_state": 16,
    "mamba_n_groups": 2,
    "mamba_expand": 2,
}
_BASE4 = {"hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4}
CASES |= {
    "qwen3-moe": (
        "Qwen3MoeConfig",
        {
            **_BASE4,
            "num_key_value_heads": 2,
            "intermediate_size": 96,
            "head_dim": 16,
            "moe_intermediate_size": 32,
            "num_experts": 8,
            "num_experts_per_tok": 2,
        },
    ),
    "gemma3-text": (
        "Gemma3TextConfig",
        {
            **_BASE4,
            "num_hidden_layers": 7,
            "num_key_value_heads": 2,
            "intermediate_size": 96,
            "head_dim": 16,
            "sliding_window": 8,
        },
    ),
    "gpt-oss": (
        "GptOssConfig",
        {
            **_BASE4,
            "num_key_value_heads": 2,
            "intermediate_size": 48,
            "head_dim": 16,
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
            "sliding_window": 8,
        },
    ),
    "llama4-text-maverick-style": (
        "Llama4TextConfig",
        {
            **_BASE4,
            "num_key_value_heads": 2,
            "intermediate_size": 48,
            "intermediate_size_mlp": 96,
            "head_dim": 16,
            "num_local_experts": 4,
            "num_experts_per_tok": 1,
            "interleave_moe_layer_step": 2,
            "attention_chunk_size": 8,
        },
    ),
    "deepseek-v3": (
        "DeepseekV3Config",
        {
            **_BASE4,
            "num_key_value_heads": 4,
            "intermediate_size": 96,
            "moe_intermediate_size": 32,
            "n_routed_experts": 8,
            "num_experts_per_tok": 2,
            "n_shared_experts": 2,
            "first_k_dense_replace": 1,
            "q_lora_rank": 24,
            "kv_lora_rank": 16,
            "qk_rope_head_dim": 8,
            "qk_nope_head_dim": 16,
            "v_head_dim": 12,
            "n_group": 2,
            "topk_group": 1,
        },
    ),
    "deepseek-v2-lite-style": (
        "DeepseekV3Config",
        {
            **_BASE4,
            "num_key_value_heads": 4,
            "intermediate_size": 96,
            "moe_intermediate_size": 32,
            "n_routed_experts": 8,
            "num_experts_per_tok": 2,
            "n_shared_experts": 1,
            "first_k_dense_replace": 2,
            "q_lora_rank": None,
            "kv_lora_rank": 16,
            "qk_rope_head_dim": 8,
            "qk_nope_head_dim": 16,
            "v_head_dim": 16,
            "n_group": 1,
            "topk_group": 1,
        },
    ),
    "glm4-moe": (
        "Glm4MoeConfig",
        {
            **_BASE4,
            "num_key_value_heads": 2,
            "intermediate_size": 96,
            "head_dim": 16,
            "moe_intermediate_size": 32,
            "n_routed_experts": 8,
            "num_experts_per_tok": 2,
            "n_shared_experts": 1,
            "first_k_dense_replace": 1,
            "attention_bias": True,
            "use_qk_norm": True,
            "n_group": 1,
            "topk_group": 1,
        },
    ),
    "smollm3": (
        "SmolLM3Config",
        {
            **_BASE4,
            "num_key_value_heads": 2,
            "intermediate_size": 96,
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
    ),
    "granite-4-h-moe": (
        "GraniteMoeHybridConfig",
        {
            **_BASE4,
            "num_key_value_heads": 2,
            "intermediate_size": 48,
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
            "shared_intermediate_size": 80,
            "layer_types": ["mamba", "attention", "mamba", "mamba"],
            **_MAMBA,
        },
    ),
    "granite-4-h-dense": (
        "GraniteMoeHybridConfig",
        {
            **_BASE4,
            "num_key_value_heads": 2,
            "intermediate_size": 48,
            "num_local_experts": 0,
            "shared_intermediate_size": 80,
            "layer_types": ["mamba", "mamba", "attention", "mamba"],
            **_MAMBA,
        },
    ),
    "qwen3-next": (
        "Qwen3NextConfig",
        {
            **_BASE4,
            "num_key_value_heads": 2,
            "intermediate_size": 96,
            "moe_intermediate_size": 32,
            "shared_expert_intermediate_size": 48,
            "num_experts": 8,
            "num_experts_per_tok": 2,
            **_QWEN_LINEAR,
        },
    ),
    "qwen3.5-moe": (
        "Qwen3_5MoeTextConfig",
        {
            **_BASE4,
            "num_key_value_heads": 2,
            "moe_intermediate_size": 32,
            "shared_expert_intermediate_size": 48,
            "num_experts": 8,
            "num_experts_per_tok": 2,
            **_QWEN_LINEAR,
        },
    ),
    "qwen3.5-dense": (
        "Qwen3_5TextConfig",
        {**_BASE4, "num_key_value_heads": 2, "intermediate_size": 96, **_QWEN_LINEAR},
    ),
    "nemotron-h-dense": (
        "NemotronHConfig",
        {
            **_BASE4,
            "num_hidden_layers": 5,
            "num_key_value_heads": 2,
            "intermediate_size": 96,
            "head_dim": 16,
            "layers_block_type": ["mamba", "mlp", "attention", "mlp", "mamba"],
            "mamba_num_heads": 8,
            "mamba_head_dim": 16,
            "ssm_state_size": 16,
            "n_groups": 2,
        },
    ),
    "nemotron-h-moe": (
        "NemotronHConfig",
        {
            **_BASE4,
            "num_key_value_heads": 2,
            "intermediate_size": 96,
            "head_dim": 16,
            "layers_block_type": ["mamba", "moe", "attention", "mlp"],
            "mamba_num_heads": 8,
            "mamba_head_dim": 16,
            "ssm_state_size": 16,
            "n_groups": 2,
            "n_routed_experts": 4,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": 32,
            "moe_shared_expert_intermediate_size": 48,
        },
    ),
    "falcon-h1": (
        "FalconH1Config",
        {
            **_BASE4,
            "num_key_value_heads": 2,
            "intermediate_size": 96,
            "head_dim": 16,
            "mamba_n_heads": 8,
            "mamba_d_head": 16,
            "mamba_d_ssm": 128,
            "mamba_d_state": 16,
            "mamba_n_groups": 2,
        },
    ),
    "gemma4-31b-style": (
        "Gemma4TextConfig",
        {
            **_BASE4,
            "num_hidden_layers": 6,
            "num_key_value_heads": 2,
            "intermediate_size": 96,
            "head_dim": 16,
            "sliding_window": 8,
            "global_head_dim": 32,
            "num_global_key_value_heads": 1,
            "attention_k_eq_v": True,
            "hidden_size_per_layer_input": 0,
        },
    ),
    "gemma4-e2b-style": (
        "Gemma4TextConfig",
        {
            **_BASE4,
            "num_hidden_layers": 6,
            "num_key_value_heads": 1,
            "intermediate_size": 96,
            "head_dim": 16,
            "sliding_window": 8,
            "global_head_dim": 32,
            "num_kv_shared_layers": 2,
            "use_double_wide_mlp": True,
            "hidden_size_per_layer_input": 8,
            "vocab_size_per_layer_input": 128,
            "layer_types": ["sliding_attention", "full_attention"] * 3,
        },
    ),
    "gemma4-26b-a4b-style": (
        "Gemma4TextConfig",
        {
            **_BASE4,
            "num_hidden_layers": 6,
            "num_key_value_heads": 2,
            "intermediate_size": 96,
            "head_dim": 16,
            "sliding_window": 8,
            "global_head_dim": 32,
            "num_global_key_value_heads": 1,
            "attention_k_eq_v": True,
            "enable_moe_block": True,
            "num_experts": 4,
            "top_k_experts": 2,
            "moe_intermediate_size": 32,
            "hidden_size_per_layer_input": 0,
        },
    ),
    "exaone4": (
        "Exaone4Config",
        {**_BASE4, "num_key_value_heads": 2, "intermediate_size": 96, "sliding_window": 8},
    ),
    "cohere2": (
        "Cohere2Config",
        {
            **_BASE4,
            "num_key_value_heads": 2,
            "intermediate_size": 96,
            "sliding_window": 8,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
    ),
}


def _build(tmp_path: Path, config_class: str, fields: dict[str, Any]) -> tuple[Path, int]:
    folder, params, _ = _build_with_buffers(tmp_path, config_class, fields)
    return folder, params


def _build_with_buffers(
    tmp_path: Path, config_class: str, fields: dict[str, Any]
) -> tuple[Path, int, int]:
    """The saved folder, torch's parameter count, and the persistent buffers saved beside the
    parameters (DeepSeek's routing-correction bias is a buffer the checkpoint stores)."""
    config = getattr(transformers, config_class)(**{**SMALL, **fields})
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    saved = model.state_dict()
    buffers = sum(b.numel() for name, b in model.named_buffers() if name in saved)
    return folder, sum(p.numel() for p in model.parameters()), buffers


@pytest.mark.parametrize("case", sorted(CASES))
def test_count_matches_torch(tmp_path: Path, case: str) -> None:
    config_class, fields = CASES[case]
    folder, expected, buffers = _build_with_buffers(tmp_path, config_class, fields)
    card = import_hf_folder(folder, model_id=f"test/{case}")
    assert card.architecture.is_complete
    assert count_params(card.architecture).total == expected
    # The folder's safetensors headers give the stated count; tied weights are stored once.
    assert card.params == expected + buffers


def test_moe_active_count_uses_only_routed_experts(tmp_path: Path) -> None:
    config_class, fields = CASES["mixtral"]
    folder, total = _build(tmp_path, config_class, fields)
    card = import_hf_folder(folder, model_id="test/moe")
    counted = count_params(card.architecture)
    one_expert = 3 * 64 * 96
    # 4 experts, 2 used per token, 2 layers: two experts' weights per layer are idle.
    assert counted.active == total - 2 * 2 * one_expert
    assert card.active_params == counted.active
