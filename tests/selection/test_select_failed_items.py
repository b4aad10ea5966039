"""A measured model that got no output for some items: `select` says its scores rest on the
others, instead of reading as measured on the whole dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from tests.evaluation.openai_server import FakeServer
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()


def _study(folder: Path, url: str) -> Path:
    study_file = folder / "study.yaml"
    if not study_file.exists():
        result = runner.invoke(app, ["init", str(folder)])
        assert result.exit_code == 0, result.output
    study: dict[str, Any] = yaml.safe_load(study_file.read_text())
    study["hardware"] = "H100-80GB"
    study["candidates"] = {
        "ids": [],
        "run": [
            {
                "id": "mistralai/Mistral-7B-Instruct-v0.2",
                "openai": url,
                "model": "tiny",
                "timeout_s": 2,
                "retries": 1,
                "retry_backoff_s": 0.01,
            }
        ],
    }
    study_file.write_text(yaml.safe_dump(study))
    return study_file


def test_select_warns_when_a_measured_model_missed_items(tmp_path: Path) -> None:
    with FakeServer() as server:
        study_file = _study(tmp_path / "study", server.url)
        rows = (tmp_path / "study" / "data" / "eval.jsonl").read_text().splitlines()
        broken = json.loads(rows[0])["question"]
        server.always[broken] = "html"  # every answer to the first item is a web page
        result = runner.invoke(app, ["select", str(study_file), "--json", "--no-report"])
        assert result.exit_code == 0, result.output
        failed = [w for w in json.loads(result.stdout)["warnings"] if "no usable output" in w]
        assert failed == [
            f"mistralai/Mistral-7B-Instruct-v0.2: 1 of {len(rows)} items got no usable output, "
            f"so its scores rest on the other {len(rows) - 1}; rerun `select` to retry them"
        ]

        # Once the server answers it, a rerun asks for that item only and the warning goes.
        server.always.clear()
        server.requests = 0
        result = runner.invoke(app, ["select", str(study_file), "--json", "--no-report"])
        assert result.exit_code == 0, result.output
        assert server.requests == 1
        assert not [w for w in json.loads(result.stdout)["warnings"] if "no usable output" in w]
