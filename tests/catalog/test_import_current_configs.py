"""`catalog import` on the published config.json of 2025 models, then `fit` on the result.

The configs hold the published values (the model repos' config.json; transformers documents
the same shapes as its config classes' defaults: Qwen3MoeConfig, DeepseekV3Config,
Llama4TextConfig, GptOssConfig). A folder with only config.json is counted from its
architecture, as a user's download before the weights arrive would be.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()

QWEN3_30B_A3B = {
    "architectures": ["Qwen3MoeForCausalLM"],
    "model_type": "qwen3_moe",
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "moe_intermediate_size": 768,
    "num_hidden_layers": 48,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "vocab_size": 151936,
    "max_position_embeddings": 40960,
    "tie_word_embeddings": False,
    "use_sliding_window": False,
    "sliding_window": None,
}
DEEPSEEK_V3 = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "model_type": "deepseek_v3",
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "moe_intermediate_size": 2048,
    "num_hidden_layers": 61,
    "num_attention_heads": 128,
    "num_key_value_heads": 128,
    "n_shared_experts": 1,
    "n_routed_experts": 256,
    "num_experts_per_tok": 8,
    "first_k_dense_replace": 3,
    "moe_layer_freq": 1,
    "q_lora_rank": 1536,
    "kv_lora_rank": 512,
    "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128,
    "v_head_dim": 128,
    "vocab_size": 129280,
    "max_position_embeddings": 163840,
    "tie_word_embeddings": False,
    "num_nextn_predict_layers": 1,
    "quantization_config": {
        "activation_scheme": "dynamic",
        "fmt": "e4m3",
        "quant_method": "fp8",
        "weight_block_size": [128, 128],
    },
}
LLAMA4_SCOUT = {
    "architectures": ["Llama4ForConditionalGeneration"],
    "model_type": "llama4",
    "text_config": {
        "model_type": "llama4_text",
        "hidden_size": 5120,
        "intermediate_size": 8192,
        "intermediate_size_mlp": 16384,
        "num_hidden_layers": 48,
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "num_local_experts": 16,
        "num_experts_per_tok": 1,
        "interleave_moe_layer_step": 1,
        "attention_chunk_size": 8192,
        "vocab_size": 202048,
        "max_position_embeddings": 10485760,
        "tie_word_embeddings": False,
    },
    "vision_config": {"model_type": "llama4_vision_model"},
}
GPT_OSS_120B = {
    "architectures": ["GptOssForCausalLM"],
    "model_type": "gpt_oss",
    "hidden_size": 2880,
    "intermediate_size": 2880,
    "num_hidden_layers": 36,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "num_local_experts": 128,
    "num_experts_per_tok": 4,
    "sliding_window": 128,
    "layer_types": ["sliding_attention", "full_attention"] * 18,
    "vocab_size": 201088,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": False,
    "quantization_config": {"quant_method": "mxfp4"},
}


def _import(tmp_path: Path, config: dict[str, Any], model_id: str) -> dict[str, Any]:
    folder = tmp_path / model_id.replace("/", "--")
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    result = runner.invoke(app, ["catalog", "import", str(folder), "--id", model_id, "--json"])
    assert result.exit_code == 0, result.output
    card: dict[str, Any] = json.loads(result.stdout)["model"]
    return card


def _fit(model_id: str, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["fit", model_id, "--gpu", "H100-80GB", *args, "--json"])
    assert result.exit_code in (0, 4), result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.mark.parametrize(
    ("config", "model_id", "total", "active"),
    [
        # Published: 30.5B total, 3.3B activated (Qwen3 model card); Hub total 30,532,122,624.
        (QWEN3_30B_A3B, "test/Qwen3-30B-A3B", 30_532_122_624, 3.3e9),
        # Published: 671B total, 37B activated, without the 14B multi-token-prediction module.
        (DEEPSEEK_V3, "test/DeepSeek-V3", 671e9, 37e9),
        # Text model: ~107.8B total, 17B active (Llama 4 model card: 17B active, 109B with vision).
        (LLAMA4_SCOUT, "test/Llama-4-Scout", 107.8e9, 17.2e9),
        # Published: 116.83B total, 5.13B active per token (gpt-oss model card, Table 1).
        (GPT_OSS_120B, "test/gpt-oss-120b", 116.83e9, 5.13e9),
    ],
)
def test_import_counts_current_architectures(
    tmp_path: Path, config: dict[str, Any], model_id: str, total: float, active: float
) -> None:
    card = _import(tmp_path, config, model_id)
    assert card["params"] == pytest.approx(total, rel=0.005)
    # gpt-oss counts active parameters without the embedding lookup; the others with it.
    embedding = card["architecture"]["vocab_size"] * card["architecture"]["hidden_size"]
    readings = [card["active_params"], card["active_params"] - embedding]
    assert any(r == pytest.approx(active, rel=0.02) for r in readings), readings
    check = runner.invoke(app, ["catalog", "check", "--json"])
    findings = [f for f in json.loads(check.stdout)["findings"] if f["model"] == model_id]
    assert not [f for f in findings if f["level"] == "error"], findings


def test_release_format_and_modalities_are_read(tmp_path: Path) -> None:
    assert _import(tmp_path, GPT_OSS_120B, "test/oss")["weights_format"] == "mxfp4"
    assert _import(tmp_path, DEEPSEEK_V3, "test/dsv3")["weights_format"] == "fp8-block"
    scout = _import(tmp_path, LLAMA4_SCOUT, "test/scout")
    assert scout["input_modalities"] == ["text", "image"]
    assert scout["architecture"]["layer_pattern"] == ["chunked", "chunked", "chunked", "full"]


def test_fit_sizes_moe_and_release_formats_right(tmp_path: Path) -> None:
    _import(tmp_path, QWEN3_30B_A3B, "test/Qwen3-30B-A3B")
    fit = _fit("test/Qwen3-30B-A3B", "--dtype", "bf16", "--context", "8192")
    # 30.5B x 2 bytes = 61 GB of weights: it fits one 80 GB H100 at bf16.
    assert fit["fits"], fit
    assert fit["memory"]["weights_bytes"] == 2 * 30_532_122_624
    assert fit["active_params"] == 3_353_032_704

    _import(tmp_path, GPT_OSS_120B, "test/gpt-oss-120b")
    fit = _fit("test/gpt-oss-120b", "--context", "8192")
    # Without --dtype, sizing starts at the release format: MXFP4 experts, bf16 elsewhere,
    # about 61 GiB, on one H100 (the model card's claim).
    assert fit["quant"] == "mxfp4" and fit["fits"], fit
    assert 60e9 < fit["memory"]["weights_bytes"] < 66e9
    # Half the layers slide over 128 tokens: vLLM keeps only the window there.
    shares = {s["kind"]: s for s in fit["memory"]["kv_cache_by_kind"]}
    assert shares["sliding"]["tokens"] == 128 and shares["full"]["tokens"] == 8192

    _import(tmp_path, DEEPSEEK_V3, "test/DeepSeek-V3")
    fit = _fit("test/DeepSeek-V3", "--dtype", "fp8-block", "--context", "32768")
    latent = fit["memory"]["kv_cache_by_kind"]
    # MLA: (512 latent + 64 rotary) x 2 bytes x 61 layers per token, not 2 x 128 heads x 192.
    assert latent == [
        {
            "kind": "latent",
            "layers": 61,
            "tokens": 32768,
            "bytes_per_token": 61 * 576 * 2,
            "state_bytes": 0,
            "bytes": 61 * 576 * 2 * 32768,
        }
    ]
    assert fit["quant"] == "fp8-block" and not fit["fits"]  # 671B needs more than one GPU
