"""Falcon-H1 and Falcon-H1R: the card facts that the parameter counter and sizing lean on."""

from __future__ import annotations

import pytest

from llmselect.catalog.catalog import load_builtin
from llmselect.catalog.params import count_params
from llmselect.catalog.schema import LayerKind, ModelCard

CATALOG = load_builtin()
FAMILY = [card for card in CATALOG if card.family == "falcon-h1"]
SIZES = ["0.5B", "1.5B", "1.5B-Deep", "3B", "7B", "34B"]


def test_every_size_has_a_base_and_an_instruct_card() -> None:
    ids = {card.id for card in FAMILY}
    for size in SIZES:
        base, instruct = f"tiiuae/Falcon-H1-{size}-Base", f"tiiuae/Falcon-H1-{size}-Instruct"
        assert {base, instruct} <= ids, size
        assert CATALOG.get(instruct).base_model == base
    assert CATALOG.get("tiiuae/Falcon-H1R-7B").base_model == "tiiuae/Falcon-H1-7B-Base"


def test_every_layer_runs_attention_and_mamba2_side_by_side() -> None:
    for card in FAMILY:
        arch = card.architecture
        assert arch.layer_pattern == [LayerKind.hybrid_mamba2], card.id
        assert set(arch.layer_kinds()) == {LayerKind.hybrid_mamba2}, card.id
        assert len(arch.layer_kinds()) == arch.num_hidden_layers, card.id
        # The MLP follows the two mixers in the same layer: no MLP blocks of their own.
        assert not arch.mlp_in_own_blocks and not arch.tie_word_embeddings, card.id
        assert (arch.attention_bias, arch.mlp_bias) == ("none", False), card.id
        heads, d_head = arch.mamba_n_heads, arch.mamba_d_head
        assert heads is not None and d_head is not None and heads * d_head in (1536, 3072, 4096)


def test_the_mamba_norm_is_off_only_on_the_smallest_size() -> None:
    for card in FAMILY:
        assert card.architecture.mamba_norm == ("0.5B" not in card.id), card.id


@pytest.mark.parametrize(
    "card", [c for c in FAMILY if c.architecture.is_complete], ids=lambda c: c.id
)
def test_complete_cards_count_to_their_params(card: ModelCard) -> None:
    assert card.params is not None
    assert abs(count_params(card.architecture).total - card.params) / card.params < 1e-3


@pytest.mark.parametrize(
    "model_id, hub_total",
    [
        ("tiiuae/Falcon-H1-0.5B-Base", 521_411_104),
        ("tiiuae/Falcon-H1-1.5B-Deep-Base", 1_554_872_208),
        ("tiiuae/Falcon-H1-3B-Base", 3_149_387_264),
        ("tiiuae/Falcon-H1-7B-Base", 7_585_648_736),
        ("tiiuae/Falcon-H1-7B-Instruct", 7_585_654_880),
    ],
)
def test_the_hub_totals_found_are_the_exact_count(model_id: str, hub_total: int) -> None:
    card = CATALOG.get(model_id)
    assert card.params == count_params(card.architecture).total == hub_total


def test_34b_uses_four_kv_heads_and_two_mamba_groups() -> None:
    arch = CATALOG.get("tiiuae/Falcon-H1-34B-Instruct").architecture
    assert (arch.num_attention_heads, arch.num_key_value_heads) == (20, 4)
    assert (arch.mamba_n_heads, arch.mamba_d_head, arch.mamba_n_groups) == (32, 128, 2)
    assert arch.context_length == 262_144


def test_falcon_h1r_shape_is_the_7b_but_its_vocabulary_is_unsourced() -> None:
    card = CATALOG.get("tiiuae/Falcon-H1R-7B")
    assert not card.architecture.is_complete
    assert card.architecture.missing_fields() == ["vocab_size"]
    base = CATALOG.get("tiiuae/Falcon-H1-7B-Base").architecture
    for field in ("num_hidden_layers", "hidden_size", "mamba_n_heads", "mamba_d_head"):
        assert getattr(card.architecture, field) == getattr(base, field), field


def test_weights_are_under_the_tii_falcon_license() -> None:
    for card in FAMILY:
        assert (card.licenses.weights, card.licenses.code) == (
            "falcon-llm-license",
            "apache-2.0",
        ), card.id


def test_published_scores_carry_their_setup() -> None:
    instruct = CATALOG.get("tiiuae/Falcon-H1-7B-Instruct")
    scores = {b.name: b.value for b in instruct.benchmarks}
    assert scores["published/mmlu-pro"] == 51.75 and scores["published/ifeval"] == 85.35
    for card in FAMILY:
        for bench in card.benchmarks:
            assert bench.origin == "published" and bench.setup and bench.date, card.id
