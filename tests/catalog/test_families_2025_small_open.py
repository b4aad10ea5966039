"""The 2025-2026 small and mid-size open families (Gemma 3/4, Phi-4, Granite 3.x/4.0, SmolLM3,
OLMo 2/3, Falcon 3): the facts that the parameter count and sizing lean on."""

from __future__ import annotations

import pytest

from llmselect.catalog.catalog import load_builtin
from llmselect.catalog.params import count_params
from llmselect.catalog.schema import LayerKind

CATALOG = load_builtin()


def card(model_id: str):
    return CATALOG.get(model_id)


@pytest.mark.parametrize(
    "model_id, window",
    [("google/gemma-3-270m", 512), ("google/gemma-3-1b-it", 512), ("google/gemma-3-27b-it", 1024)],
)
def test_gemma3_has_five_local_layers_per_global_one(model_id: str, window: int) -> None:
    arch = card(model_id).architecture
    kinds = arch.layer_kinds()
    assert kinds[:6] == [LayerKind.sliding] * 5 + [LayerKind.full]
    assert arch.sliding_window == window


def test_gemma3_multimodal_cards_count_the_text_decoder() -> None:
    c = card("google/gemma-3-4b-it")
    assert c.input_modalities == ["text", "image"]
    assert c.params == 3_880_099_328  # keras-hub's text-only preset, not the 4.30B checkpoint
    assert abs(count_params(c.architecture).total - c.params) / c.params < 1e-4


def test_granite_hybrids_count_to_the_hub_totals() -> None:
    tiny = card("ibm-granite/granite-4.0-h-tiny")
    kinds = tiny.architecture.layer_kinds()
    assert kinds.count(LayerKind.mamba2) == 36 and kinds.count(LayerKind.full) == 4
    counted = count_params(tiny.architecture)
    assert counted.total == 6_939_037_248  # the Hub's safetensors total
    assert counted.active == tiny.active_params
    micro = card("ibm-granite/granite-4.0-h-micro")
    assert count_params(micro.architecture).total == 3_191_396_096


# Gemma 4: the text model's stored values, one layer scalar per layer more than the count.
GEMMA4 = {
    "google/gemma-4-31B-it": (30_697_345_340, 60),
    "google/gemma-4-26B-A4B-it": (25_233_141_790, 30),
    "google/gemma-4-E4B-it": (7_463_013_418, 42),
    "google/gemma-4-E2B-it": (4_628_569_379, 35),
}


@pytest.mark.parametrize("model_id", sorted(GEMMA4))
def test_gemma4_counts_the_text_model_exactly(model_id: str) -> None:
    c = card(model_id)
    params, layers = GEMMA4[model_id]
    assert c.architecture.is_complete
    assert c.params == params
    assert count_params(c.architecture).total == params - layers  # layer scalars are buffers
    assert c.architecture.num_hidden_layers == layers
    assert c.architecture.layer_kinds()[-1] == LayerKind.full
    assert c.licenses.weights == "apache-2.0"


def test_gemma4_large_models_shape_their_global_layers_apart() -> None:
    dense = card("google/gemma-4-31B-it")
    arch = dense.architecture
    kinds = arch.layer_kinds()
    assert kinds.count(LayerKind.sliding) == 50 and kinds.count(LayerKind.full) == 10
    assert kinds[:6] == [LayerKind.sliding] * 5 + [LayerKind.full]
    assert arch.sliding_window == 1024
    assert arch.attention_shape(LayerKind.full) == (512, 4)
    assert arch.attention_shape(LayerKind.sliding) == (256, 16)
    assert arch.attention_k_eq_v
    assert dense.input_modalities == ["text", "image", "video"]

    moe = card("google/gemma-4-26B-A4B-it")
    arch = moe.architecture
    assert arch.attention_shape(LayerKind.full) == (512, 2)
    assert arch.moe_beside_mlp and arch.intermediate_size == 2112
    assert (arch.num_local_experts, arch.num_experts_per_tok) == (128, 8)
    assert arch.moe_intermediate_size == 704
    assert moe.active_params == count_params(arch).active == 3_822_530_560


def test_gemma4_small_models_share_caches_and_embed_per_layer() -> None:
    e2b = card("google/gemma-4-E2B-it").architecture
    assert e2b.layer_kinds()[:5] == [LayerKind.sliding] * 4 + [LayerKind.full]
    assert e2b.num_kv_shared_layers == 20 and e2b.double_wide_mlp
    assert [e2b.kv_shared(i) for i in (14, 15)] == [False, True]
    e4b = card("google/gemma-4-E4B-it").architecture
    assert e4b.layer_kinds()[:6] == [LayerKind.sliding] * 5 + [LayerKind.full]
    assert e4b.num_kv_shared_layers == 18 and not e4b.double_wide_mlp
    for arch in (e2b, e4b):
        assert arch.sliding_window == 512 and arch.context_length == 131072
        assert (arch.hidden_size_per_layer_input, arch.vocab_size_per_layer_input) == (256, 262144)
        assert arch.global_num_key_value_heads is None and not arch.attention_k_eq_v
    assert card("google/gemma-4-E2B").input_modalities == ["text", "image", "video", "audio"]


def test_olmo3_uses_three_sliding_layers_per_full_one() -> None:
    arch = card("allenai/Olmo-3-1125-32B").architecture
    assert arch.layer_kinds()[:4] == [LayerKind.sliding] * 3 + [LayerKind.full]
    assert arch.qk_norm == "full"
