"""A reference its metric cannot read is an error when the dataset loads, before any model runs:
it names the file, the line, the item and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai_server import FakeServer
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()


def write(tmp_path: Path, url: str, references: list[Any], metrics: list[Any]) -> Path:
    rows = [
        {"id": f"q{i}", "question": "What is the capital of France?", "answer": ref}
        for i, ref in enumerate(references)
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    study = {
        "dataset": {
            "path": "data.jsonl",
            "fields": {"input": "question", "reference": "answer", "id": "id"},
        },
        "task": {"kind": "generate", "template": "{{ input }} A:"},
        "metrics": metrics,
        "candidates": [{"name": "api", "openai": url, "model": "tiny", "retries": 0}],
    }
    (tmp_path / "study.yaml").write_text(json.dumps(study))
    return tmp_path / "study.yaml"


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    ("bad", "metric", "says"),
    [
        (4, "exact_match", "got int"),
        (4.5, "contains", "got float"),
        (None, "token_f1", "the item has none"),
        (["Paris", 4], "exact_match", "got list"),
        ([], "exact_match", "empty list"),
        (True, {"name": "regex", "pattern": "{reference}"}, "got bool"),
        ("{not json", "json_fields", "not valid JSON"),
        (7, "json_fields", "got int"),
    ],
)
def test_a_reference_of_the_wrong_type_fails_before_any_request(
    tmp_path: Path, bad: Any, metric: Any, says: str
) -> None:
    with FakeServer() as server:
        first = {"city": "Paris"} if metric == "json_fields" else "Paris"
        study = write(tmp_path, server.url, [first, bad], [metric])
        result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out")])
        assert server.requests == 0
    assert result.exit_code == 1, result.output
    message = one_line(result.stderr)
    assert f"{tmp_path / 'data.jsonl'}:2: answer:" in message
    assert "'q1'" in message and says in message
    assert "Traceback" not in result.output


def test_references_each_metric_can_read_are_accepted(tmp_path: Path) -> None:
    with FakeServer() as server:
        study = write(
            tmp_path,
            server.url,
            ["Paris", ["Paris", "paris"], {"city": "Paris"}, 4],
            # An int reference is fine where no metric reads it as text.
            ["json_valid", {"name": "regex", "pattern": "Paris"}],
        )
        result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out")])
        assert result.exit_code == 0, result.output
        study = write(
            tmp_path, server.url, ['{"city": "Paris"}', {"city": "Paris"}, []], ["json_fields"]
        )
        result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out2")])
        assert result.exit_code == 0, result.output
