"""Llama 3.2/3.3/4 grant no rights in their multimodal models to a licensee based in the EU.

The clause reads the profile's jurisdictions and the model's input modalities: Llama 4 Scout
reads images, Llama 3.3 70B does not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()
SCOUT = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
TEXT_ONLY = "meta-llama/Llama-3.3-70B-Instruct"


def check(model: str, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["license", "check", model, *args, "--json"])
    assert result.exit_code in (0, 3), result.output  # 3: blocked
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def regional(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r
        for component in report["components"].values()
        for r in component["reasons"]
        if "based in EU" in r["message"]
    ]


@pytest.mark.parametrize("where", ["EU", "de", "FR"])
def test_a_multimodal_llama_is_blocked_for_a_licensee_in_the_eu(where: str) -> None:
    report = check(SCOUT, "--jurisdiction", where)
    assert report["overall"] == "blocked"
    assert regional(report) and all(r["verdict"] == "blocked" for r in regional(report))
    assert all("European Union" in r["clause"] for r in regional(report))


def test_outside_the_eu_the_clause_does_not_apply() -> None:
    report = check(SCOUT, "--jurisdiction", "US", "--jurisdiction", "CH")
    assert not regional(report)
    assert report["overall"] != "blocked"


def test_without_a_jurisdiction_it_is_a_duty_to_say_where() -> None:
    found = regional(check(SCOUT))
    assert found and {r["verdict"] for r in found} == {"conditional"}
    assert "jurisdictions" in found[0]["message"]


def test_a_text_only_llama_is_not_touched_by_the_clause() -> None:
    report = check(TEXT_ONLY, "--jurisdiction", "EU")
    assert not regional(report)
    assert report["overall"] != "blocked"
