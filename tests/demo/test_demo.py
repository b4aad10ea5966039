"""`llmselect demo`: the whole pipeline on a fresh machine, offline, with models built here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmselect.catalog.importers.hf_folder import import_hf_folder
from llmselect.cli import app

pytest.importorskip("torch")
runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("demo")
    result = runner.invoke(app, ["demo", "--dir", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    return folder, json.loads(result.stdout)


def entry(selection: dict[str, Any], model_id: str) -> dict[str, Any]:
    return next(e for e in selection["entries"] if e["id"] == model_id)


def test_demo_writes_the_report_and_a_ranked_table(demo: tuple[Path, dict[str, Any]]) -> None:
    folder, selection = demo
    for name in ("report.html", "report.md", "results.json"):
        assert (folder / "selection" / name).stat().st_size > 1000
    assert "demo model" in (folder / "selection" / "report.html").read_text()
    ranked = [e for e in selection["entries"] if e["rank"] is not None]
    assert len(ranked) >= 3
    # Every stage ran for real: licenses judged, fits estimated, the demo models measured.
    assert selection["stages"]["evaluation"].startswith("3 model(s) measured on 61 items")
    assert all(e["fit"] for e in ranked) and all(e["verdict"] for e in ranked)


def test_demo_models_are_measured_and_say_so(demo: tuple[Path, dict[str, Any]]) -> None:
    _, selection = demo
    small = entry(selection, "llmselect-demo/quiz-answerer-small")
    tiny = entry(selection, "llmselect-demo/quiz-answerer-tiny")
    nc = entry(selection, "llmselect-demo/quiz-answerer-nc")
    for e in (small, tiny, nc):
        assert e["demo"] and e["quality"]["source"] == "measured" and e["latency"]
    # Bigger and longer-trained models recall more of the quiz they were taught.
    assert nc["quality"]["value"] > small["quality"]["value"] + 0.15
    assert small["quality"]["value"] > tiny["quality"]["value"] + 0.15
    # The best demo model is non-commercial: out, and the decision says what would change.
    assert nc["rank"] is None and nc["exclusions"][0]["key"] == "license.use"
    assert selection["recommendation"]["model"] == "llmselect-demo/quiz-answerer-small"
    assert "Its measurements come from a small demo model" in selection["recommendation"]["summary"]
    change = selection["recommendation"]["what_would_change"]
    assert change and "non-commercial" in change[0] and "quiz-answerer-nc" in change[0]


def test_demo_models_are_real_model_folders(demo: tuple[Path, dict[str, Any]]) -> None:
    folder, _ = demo
    card = import_hf_folder(folder / "models" / "quiz-answerer-nc")
    assert card.licenses.weights == "cc-by-nc-4.0"
    assert card.architecture.hidden_size == 96 and card.params
    text = (folder / "models" / "quiz-answerer-nc" / "README.md").read_text()
    assert "demo model built locally" in text


def test_a_second_run_reuses_the_models(demo: tuple[Path, dict[str, Any]]) -> None:
    folder, first = demo
    weights = folder / "models" / "quiz-answerer-small" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    result = runner.invoke(app, ["demo", "--dir", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    assert weights.stat().st_mtime_ns == before
    again = json.loads(result.stdout)
    assert again["recommendation"]["model"] == first["recommendation"]["model"]
