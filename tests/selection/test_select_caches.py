"""The shortcuts that make `select` fast give what the plain computation gives: sizing's work
shared between cards of one architecture, the parameter count from `all_layers`' shared layer
objects, the memory total the bisections read, the parsed license expressions, the package
versions read from one header, and the verdict chip made in Python."""

from __future__ import annotations

from collections import Counter
from importlib import metadata
from pathlib import Path

import pytest

from llmselect.catalog import load_catalog
from llmselect.catalog.params import all_layers, count_params, outside_layers
from llmselect.licensing.profile import UseProfile
from llmselect.licensing.verdicts import _parse, judge_license
from llmselect.report.html import _chip
from llmselect.selection import judging
from llmselect.selection.judging import installed_version
from llmselect.sizing.engines import get_engine
from llmselect.sizing.estimate import CacheLayout, _MemoryModel, estimate
from llmselect.sizing.hardware import find_device
from llmselect.sizing.quant import weight_bytes
from llmselect.study import load_select_study


def test_the_parameter_count_is_the_sum_over_every_layer() -> None:
    for card in load_catalog():
        arch = card.architecture
        if not arch.is_complete:
            continue
        layers = all_layers(arch)
        counted = count_params(arch, layers)
        assert counted == count_params(arch), card.id
        assert counted.total == sum(outside_layers(arch)) + sum(x.total for x in layers)
        assert counted.active == sum(outside_layers(arch)) + sum(x.active for x in layers)
        assert counted.moe_layers == sum(1 for x in layers if x.experts), card.id


def test_cards_of_one_architecture_share_their_sizing_and_size_alike(tmp_path: Path) -> None:
    study_file = tmp_path / "study.yaml"
    study_file.write_text("hardware: H100-80GB\ncandidates: {filter: {}}\n")
    study, profile = load_select_study(study_file)
    catalog = load_catalog()
    device = find_device("H100-80GB")
    ctx = judging.Context(study, profile, study_file, catalog, device, 1)
    cards = [c for c in catalog if c.architecture.is_complete]
    by_arch = Counter(c.architecture.model_dump_json() for c in cards)
    shared = [c for c in cards if by_arch[c.architecture.model_dump_json()] > 1]
    assert len(shared) > 50  # fine-tunes share their base's architecture
    engine = get_engine("vllm")
    for card in shared:
        shapes = ctx.shapes(card.architecture)
        assert ctx.shapes(card.architecture.model_copy(deep=True)) is shapes  # by value
        for quant in ("bf16", "Q4_K_M"):
            fit = estimate(card, device, 1, engine, quant=quant, context=4096, batch=4)
            assert (
                estimate(card, device, 1, engine, quant=quant, context=4096, batch=4, shapes=shapes)
                == fit
            ), card.id
    assert len({id(ctx.shapes(c.architecture)) for c in cards}) == len(by_arch)


@pytest.mark.parametrize("engine_id", ["vllm", "transformers-eager", "llama.cpp"])
def test_the_memory_total_is_the_sum_of_its_parts(engine_id: str) -> None:
    engine = get_engine(engine_id)
    for card in load_catalog():
        arch = card.architecture
        if not arch.is_complete:
            continue
        layout = CacheLayout(arch, engine)
        model = _MemoryModel(arch, 2, engine, layout, weight_bytes(arch, "bf16"))
        for context in (1, 700, 4096, 100_000):
            for batch in (1, 3, 64):
                assert model.total(context, batch) == round(model.parts(context, batch)[4])


def test_a_parsed_expression_is_kept_and_judges_as_before() -> None:
    profile = UseProfile(commercial=True)
    assert _parse("mit OR cc-by-nc-4.0") == ("or", ("mit", "cc-by-nc-4.0"))
    assert _parse("apache-2.0 AND llama2") == ("and", ("apache-2.0", "llama2"))
    assert _parse("Apache-2.0") == ("license", ("Apache-2.0",))
    assert _parse("not ( an expression") == ("license", ("not ( an expression",))
    first = judge_license("mit OR cc-by-nc-4.0", profile, "m")
    assert [r.verdict for r in first] == ["allowed"] and first[0].license == "mit"
    again = judge_license("mit OR cc-by-nc-4.0", profile, "m")
    assert again == first and again[0] is not first[0]  # new reasons, the parse reused
    blocked = judge_license("apache-2.0 AND cc-by-nc-4.0", profile, "m")
    assert {r.verdict for r in blocked} == {"allowed", "blocked"}


def test_installed_versions_are_the_ones_importlib_reads() -> None:
    names = {d.metadata["Name"] for d in metadata.distributions()}
    assert len(names) > 20
    for name in names:
        assert installed_version(name) == metadata.version(name), name
    assert installed_version("no-such-package-here") is None


def test_the_verdict_chip_is_the_macro_it_replaced() -> None:
    assert _chip("blocked") == '<span class="chip blocked">blocked</span>'
    assert _chip(None) == '<span class="chip unknown">not judged</span>'
    assert _chip('"><script>') == (
        '<span class="chip &#34;&gt;&lt;script&gt;">&#34;&gt;&lt;script&gt;</span>'
    )


def test_this_machine_is_described_as_pynvml_describes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without NVIDIA's library pynvml is not imported; what it would have said is said."""
    from llmselect.sizing import detect

    quick = detect.detect()
    monkeypatch.setattr(detect, "_nvml_library_missing", lambda: False)
    assert detect.detect() == quick
