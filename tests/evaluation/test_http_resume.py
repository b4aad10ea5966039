"""Outputs reach the store as answers arrive: a server that dies mid-run loses nothing answered."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from openai_server import FakeServer, write_study
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()


def stored(out: Path) -> int:
    with sqlite3.connect(out / "store.sqlite") as db:
        return int(db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])


def test_a_server_that_dies_after_20_of_40_keeps_20_and_the_rerun_sends_only_20(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    with FakeServer() as server:
        study = write_study(tmp_path, server.url, n=40, retries=1)
        server.die_after = 20
        died = runner.invoke(app, ["eval", str(study), "--out", str(out)])
        assert died.exit_code == 1, died.output
        assert server.url in died.stderr and "Traceback" not in died.output
        assert stored(out) == 20  # every answer that arrived, no more, no less

        server.die_after = None  # the server is back
        before = server.requests
        resumed = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
        assert resumed.exit_code == 0, resumed.output
        assert server.requests - before == 20
    assert stored(out) == 40
    results = json.loads((out / "results.json").read_text())
    assert results["models"]["api"]["metrics"]["exact_match"] == {
        **results["models"]["api"]["metrics"]["exact_match"],
        "mean": 1.0,
        "n": 40,
    }


def test_requests_in_flight_stay_within_concurrency(tmp_path: Path) -> None:
    """Items go out one request each, and multiple choice asks one request per choice: together
    they never hold more than `concurrency` requests open."""
    with FakeServer(slow_s=0.05) as server:
        study = write_study(tmp_path, server.url, n=12, concurrency=3)
        spec = json.loads(study.read_text())
        spec["task"]["kind"] = "multiple_choice"
        spec["dataset"]["fields"]["choices"] = "options"
        spec["metrics"] = []
        study.write_text(json.dumps(spec))
        rows = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
        (tmp_path / "data.jsonl").write_text(
            "".join(json.dumps({**r, "options": ["Paris", "London", "Rome"]}) + "\n" for r in rows)
        )
        server.always["capital"] = "slow"
        result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out"), "--json"])
        assert result.exit_code == 0, result.output
        assert server.requests == 36
        assert server.max_in_flight == 3
    assert json.loads(result.stdout)["models"]["api"]["metrics"]["acc"]["mean"] == 1.0
