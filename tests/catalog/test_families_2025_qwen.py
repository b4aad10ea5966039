"""Facts of the Qwen3, Qwen3-Next, Qwen3.5 and Qwen3.6 cards.

The counts were checked against the Hub's safetensors totals when the cards were written: the
hybrid Qwen3-Next/3.5 checkpoints hold the language model, one multi-token-prediction (MTP)
layer and (3.5/3.6) a vision encoder, and the cards record the language model only. These tests
pin that decomposition and the structure behind it, so an edit of a field cannot silently change
what a card means.
"""

from __future__ import annotations

import pytest

from llmselect.catalog import count_params, load_builtin
from llmselect.catalog.schema import LayerKind, ModelCard

CATALOG = load_builtin()


def card(model_id: str) -> ModelCard:
    return CATALOG.get(model_id)


@pytest.mark.parametrize(
    ("model_id", "tied"),
    [
        ("Qwen/Qwen3-0.6B", True),
        ("Qwen/Qwen3-1.7B", True),
        ("Qwen/Qwen3-4B", True),
        ("Qwen/Qwen3-8B", False),
        ("Qwen/Qwen3-14B", False),
        ("Qwen/Qwen3-32B", False),
    ],
)
def test_qwen3_dense_shapes(model_id: str, tied: bool) -> None:
    arch = card(model_id).architecture
    assert arch.model_type == "qwen3"
    assert arch.qk_norm == "per-head" and arch.head_dim == 128
    assert arch.attention_bias == "none"
    assert arch.tie_word_embeddings is tied
    assert arch.context_length == 40960
    assert card(model_id).licenses.weights == "apache-2.0"


def test_qwen3_small_hub_totals_include_an_untied_head_copy() -> None:
    # The Hub counts 751,632,384 and 2,031,739,904: the tied count plus a stored lm_head copy.
    for model_id, hub in (("Qwen/Qwen3-0.6B", 751_632_384), ("Qwen/Qwen3-1.7B", 2_031_739_904)):
        arch = card(model_id).architecture
        assert card(model_id).params + arch.vocab_size * arch.hidden_size == hub


def test_qwen3_hybrid_models_finetune_their_base() -> None:
    for size in ("0.6B", "1.7B", "4B", "8B", "14B", "30B-A3B"):
        post = card(f"Qwen/Qwen3-{size}")
        assert post.base_model == f"Qwen/Qwen3-{size}-Base"
        assert card(post.base_model).architecture.context_length == 32768
    for no_base in ("Qwen/Qwen3-32B", "Qwen/Qwen3-235B-A22B", "Qwen/Qwen3-4B-Instruct-2507"):
        assert card(no_base).base_model is None


@pytest.mark.parametrize(
    ("model_id", "experts", "width", "active"),
    [
        ("Qwen/Qwen3-30B-A3B", 128, 768, 3_353_032_704),
        ("Qwen/Qwen3-235B-A22B", 128, 1536, 22_190_763_520),
        ("Qwen/Qwen3-Coder-480B-A35B-Instruct", 160, 2560, 35_474_765_312),
    ],
)
def test_qwen3_moe_has_no_shared_expert(
    model_id: str, experts: int, width: int, active: int
) -> None:
    arch = card(model_id).architecture
    assert arch.num_local_experts == experts and arch.num_experts_per_tok == 8
    assert arch.moe_intermediate_size == width
    assert arch.shared_expert_intermediate_size is None
    counted = count_params(arch)
    assert counted.moe_layers == arch.num_hidden_layers
    assert counted.active == active == card(model_id).active_params


def test_qwen3_next_layers_and_mtp_layer() -> None:
    nxt = card("Qwen/Qwen3-Next-80B-A3B-Instruct")
    arch = nxt.architecture
    kinds = arch.layer_kinds()
    assert kinds.count(LayerKind.gated_deltanet) == 36 and kinds.count(LayerKind.full) == 12
    assert kinds[3] == LayerKind.full and kinds[0] == LayerKind.gated_deltanet
    assert arch.attention_output_gate and arch.shared_expert_gate
    # The Hub total (81,324,862,720) adds one MTP layer of 1,650,471,424 parameters.
    assert count_params(arch).total + 1_650_471_424 == 81_324_862_720
    # Qwen3-Coder-Next ships without the MTP layer: its Hub total is the architecture's count.
    assert count_params(card("Qwen/Qwen3-Coder-Next").architecture).total == 79_674_391_296


@pytest.mark.parametrize(
    ("model_id", "mtp", "vision", "hub"),
    [
        ("Qwen/Qwen3.5-0.8B", 20_452_864, 100_592_896, 873_438_784),
        ("Qwen/Qwen3.5-2B", 60_828_160, 331_416_576, 2_274_069_824),
        ("Qwen/Qwen3.5-4B", 120_599_552, 333_514_240, 4_659_865_088),
        ("Qwen/Qwen3.5-9B", 243_290_624, 456_010_480, 9_653_104_368),
        ("Qwen/Qwen3.5-27B", 424_699_392, 460_730_096, 27_781_427_952),
        ("Qwen/Qwen3.5-35B-A3B", 844_640_768, 446_571_248, 35_951_822_704),
        ("Qwen/Qwen3.5-122B-A10B", 2_523_679_232, 451_290_864, 125_086_497_008),
        ("Qwen/Qwen3.5-397B-A17B", 6_595_568_128, 456_010_480, 403_397_928_944),
    ],
)
def test_qwen35_hub_total_is_language_model_mtp_and_vision(
    model_id: str, mtp: int, vision: int, hub: int
) -> None:
    c = card(model_id)
    assert c.params == count_params(c.architecture).total
    assert c.params + mtp + vision == hub
    assert c.input_modalities == ["text", "image", "video"]
    assert c.architecture.layer_pattern == [
        LayerKind.gated_deltanet,
        LayerKind.gated_deltanet,
        LayerKind.gated_deltanet,
        LayerKind.full,
    ]


def test_qwen36_shares_qwen35_shapes() -> None:
    for size in ("27B", "35B-A3B"):
        q36, q35 = card(f"Qwen/Qwen3.6-{size}"), card(f"Qwen/Qwen3.5-{size}")
        assert q36.family == "qwen3.6" and q35.family == "qwen3.5"
        assert q36.architecture == q35.architecture
        assert q36.params == q35.params


def test_published_scores_name_their_setup() -> None:
    ids = [c.id for c in CATALOG if c.family in ("qwen3", "qwen3-next", "qwen3.5", "qwen3.6")]
    assert len(ids) == 40
    for model_id in ids:
        for bench in card(model_id).benchmarks:
            assert bench.origin == "published" and bench.setup and bench.date
            # LiveCodeBench v5 and v6 are different problem sets; never mixed under one name.
            assert bench.name != "published/livecodebench"
