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
from tiny_architectures import CURRENT

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

CASES |= CURRENT


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
