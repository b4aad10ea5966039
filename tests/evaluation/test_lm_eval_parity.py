"""llmselect's multiple-choice scores equal lm-evaluation-harness's on the same model and items.

Both run the same tiny local model on the same twelve questions with the same prompt; each
choice's log-likelihood must agree to 1e-4 and acc / acc_norm exactly. Two prompt formats: lm-eval's
usual one (`A:` then choices after a space) and one whose prompt ends in a space, which
lm-eval's `_encode_pair` moves into the continuation before tokenizing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()

QUESTIONS = [
    "What is the capital of France?",
    "What is the capital of England?",
    "What is the capital of Italy?",
    "What is two plus two?",
]
OPTIONS = ["Paris", "London", "Rome", "four", "the city of London", "two"]
"""Lengths differ from 3 to 18 characters, so length normalization (acc_norm) changes answers."""

FORMATS = {
    # name: (llmselect template, lm-eval doc_to_text, choice prefix = lm-eval target_delimiter)
    "colon": ("Q: {{ input }}\nA:", "Q: {{question}}\nA:", " "),
    "trailing_space": ("Question: {{ input }}\nAnswer: ", "Question: {{question}}\nAnswer: ", ""),
}


def parity_items() -> list[dict[str, Any]]:
    """Twelve items with three or four choices each, the answer at varying positions."""
    rows = []
    for i in range(12):
        n_choices = 3 + i % 2
        choices = [OPTIONS[(i + k) % len(OPTIONS)] for k in range(n_choices)]
        rows.append(
            {
                "id": f"q{i}",
                # Each prompt is unique: see test_same_prompt_with_other_choices_is_scored_anew.
                "question": f"{QUESTIONS[i % 4]} ({i})",
                "options": choices,
                "answer": i % 3,
            }
        )
    return rows


def lm_eval_task(folder: Path, name: str, data: Path, doc_to_text: str, delimiter: str) -> None:
    config = {
        "task": name,
        "dataset_path": "json",
        # A cache inside the test's folder: nothing is written to the user's Hugging Face cache.
        "dataset_kwargs": {
            "data_files": {"test": str(data)},
            "cache_dir": str(folder / "datasets-cache"),
        },
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": doc_to_text,
        "doc_to_choice": "options",
        "doc_to_target": "answer",
        "target_delimiter": delimiter,
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
    }
    # JSON is YAML: no quoting of the templates' newlines and trailing spaces to get wrong.
    (folder / f"{name}.yaml").write_text(json.dumps(config, indent=1))


def llmselect_study(folder: Path, model: Path, data: Path, template: str, prefix: str) -> Path:
    study = {
        "name": "parity",
        "dataset": {
            "path": str(data),
            "fields": {
                "input": "question",
                "reference": "answer",
                "choices": "options",
                "id": "id",
            },
        },
        "task": {"kind": "multiple_choice", "template": template, "choice_prefix": prefix},
        "candidates": [{"name": "tiny", "transformers": str(model), "batch_size": 4}],
    }
    path = folder / "study.yaml"
    path.write_text(json.dumps(study, indent=1))
    return path


@pytest.fixture(scope="module")
def lm_eval_run(
    tiny_models: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, dict[str, Any]]:
    """One lm-eval run of both formats (loading lm-eval and the model once: ~10 s)."""
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    root = tmp_path_factory.mktemp("lm-eval-parity")
    data = root / "items.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in parity_items()))
    tasks = root / "tasks"
    tasks.mkdir()
    for name, (_, doc_to_text, delimiter) in FORMATS.items():
        lm_eval_task(tasks, f"llmselect_parity_{name}", data, doc_to_text, delimiter)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_DATASETS_OFFLINE", "1")
        patch.setenv("HF_HUB_OFFLINE", "1")
        results = lm_eval.simple_evaluate(
            model="hf",
            model_args=f"pretrained={tiny_models[0]},dtype=float32",
            tasks=[f"llmselect_parity_{name}" for name in FORMATS],
            task_manager=TaskManager(include_path=str(tasks), include_defaults=False),
            log_samples=True,
            device="cpu",
            batch_size=1,
            bootstrap_iters=0,
        )
    assert results is not None
    return tiny_models[0], data, dict(results)


@pytest.mark.parametrize("prompt_format", list(FORMATS))
def test_multiple_choice_matches_lm_evaluation_harness(
    prompt_format: str, lm_eval_run: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    model, data, lm_eval_results = lm_eval_run
    template, _, prefix = FORMATS[prompt_format]
    task = f"llmselect_parity_{prompt_format}"
    theirs = {s["doc"]["id"]: s for s in lm_eval_results["samples"][task]}
    assert len(theirs) == 12

    study = llmselect_study(tmp_path, model, data, template, prefix)
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    ours = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(ours) == 12

    for sample in ours:
        their = theirs[sample["item_id"]]
        # The same prompt text: lm-eval's context for every choice is llmselect's prompt.
        assert {context for context, _ in their["arguments"]} == {sample["prompt"]}
        their_lls = [response[0] for response in their["filtered_resps"]]
        assert sample["loglikelihoods"] == pytest.approx(their_lls, abs=1e-4), sample["item_id"]
        assert sample["scores"] == {"acc": their["acc"], "acc_norm": their["acc_norm"]}

    # Normalization must decide some items differently, or acc_norm would go unchecked.
    assert any(s["acc"] != s["acc_norm"] for s in theirs.values())
    metrics = json.loads((out / "results.json").read_text())["models"]["tiny"]["metrics"]
    assert metrics["acc"]["mean"] == lm_eval_results["results"][task]["acc,none"]
    assert metrics["acc_norm"]["mean"] == lm_eval_results["results"][task]["acc_norm,none"]


def test_same_prompt_with_other_choices_is_scored_anew(
    tiny_models: tuple[Path, Path], tmp_path: Path
) -> None:
    rows = [
        {"id": "a", "question": QUESTIONS[0], "options": ["Paris", "Rome"], "answer": 0},
        {
            "id": "b",
            "question": QUESTIONS[0],
            "options": ["the city of London", "two"],
            "answer": 0,
        },
    ]
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    study = llmselect_study(tmp_path, tiny_models[0], data, "Q: {{ input }}\nA:", " ")
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    lls = {
        line["item_id"]: line["loglikelihoods"]
        for line in map(json.loads, (out / "samples.jsonl").read_text().splitlines())
    }
    assert lls["a"] != lls["b"]
