"""The typed evaluation result: what `eval` writes reads back the same, field for field, and a
damaged file is an error naming the file, the line and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.errors import LLMSelectError
from llmselect.evaluation.results import EvalResults

runner = CliRunner()

RESULT_KEYS = ["study", "dataset", "task", "models", "comparisons"]
MODEL_KEYS = ["metrics", "latency", "backend", "device", "dtype", "engine", "skipped", "failed"]
SAMPLE_KEYS = ["model", "item_id", "prompt", "output", "reference", "scores", "loglikelihoods"]


@pytest.fixture(scope="module")
def evaluated(tiny_models: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("results")
    rows = [
        {"question": f"What is the capital of France? ({i})", "answer": "Paris"} for i in range(4)
    ]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "study.yaml").write_text(f"""
name: typed
dataset: {{path: data.jsonl, fields: {{input: question, reference: answer}}}}
task: {{kind: generate, template: "Q: {{{{ input }}}} A:", max_tokens: 3}}
metrics: [exact_match, token_f1]
candidates:
  - {{name: a, transformers: {tiny_models[0]}, batch_size: 2}}
  - {{name: b, transformers: {tiny_models[1]}}}
""")
    result = runner.invoke(
        app, ["eval", str(folder / "study.yaml"), "--out", str(folder / "out"), "--no-record"]
    )
    assert result.exit_code == 0, result.output
    return folder / "out"


def test_the_files_read_back_as_the_same_results(evaluated: Path) -> None:
    results = EvalResults.read(evaluated)
    written = json.loads((evaluated / "results.json").read_text())
    assert list(written) == RESULT_KEYS and results.to_json() == written
    assert list(written["models"]["a"])[: len(MODEL_KEYS)] == MODEL_KEYS
    assert results.models["a"].latency is not None and results.models["a"].latency.batch_p50 == 2
    assert [c.metric for c in results.comparisons] == ["exact_match", "token_f1"]
    lines = [json.loads(line) for line in (evaluated / "samples.jsonl").read_text().splitlines()]
    assert [list(line) for line in lines] == [SAMPLE_KEYS] * 8
    assert [s.model_dump(exclude_unset=True) for s in results.samples] == lines
    assert [s.item_id for s in results.model_samples("b")] == [
        line["item_id"] for line in lines[4:]
    ]


def test_a_damaged_results_file_names_the_file_and_field(evaluated: Path, tmp_path: Path) -> None:
    written = json.loads((evaluated / "results.json").read_text())
    written["models"]["a"]["metrics"]["exact_match"]["mean"] = "high"
    (tmp_path / "results.json").write_text(json.dumps(written))
    (tmp_path / "samples.jsonl").write_text((evaluated / "samples.jsonl").read_text())
    with pytest.raises(LLMSelectError) as caught:
        EvalResults.read(tmp_path)
    assert caught.value.file == str(tmp_path / "results.json")
    assert caught.value.field == "models.a.metrics.exact_match.mean"

    (tmp_path / "results.json").write_text((evaluated / "results.json").read_text())
    lines = (evaluated / "samples.jsonl").read_text().splitlines()
    lines[2] = lines[2].replace('"item_id"', '"item"')
    (tmp_path / "samples.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(LLMSelectError) as caught:
        EvalResults.read(tmp_path)
    assert (caught.value.file, caught.value.line) == (str(tmp_path / "samples.jsonl"), 3)
