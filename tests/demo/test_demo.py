"""`llmselect demo`: the whole pipeline on a fresh machine, offline, with models built here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmselect.catalog.importers.hf_folder import import_hf_folder
from llmselect.cli import app
from llmselect.selection.finetuned import collect_finetuned

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
    assert selection["stages"]["evaluation"].startswith("4 model(s) measured on 61 items")
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
    assert card.architecture.hidden_size == 64 and card.params
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


def test_demo_fine_tunes_the_base_from_continuing_the_quiz_to_answering(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    folder, selection = demo
    [tuned] = selection["finetuned"]
    assert tuned["base"] == "llmselect-demo/quiz-base" and tuned["method"] == "lora"
    assert tuned["examples"] == 61 and tuned["metric"] == "exact_match"
    # The base measured as a candidate, and before tuning: it never answers.
    base = entry(selection, "llmselect-demo/quiz-base")
    assert base["quality"]["value"] == 0 == tuned["before"]["value"]
    assert tuned["after"]["low"] > 0.8 and tuned["comparison"]["significant"]
    assert tuned["comparison"]["p_value"] < 0.001
    # The seed's example, as a user reads it: asked a question, the base asks the next one.
    sample = tuned["samples"][0]
    assert sample["before"].strip().startswith("What is the capital of")
    assert sample["after"].strip() == sample["reference"]
    # The learning curve: four sizes up to the whole set, the whole set best.
    curve = tuned["curve"]
    assert [p["examples"] for p in curve] == [8, 16, 31, 61]
    assert curve[-1]["value"] == max(p["value"] for p in curve)
    assert tuned["curve_verdict"]
    # The demo trains on the quiz's own questions, and the report says what that means.
    assert any(
        "61 of 61 evaluation items are also in the training data" in w for w in tuned["warnings"]
    )
    # The tuned model is an entry too, measured, and kept out of the ranking for that reason.
    lora = entry(selection, "llmselect-demo/quiz-base-lora")
    assert lora["quality"]["source"] == "measured" and lora["quality"]["value"] > 0.8
    assert lora["rank"] is None
    assert [x["key"] for x in lora["exclusions"]] == ["finetune_dataset"]
    assert lora["demo"] and lora["license"]["lineage"][1]["id"] == "llmselect-demo/quiz-base"
    html = (folder / "selection" / "report.html").read_text()
    assert "Fine-tuning: before and after" in html and "How much data" in html
    # The adapter and its card, with the lineage the catalog reads back.
    card = (folder / "finetuned" / "quiz-base" / "README.md").read_text()
    assert "base_model: llmselect-demo/quiz-base" in card
    assert (folder / "finetuned" / "quiz-base" / "adapter_model.safetensors").is_file()


def test_a_fine_tune_measured_on_other_data_is_left_out_with_a_warning(
    demo: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    folder, selection = demo
    study = folder / "study.yaml"
    sha = selection["reproducibility"]["dataset_sha256"]
    assert len(collect_finetuned(study, sha)[0]) == 1
    found, warnings = collect_finetuned(study, "0" * 64)
    assert found == [] and "another version of the evaluation data" in warnings[0]
    # A damaged summary is named, not fatal.
    broken = tmp_path / "finetuned" / "broken" / "finetune.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"study": ')
    found, warnings = collect_finetuned(tmp_path / "study.yaml", sha)
    assert found == [] and str(broken) in warnings[0]
