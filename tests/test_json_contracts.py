"""The `--json` output of the commands keeps its shape: every key path and the type of its
value, as recorded in `tests/contracts/shapes.json`. A refactor must leave them as they are; a
deliberate change of a contract is recorded by running this file with
`LLMSELECT_UPDATE_CONTRACTS=1` and documented in the docs' JSON reference."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmselect.cli import app

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = ROOT / "tests" / "serving" / "loopback_server.py"
SHAPES = Path(__file__).parent / "contracts" / "shapes.json"
COMMANDS = {
    "catalog show": ["catalog", "show", "meta-llama/Llama-2-7b-hf"],
    "catalog show (MoE)": ["catalog", "show", "mistralai/Mixtral-8x7B-Instruct-v0.1"],
    "catalog search": ["catalog", "search", "--family", "llama-2"],
    "license check": [
        *["license", "check", "meta-llama/Llama-2-7b-hf"],
        *["--profile", str(ROOT / "examples" / "profile-saas.yaml")],
    ],
    "fit": ["fit", "meta-llama/Llama-2-70b-hf", "--gpu", "H100-80GB"],
    "fit --quant": [
        *["fit", "meta-llama/Llama-2-70b-hf", "--gpu", "H100-80GB"],
        *["--quant", "Q4_K_M", "--context", "8k", "--batch", "4"],
    ],
    "fit --table": ["fit", "mistralai/Mistral-7B-v0.1", "--gpu", "RTX-4090", "--table"],
    "fit --finetune": [
        *["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "A100-80GB", "--finetune", "lora"],
        *["--examples", "1000", "--tokens-per-example", "512"],
    ],
    "hardware --gpu": ["hardware", "--gpu", "H100-80GB"],
    "select": [
        *["select", str(ROOT / "examples" / "shortlist-2026" / "study.yaml")],
        *["--no-measure", "--no-report"],
    ],
    # Against the tests' loopback engine, started by --serve (it reports usage).
    "bench": [
        *[
            "bench",
            "--serve",
            f"{sys.executable} {LOOPBACK} --port {{port}} --usage --token-delay 0.002",
        ],
        *["--concurrency", "1,2", "--requests", "4", "--output-tokens", "4"],
        *["--ttft-p95", "1", "--tokens-per-s", "10"],
    ],
}


def shape(value: Any, path: str = "") -> list[str]:
    """`path: type` for every leaf; a list reads as its first element (`[]`)."""
    if isinstance(value, dict):
        return [line for key, item in value.items() for line in shape(item, f"{path}.{key}")] or [
            f"{path}: {{}}"
        ]
    if isinstance(value, list):
        return shape(value[0], f"{path}[]") if value else [f"{path}: []"]
    return [f"{path}: {type(value).__name__}"]


def shapes_now() -> dict[str, list[str]]:
    runner = CliRunner()
    found = {}
    for name, args in COMMANDS.items():
        result = runner.invoke(app, [*args, "--json"])
        assert result.exit_code in (0, 4, 5), (name, result.output)  # 4/5: no fit, no pick
        found[name] = shape(json.loads(result.stdout))
    return found


def test_every_command_keeps_its_json_shape() -> None:
    found = shapes_now()
    if os.environ.get("LLMSELECT_UPDATE_CONTRACTS"):
        SHAPES.parent.mkdir(exist_ok=True)
        SHAPES.write_text(json.dumps(found, indent=1) + "\n")
    recorded = json.loads(SHAPES.read_text())
    for name in COMMANDS:
        gone = [line for line in recorded[name] if line not in found[name]]
        new = [line for line in found[name] if line not in recorded[name]]
        assert not gone and not new, (
            f"`llmselect {' '.join(COMMANDS[name][:2])} --json` changed shape: gone {gone[:5]}, "
            f"new {new[:5]}; if deliberate, rerun with LLMSELECT_UPDATE_CONTRACTS=1 and say so "
            "in docs/reference/json.md"
        )
        assert found[name] == recorded[name], f"{name}: the keys are in another order"


def test_a_changed_shape_is_seen() -> None:
    before = shape({"a": 1, "b": [{"c": None}], "d": {}})
    assert before == [".a: int", ".b[].c: NoneType", ".d: {}"]
    assert shape({"a": 1.0, "b": [{"c": None}], "d": {}}) != before
    assert shape({"b": [{"c": None}], "a": 1, "d": {}}) != before


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
