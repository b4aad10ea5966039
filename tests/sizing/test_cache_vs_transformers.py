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
from tiny_architectures import CURRENT

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

BATCH, PROMPT = 2, 20  # the prompt is longer than every window and chunk (8) of these configs
SMALL = {"vocab_size": 128}
# The kinds of cache each architecture holds (configs in tests/tiny_architectures.py).
KINDS: dict[str, set[str]] = {
    "qwen3-moe": {"full"},
    "gemma3-text": {"sliding", "full"},
    "gpt-oss": {"sliding", "full"},
    "llama4-text-maverick-style": {"chunked", "full"},
    "deepseek-v3": {"latent"},
    "granite-4-h-moe": {"mamba2", "full"},
    "nemotron-h-moe": {"mamba2", "full"},
    "falcon-h1": {"hybrid-mamba2"},
    "gemma4-e2b-style": {"sliding", "full"},
    "qwen3.5-moe": {"gated-deltanet", "full"},
}


def _tensor_bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size() if value.dim() else 0
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(v) for v in value)
    return 0


@pytest.mark.parametrize("case", sorted(KINDS))
def test_cache_bytes_per_layer_kind_equal_transformers(tmp_path: Path, case: str) -> None:
    config_class, fields = CURRENT[case]
    config = getattr(transformers, config_class)(**{**SMALL, **fields})
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
        if held:  # MLP-only blocks and layers that reuse another's cache hold a placeholder
            measured[label] = measured.get(label, 0) + held

    # The tiny model runs in fp32: its cache is fp32 too.
    shares = cache_shares(card.architecture, PROMPT, get_engine("transformers-eager"), "fp32")
    estimated = {share.kind: share.bytes * BATCH for share in shares}
    assert set(estimated) == KINDS[case]
    assert estimated == measured
