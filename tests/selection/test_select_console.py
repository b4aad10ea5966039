"""What `llmselect select` prints over a large pool: the first ranked models and the excluded
ones counted by what keeps them out; `--all` lists every model. The report and `--json` keep
every model whatever the terminal shows."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.report.markdown import md

runner = CliRunner()
WIDE = {"COLUMNS": "400"}  # one table row a line, so that rows can be counted


def _study(folder: Path, candidates: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "study.yaml"
    study = {
        "name": "console-study",
        "hardware": "H100-80GB",
        "targets": {"context": 4096, "concurrent_users": 8, "ttft_p95_s": 2},
        "license": {"use": {"commercial": True}},
        "candidates": candidates,
    }
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def whole_catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A study over the whole catalog, and its selection as `--json` prints it."""
    study = _study(tmp_path_factory.mktemp("whole"), {"filter": {}})
    result = runner.invoke(app, ["select", str(study), "--no-report", "--json"])
    assert result.exit_code == 0, result.output
    return study, json.loads(result.stdout)


def _first_cells(output: str) -> list[str]:
    """The first cell of every table row (rank in the shortlist, id in the excluded list)."""
    return [line.split("│")[1].strip() for line in output.splitlines() if line.count("│") > 2]


def _ranks(output: str) -> list[int]:
    return [int(c.split()[0]) for c in _first_cells(output) if c.split() and c.split()[0].isdigit()]


def test_the_terminal_shows_the_first_ranked_and_counts_the_excluded_by_cause(
    whole_catalog: tuple[Path, dict[str, Any]],
) -> None:
    study, selection = whole_catalog
    entries = selection["entries"]
    ranked = [e for e in entries if e["rank"] is not None]
    excluded = [e for e in entries if e["rank"] is None]
    assert len(ranked) > 25 and len(excluded) > 10  # a pool large enough to be summarized

    result = runner.invoke(app, ["select", str(study), "--no-report"], env=WIDE)
    assert result.exit_code == 0, result.output
    out = result.output
    assert _ranks(out) == list(range(1, 26))
    assert f"… and {len(ranked) - 25} more qualify: `--all` lists them" in out
    # Each (stage, key) of a first exclusion is one row with its count and an example.
    causes = Counter((e["exclusions"][0]["stage"], e["exclusions"][0]["key"]) for e in excluded)
    assert f"Excluded: {len(excluded)} of {len(entries)}, by what keeps each out first" in out
    for (stage, key), count in causes.items():
        row = next(
            line
            for line in out.splitlines()
            if [c.strip() for c in line.split("│")[1:4]] == [stage, key, str(count)]
        )
        example = next(
            e
            for e in excluded
            if (e["exclusions"][0]["stage"], e["exclusions"][0]["key"]) == (stage, key)
        )
        assert f"{example['id']}: {example['exclusions'][0]['reason']}" in row
    assert sum(causes.values()) == len(excluded)
    assert "`--all` lists each excluded model with its reason" in out
    # Not every excluded model is listed by name.
    assert sum(e["id"] in out for e in excluded) < len(excluded)


def test_all_lists_every_model(whole_catalog: tuple[Path, dict[str, Any]]) -> None:
    study, selection = whole_catalog
    result = runner.invoke(app, ["select", str(study), "--no-report", "--all"], env=WIDE)
    assert result.exit_code == 0, result.output
    ranked = [e for e in selection["entries"] if e["rank"] is not None]
    excluded = [e["id"] for e in selection["entries"] if e["rank"] is None]
    assert _ranks(result.output) == list(range(1, len(ranked) + 1))
    assert [c for c in _first_cells(result.output) if c in excluded] == excluded
    assert "more qualify" not in result.output and "by what keeps each out" not in result.output


def test_the_report_and_json_hold_every_model_whatever_the_terminal_shows(
    whole_catalog: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    study, selection = whole_catalog
    result = runner.invoke(app, ["select", str(study), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "results.json").read_text())
    assert [e["id"] for e in written["entries"]] == [e["id"] for e in selection["entries"]]
    markdown = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    for e in selection["entries"]:
        assert md(e["id"]) in markdown and e["id"] in html


def test_a_small_pool_is_listed_model_by_model(tmp_path: Path) -> None:
    ids = [
        "meta-llama/Llama-2-7b-hf",  # ranked
        "huggyllama/llama-7b",  # non-commercial: out at licensing
        "EleutherAI/pythia-1.4b",  # a 2,048-token context: out at sizing
    ]
    study = _study(tmp_path, {"ids": ids})
    result = runner.invoke(app, ["select", str(study), "--no-report"], env=WIDE)
    assert result.exit_code == 0, result.output
    out = result.output
    assert [c for c in _first_cells(out) if c in ids] == ids[1:]  # each with its reason
    assert "commercial use is not granted" in out and "its context is 2,048 tokens" in out
    assert "more qualify" not in out and "by what keeps each out" not in out
