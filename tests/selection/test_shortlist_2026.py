"""The 2026 shortlist example: current families, sized right, filtered by active parameters,
ranked by a score their vendors published (and said to be one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()
STUDY = Path(__file__).resolve().parents[2] / "examples" / "shortlist-2026" / "study.yaml"


def _select() -> dict[str, Any]:
    result = runner.invoke(app, ["select", str(STUDY), "--json", "--no-report"])
    assert result.exit_code == 0, result.output
    selection: dict[str, Any] = json.loads(result.stdout)
    return selection


def test_the_2026_shortlist_example() -> None:
    selection = _select()
    by_id = {e["id"]: e for e in selection["entries"]}
    ranked = [e for e in selection["entries"] if e["rank"] is not None]
    assert len(ranked) >= 10
    for e in ranked:
        # The filter: at most 32B active per token, 128k context, released in 2025 or later.
        assert (e.get("active_params") or e["params"]) <= 32e9
        assert e["fit"]["fits"] and e["fit"]["context"] == 131072
    # gpt-oss is sized at its release format (MXFP4 experts), which fits one H100; fp8 and bf16
    # of a model released in MXFP4 would not exist.
    assert by_id["openai/gpt-oss-120b"]["fit"]["quant"] == "mxfp4"
    assert by_id["openai/gpt-oss-120b"]["rank"] is not None
    # A 235B MoE leaves at sizing, with the memory it would need.
    big = by_id["Qwen/Qwen3-235B-A22B-Instruct-2507"]
    assert big["rank"] is None and big["exclusions"][0]["stage"] == "sizing"
    # Quality is the vendor's published MMLU-Pro, marked as published and named.
    top = ranked[0]
    assert top["quality"]["source"] == "published"
    assert top["quality"]["benchmark"] == "published/mmlu-pro"
    assert "mmlu-pro as its vendor published it" in selection["recommendation"]["summary"]
    scored = [e for e in ranked if e["quality"]]
    assert all(e["quality"]["value"] <= top["quality"]["value"] + 0.02 for e in scored[:3])
