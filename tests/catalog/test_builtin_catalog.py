"""The built-in catalog: every entry validates, is sourced, and its numbers agree."""

from __future__ import annotations

import pytest

from llmselect.catalog import ModelCard, count_params, load_builtin

CATALOG = load_builtin()
CARDS = list(CATALOG)
COMPLETE = [c for c in CARDS if c.architecture.is_complete]


def test_catalog_is_large_enough() -> None:
    assert len(CARDS) >= 80


@pytest.mark.parametrize("card", COMPLETE, ids=lambda c: c.id)
def test_parameter_count_matches_architecture(card: ModelCard) -> None:
    assert card.params is not None
    counted = count_params(card.architecture)
    assert abs(counted.total - card.params) / card.params < 0.01, (
        f"{card.id}: architecture gives {counted.total:,}, card states {card.params:,}"
    )
    if card.architecture.is_moe:
        assert card.active_params is not None, f"{card.id}: MoE needs active_params"
        assert abs(counted.active - card.active_params) / card.active_params < 0.01
    else:
        assert card.active_params is None


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.id)
def test_every_fact_group_has_a_source(card: ModelCard) -> None:
    assert card.params, f"{card.id}: no parameter count"
    assert card.sources.params, f"{card.id}: no source for params"
    assert card.sources.licenses, f"{card.id}: no source for licenses"
    assert card.release_date and card.sources.release_date, f"{card.id}: release date unsourced"
    if card.architecture.is_complete:
        assert len(set(card.sources.architecture)) >= 2, (
            f"{card.id}: architecture needs two independent sources"
        )
    if card.base_model:
        assert card.sources.lineage, f"{card.id}: lineage unsourced"
        assert card.base_model_relation is not None
    for bench in card.benchmarks:
        assert bench.source


@pytest.mark.parametrize("card", [c for c in CARDS if c.base_model], ids=lambda c: c.id)
def test_base_models_are_in_the_catalog(card: ModelCard) -> None:
    assert card.base_model in CATALOG, f"{card.id}: base_model {card.base_model} not in catalog"


def test_the_alpaca_data_has_one_license_wherever_it_is_used() -> None:
    # Released CC BY-NC 4.0 by Stanford, and generated with text-davinci-003, so OpenAI's terms
    # apply too: every card that was tuned on it must say both.
    alpaca = [
        (card.id, ds.license)
        for card in CARDS
        for ds in card.licenses.data.datasets
        if "alpaca" in ds.name.lower() and "gpt4" not in ds.name.lower()
    ]
    assert len(alpaca) >= 3
    assert {lic for _, lic in alpaca} == {"cc-by-nc-4.0 and openai-terms"}, alpaca
