"""Servers that fail: errors, stalls, dropped streams, a server killed mid-sweep, an engine that
never comes up or dies. Each level records what happened, the run ends cleanly, and what was
measured is written."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import serving_servers
from serving_servers import LOOPBACK, Loopback
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()
# The fixtures these tests use (a module of their own, not a conftest: see serving_servers).
loopback = serving_servers.loopback
SMALL = ["--prompt-tokens", "8", "--output-tokens", "4", "--timeout", "5"]


def _bench(*args: str, code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, ["bench", *args, "--json"])
    assert result.exit_code == code, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _requests(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]


def test_http_errors_are_counted_by_kind(loopback: Loopback) -> None:
    for status, every in ((500, 3), (429, 2)):
        url = loopback(status_every=every, status=status)
        data = _bench(url, "--concurrency", "2", "--requests", "12", "--warmup", "0", *SMALL)
        (level,) = data["levels"]
        assert level["errors"] == 12 // every and level["completed"] == 12 - 12 // every
        assert level["error_kinds"] == {f"http {status}": 12 // every}
        assert level["timeouts"] == 0
        assert level["ttft_s"]["count"] == level["completed"]
        assert data["complete"] is True


def test_dropped_streams_and_stalls(loopback: Loopback, tmp_path: Path) -> None:
    url = loopback(drop_every=2)
    data = _bench(url, "--concurrency", "2", "--requests", "8", "--warmup", "0", *SMALL)
    assert data["levels"][0]["error_kinds"] == {"stream ended early": 4}

    url = loopback(json_every=4)
    data = _bench(url, "--concurrency", "2", "--requests", "8", "--warmup", "0", *SMALL)
    assert data["levels"][0]["error_kinds"] == {"not a stream (application/json)": 2}

    url = loopback(stall_every=3)
    out = tmp_path / "stall"
    data = _bench(
        url, "--concurrency", "3", "--requests", "6", "--warmup", "0",
        "--prompt-tokens", "8", "--output-tokens", "4", "--timeout", "0.5", "--out", str(out),
    )  # fmt: skip
    level = data["levels"][0]
    assert level["timeouts"] == 2 and level["error_kinds"] == {"timeout": 2}
    stalled = [r for r in _requests(out) if r["error"]]
    assert len(stalled) == 2
    # A stalled request is given up at the timeout, not waited for.
    assert all(0.5 <= r["e2e_s"] < 1.5 for r in stalled)


def test_a_server_killed_mid_sweep_ends_the_run_with_what_was_measured(
    loopback: Loopback, tmp_path: Path
) -> None:
    # Dies when its 12th request arrives: level 1 (concurrency 1: 1 warm-up + 5) is whole,
    # level 2 (2 + 5) loses its end, level 3 gets no answer, so level 4 is not sent.
    url = loopback(die_after=12)
    out = tmp_path / "killed"
    result = runner.invoke(
        app,
        ["bench", url, "--concurrency", "1,2,3,4", "--requests", "5", *SMALL, "--out", str(out)],
    )
    assert result.exit_code == 1, result.output
    assert "stopped answering" in result.stderr and "Traceback" not in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and "stopped answering" in summary["error"]
    first, second, third = summary["levels"]
    assert first["errors"] == 0 and first["completed"] == 5
    assert 0 < second["errors"] < 5
    assert third["errors"] == 5 and third["completed"] == 0
    assert {r["level"] for r in _requests(out)} == {0, 1, 2}


def test_an_engine_that_never_comes_up_is_an_error_with_its_log(tmp_path: Path) -> None:
    python = shlex.quote(sys.executable)
    crash = f"{python} -c \"import sys; print('model not found: x.gguf'); sys.exit(3)\""
    result = runner.invoke(app, ["bench", "--serve", crash, "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert "exited before it answered" in error["message"] and "exit code 3" in error["message"]
    assert "model not found: x.gguf" in error["message"]

    slow = f"{python} -c \"import time; print('loading', flush=True); time.sleep(60)\""
    result = runner.invoke(
        app, ["bench", "--serve", slow, "--startup-timeout", "1", "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 1
    assert "did not answer within 1 s" in result.stderr and "loading" in result.stderr


def test_an_engine_that_dies_keeps_the_levels_measured(tmp_path: Path) -> None:
    serve = (
        f"{shlex.quote(sys.executable)} {shlex.quote(str(LOOPBACK))} --port {{port}} --die-after 9"
    )
    out = tmp_path / "died"
    data = _bench(
        "--serve", serve, "--concurrency", "1,2,4", "--requests", "4", *SMALL, "--out", str(out),
        code=1,
    )  # fmt: skip
    assert data["complete"] is False
    assert "the engine stopped during the bench (exit code 1)" in data["error"]
    assert data["levels"][0]["errors"] == 0 and data["levels"][1]["errors"] > 0
    assert json.loads((out / "summary.json").read_text())["levels"] == data["levels"]
    assert (out / "engine.log").exists()


def test_bad_options_are_clear_errors() -> None:
    url = "http://127.0.0.1:9"
    cases = [
        ([url, "--prompt-tokens", "lots"], "not a token length"),
        ([url, "--concurrency", "1", "--rate", "2"], "two kinds of load"),
        ([url, "--knee"], "none were given"),
        ([url, "--concurrency", "0"], "between 1 and 65536"),
        ([url, "--serve", "x"], "not both"),
        (["--serve", "x {weights}"], "unknown placeholder {weights}"),
        (["--serve", "x {file}"], "no file was given"),
        ([], "give the server's URL"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["bench", *args])
        assert result.exit_code != 0
        assert message in result.output, (args, result.output)
