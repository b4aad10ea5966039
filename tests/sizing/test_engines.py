"""Engine profiles: every tuned figure carries its evidence, and follows from it."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from llmselect.errors import LLMSelectError
from llmselect.sizing.engines import FIGURES, engines_file, load_engines, read_engines


def test_every_figure_is_the_median_of_its_best_grounded_sources() -> None:
    engines = load_engines()
    assert set(engines) == {
        "vllm",
        "transformers-compiled",
        "transformers-eager",
        "llama.cpp",
        "cpu",
    }
    for engine in engines.values():
        for figure in FIGURES:
            chosen = engine.sources_for(figure)
            assert chosen, f"{engine.id}.{figure} has no source"
            expected = statistics.median(s.value for s in chosen)
            value = getattr(engine, figure)
            if figure == "fixed_overhead_bytes":
                assert value == pytest.approx(expected, rel=0.01), (engine.id, figure)
            elif figure.endswith("_overhead_per_layer_s"):  # seconds, to three figures
                assert value == pytest.approx(expected, rel=0.01, abs=1e-9), (engine.id, figure)
            else:  # fractions are stored to two decimals
                assert value == pytest.approx(expected, abs=0.006), (engine.id, figure)


def test_measured_evidence_outranks_proxies_and_assumptions() -> None:
    vllm = load_engines()["vllm"]
    # vLLM's own decode measurement decides, the TensorRT-LLM corroboration does not.
    assert [s.basis for s in vllm.sources_for("bandwidth_efficiency")] == ["measured"]
    assert vllm.bandwidth_efficiency == pytest.approx(0.52)
    # No vLLM prefill timing was found: the proxies decide, and say so.
    assert {s.basis for s in vllm.sources_for("compute_efficiency")} == {"proxy"}
    # Figures nobody measured are marked as such, not dressed up.
    assert all(s.basis == "assumed" for s in vllm.sources_for("slack_fraction"))
    cited = [s for e in load_engines().values() for s in e.sources if s.basis != "assumed"]
    assert all(
        s.source.startswith(("https://", "llmselect issue", "llmselect data set")) for s in cited
    )


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "engines.yaml"
    path.write_text(text)
    return path


def test_a_figure_without_a_source_is_rejected_with_file_line_and_field(
    tmp_path: Path,
) -> None:
    original = engines_file().read_text()
    # Drop vLLM's only slack_fraction source.
    start = original.index("      - figure: slack_fraction")
    end = original.index("  - id: transformers-compiled")
    text = original[:start] + "\n" + original[end:]
    path = _write(tmp_path, text)
    with pytest.raises(LLMSelectError) as err:
        read_engines(path)
    assert "no source for slack_fraction" in err.value.message
    assert err.value.file == str(path)
    assert err.value.field == "engines.0"
    assert err.value.line == text.splitlines().index("  - id: vllm") + 1


def test_loading_stays_strict(tmp_path: Path) -> None:
    original = engines_file().read_text()
    path = _write(tmp_path, original.replace("basis: measured", "basis: measurd", 1))
    with pytest.raises(LLMSelectError) as err:
        read_engines(path)
    assert err.value.field is not None and err.value.field.endswith(".basis")
    path = _write(tmp_path, original.replace("    bandwidth_efficiency: 0.52\n", "", 1))
    with pytest.raises(LLMSelectError) as err:
        read_engines(path)
    assert err.value.field == "engines.0.bandwidth_efficiency"
