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


def test_gemma4_architecture_is_left_incomplete() -> None:
    for model_id in ("google/gemma-4-31B-it", "google/gemma-4-26B-A4B-it"):
        c = card(model_id)
        assert not c.architecture.is_complete
        assert c.licenses.weights == "apache-2.0"


def test_olmo3_uses_three_sliding_layers_per_full_one() -> None:
    arch = card("allenai/Olmo-3-1125-32B").architecture
    assert arch.layer_kinds()[:4] == [LayerKind.sliding] * 3 + [LayerKind.full]
    assert arch.qk_norm == "full"
