"""`llmselect eval` end to end on two tiny local models: files, scores, resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()
QUESTIONS = [
    ("capital of France", "Paris"),
    ("capital of England", "London"),
    ("capital of Italy", "Rome"),
    ("two plus two", "four"),
]


def write_study(
    tmp_path: Path,
    models: tuple[Path, Path],
    *,
    n: int = 8,
    kind: str = "generate",
    batch: int = 4,
    max_tokens: int = 8,
) -> Path:
    rows = []
    for i in range(n):
        question, answer = QUESTIONS[i % len(QUESTIONS)]
        row: dict[str, Any] = {
            "id": f"q{i}",
            "question": f"What is the {question}? ({i})",
            "answer": answer,
        }
        if kind == "multiple_choice":
            row["options"] = ["Paris", "London", "Rome", "four"]
        rows.append(row)
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    choices = "choices: options, " if kind == "multiple_choice" else ""
    study = f"""
name: capitals
dataset: {{path: data.jsonl, fields: {{input: question, reference: answer, {choices}id: id}}}}
task: {{kind: {kind}, template: "Q: {{{{ input }}}} A:", max_tokens: {max_tokens}}}
metrics: [exact_match, token_f1, {{name: contains}}]
candidates:
  - {{name: tiny-a, transformers: {models[0]}, batch_size: {batch}}}
  - {{name: tiny-b, transformers: {models[1]}, batch_size: {batch}}}
"""
    path = tmp_path / "study.yaml"
    path.write_text(study)
    return path


def stored(out: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(out / "store.sqlite") as db:
        return list(db.execute("SELECT model, item_id FROM samples"))


def test_generation_study_writes_results_and_samples(
    tmp_path: Path, tiny_models: tuple[Path, Path]
) -> None:
    study = write_study(tmp_path, tiny_models)
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["items"] == 8
    for name in ("tiny-a", "tiny-b"):
        metrics = results["models"][name]["metrics"]
        assert set(metrics) == {"exact_match", "token_f1", "contains"}
        for ci in metrics.values():
            assert ci["n"] == 8 and ci["low"] <= ci["mean"] <= ci["high"]
        assert results["models"][name]["latency"]["p50_s"] > 0
    assert {c["metric"] for c in results["comparisons"]} == {"exact_match", "token_f1", "contains"}
    lines = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 16
    assert {(x["model"], x["item_id"]) for x in lines} == {
        (m, f"q{i}") for m in ("tiny-a", "tiny-b") for i in range(8)
    }
    assert all({"prompt", "output", "reference", "scores"} <= set(x) for x in lines)

    # A second run reuses every stored output: nothing is generated or stored twice.
    again = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert again.exit_code == 0
    assert len(stored(out)) == 16


def test_multiple_choice_loglikelihoods(tmp_path: Path, tiny_models: tuple[Path, Path]) -> None:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    study = write_study(tmp_path, tiny_models, n=4, kind="multiple_choice")
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "results.json").read_text())["models"]["tiny-a"]["metrics"]
    assert set(metrics) == {"acc", "acc_norm"}
    line = json.loads((out / "samples.jsonl").read_text().splitlines()[0])
    # Independent check of the first choice's log-likelihood, computed here by hand.
    tok = transformers.AutoTokenizer.from_pretrained(tiny_models[0])
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_models[0]).eval()
    context, continuation = line["prompt"], " Paris"
    ids = tok(context + continuation, return_tensors="pt")["input_ids"]
    n_ctx = len(tok(context)["input_ids"])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
    expected = float(logprobs[torch.arange(ids.shape[1] - 1), ids[0, 1:]][n_ctx - 1 :].sum())
    assert line["loglikelihoods"][0] == pytest.approx(expected, abs=1e-4)
    assert line["scores"]["acc"] in (0.0, 1.0)


def test_kill_9_then_resume_scores_every_item_exactly_once(
    tmp_path: Path, tiny_models: tuple[Path, Path]
) -> None:
    study = write_study(tmp_path, tiny_models, n=40, batch=1, max_tokens=24)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmselect", "eval", str(study), "--out", str(out), "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "store.sqlite").exists():
            try:
                if len(stored(out)) >= 4:
                    break
            except sqlite3.OperationalError:
                pass
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be killed")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = stored(out)
    assert 0 < len(partial) < 80

    result = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    rows = stored(out)
    assert len(rows) == len(set(rows)) == 80
    assert set(partial) <= set(rows)
    lines = (out / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 80


def test_study_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(
        "dataset: {path: d.jsonl}\ncandidates:\n  - {name: x, gguf: a.gguf, transformers: b}\n"
    )
    result = runner.invoke(app, ["eval", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert f"{path}:3" in result.stderr and "exactly one" in result.stderr


@pytest.mark.parametrize(
    ("backend", "option", "message"),
    [
        ("transformers: m", "compile: sometimes", "compile must be auto, true or false"),
        ("transformers: m", "compile: 1", "compile must be auto, true or false"),
        ("gguf: m.gguf", "compile: true", "compile applies to transformers candidates only"),
        ("openai: http://h/v1", "compile: false", "compile applies to transformers candidates"),
    ],
)
def test_the_compile_option_is_checked_with_its_field_and_line(
    tmp_path: Path, backend: str, option: str, message: str
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(
        f"dataset: {{path: d.jsonl}}\ncandidates:\n  - name: x\n    {backend}\n    {option}\n"
    )
    result = runner.invoke(app, ["eval", str(path), "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["field"], error["line"]) == ("candidates.0.compile", 5)
    assert message in error["message"]


def test_the_compile_option_accepts_auto_true_and_false(tmp_path: Path) -> None:
    from llmselect.evaluation.study import load_study

    path = tmp_path / "study.yaml"
    for written, loaded in (("auto", "auto"), ("true", True), ("false", False), (None, "auto")):
        option = f", compile: {written}" if written else ""
        path.write_text(
            f"dataset: {{path: d.jsonl}}\ncandidates: [{{name: x, transformers: m{option}}}]\n"
        )
        assert load_study(path).candidates[0].compile == loaded


def test_fresh_starts_over(tmp_path: Path, tiny_models: tuple[Path, Path]) -> None:
    study = write_study(tmp_path, tiny_models, n=2)
    out = tmp_path / "out"
    assert runner.invoke(app, ["eval", str(study), "--out", str(out)]).exit_code == 0
    with sqlite3.connect(out / "store.sqlite") as db:
        db.execute("UPDATE samples SET output = 'stale'")
    again = runner.invoke(app, ["eval", str(study), "--out", str(out), "--fresh", "--json"])
    assert again.exit_code == 0
    outputs = [json.loads(x)["output"] for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(outputs) == 4 and "stale" not in outputs


def test_chat_template_is_the_models_own(tmp_path: Path, tiny_models: tuple[Path, Path]) -> None:
    from llmselect.evaluation.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend(tiny_models[0], name="a")
    assert backend.chat_prompt("hi") == "<|user|>hi\n<|assistant|>"
    study = write_study(tmp_path, tiny_models, n=2, kind="multiple_choice")
    study.write_text(study.read_text().replace('A:", max_tokens', 'A:", chat: true, max_tokens'))
    result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out")])
    # tiny-b has no chat template: a clear error, after tiny-a's outputs were stored.
    assert result.exit_code == 1 and "has no chat template" in result.stderr
    with sqlite3.connect(tmp_path / "out" / "store.sqlite") as db:
        ((lls,),) = db.execute(
            "SELECT loglikelihoods FROM samples WHERE model = 'tiny-a' AND item_id = 'q0'"
        ).fetchall()
    context = backend.chat_prompt("Q: What is the capital of France? (0) A:")
    assert json.loads(lls)[0] == pytest.approx(backend.loglikelihoods([(context, " Paris")])[0])


def test_the_users_own_metric_runs_only_where_the_study_names_it(
    tmp_path: Path, tiny_models: tuple[Path, Path]
) -> None:
    study = write_study(tmp_path, tiny_models, n=4)
    out = tmp_path / "out"
    assert runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"]).exit_code == 0
    (tmp_path / "scoring.py").write_text(
        "def long_answer(output, reference, *, words):\n    return len(output.split()) >= words\n"
    )
    text = study.read_text().replace(
        "metrics: [exact_match, token_f1, {name: contains}]",
        "metrics: [exact_match, {name: wordy, python: scoring.py:long_answer, words: 2}]",
    )
    study.write_text(text)
    result = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert len(stored(out)) == 8  # scored anew from the stored outputs: no model ran again
    lines = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    for line in lines:
        assert line["scores"]["wordy"] == float(len(line["output"].split()) >= 2)
    results = json.loads((out / "results.json").read_text())
    assert set(results["models"]["tiny-a"]["metrics"]) == {"exact_match", "wordy"}

    # A function that answers outside [0, 1] is named, with its file.
    (tmp_path / "scoring.py").write_text(
        "def long_answer(output, reference, *, words):\n    return 7\n"
    )
    result = runner.invoke(app, ["eval", str(study), "--out", str(out)])
    assert result.exit_code != 0
    assert "returned 7" in result.output and "scoring.py" in result.output


def test_an_unknown_metric_is_named_with_its_line_before_any_model_runs(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(
        "dataset: {path: d.jsonl}\nmetrics:\n  - exact_match\n  - blue\n"
        "candidates:\n  - {name: x, transformers: nowhere}\n"
    )
    result = runner.invoke(app, ["eval", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert f"{path}:4" in result.stderr and "unknown metric 'blue'" in result.stderr
    assert "did you mean 'bleu'" in result.stderr
