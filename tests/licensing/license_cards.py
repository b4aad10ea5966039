"""Helpers for the licensing tests: model cards in the test's own user catalog, the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()

SMALL_LLAMA_SHAPE = {
    "architectures": "LlamaForCausalLM",
    "model_type": "llama",
    "num_hidden_layers": 22,
    "hidden_size": 2048,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "head_dim": 64,
    "intermediate_size": 5632,
    "vocab_size": 32000,
    "context_length": 4096,
}
"""TinyLlama's shape: every card sizes (and fits) the same way; only licenses differ."""

WriteCards = Callable[..., Path]


def make_writer(folder: Path) -> WriteCards:
    """A function writing a family file of cards into `folder` (the test's user catalog)."""

    def write(name: str, *models: dict[str, Any]) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        document = {
            "family": name,
            "defaults": {"params": 1_100_048_384, "architecture": SMALL_LLAMA_SHAPE},
            "models": list(models),
        }
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    return write


def card(model_id: str, weights: str, **fields: Any) -> dict[str, Any]:
    """A card whose code is Apache-2.0 and whose data is `fields['data']` (undisclosed if not
    given)."""
    licenses: dict[str, Any] = {"code": "apache-2.0", "weights": weights}
    licenses["data"] = fields.pop("data", "undisclosed")
    return {"id": model_id, "licenses": licenses, **fields}


def check(model: str, *flags: str) -> dict[str, Any]:
    """`license check MODEL --json`; exit code 3 exactly when the verdict is blocked."""
    result = runner.invoke(app, ["license", "check", model, *flags, "--json"])
    report: dict[str, Any] = json.loads(result.stdout)
    assert "error" not in report, report
    assert result.exit_code == (3 if report["overall"] == "blocked" else 0), result.output
    return report


def reasons(report: dict[str, Any], component: str, verdict: str | None = None) -> list[Any]:
    found = report["components"][component]["reasons"]
    return [r for r in found if verdict is None or r["verdict"] == verdict]
