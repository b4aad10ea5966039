"""A server that says how long to wait (`Retry-After`, in seconds or as an HTTP date) is waited
for that long, at most the candidate's timeout, instead of the exponential backoff."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import pytest
from openai_server import FakeServer, write_study
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()


def waited(server: FakeServer) -> float:
    """Seconds between the refused request and its retry (one item, so they are consecutive)."""
    return server.times[1] - server.times[0]


@pytest.mark.parametrize("status", ["429", "503"])
def test_retry_after_in_seconds_is_waited(tmp_path: Path, status: str) -> None:
    with FakeServer() as server:
        server.faults.append(status)
        server.retry_after = "1"
        study = write_study(tmp_path, server.url, n=1)  # backoff 0.01 s
        result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out")])
        assert result.exit_code == 0, result.output
        assert server.requests == 2
        assert 1.0 <= waited(server) < 1.8


def test_retry_after_as_an_http_date_is_waited(tmp_path: Path) -> None:
    with FakeServer() as server:
        server.faults.append("429")
        # Whole seconds only: two seconds from the answer is between one and two seconds away.
        server.retry_after = lambda: email.utils.formatdate(time.time() + 2, usegmt=True)
        study = write_study(tmp_path, server.url, n=1)
        result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out")])
        assert result.exit_code == 0, result.output
        assert 0.9 <= waited(server) < 2.5


def test_a_wait_longer_than_the_timeout_is_cut_to_it_and_said(tmp_path: Path) -> None:
    with FakeServer() as server:
        server.faults.append("429")
        server.retry_after = "3600"
        study = write_study(tmp_path, server.url, n=1, timeout_s=1)
        result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out")])
        assert result.exit_code == 0, result.output
        assert 1.0 <= waited(server) < 1.8
    assert "asked to wait 3600 s (Retry-After); waiting 1 s" in result.stderr


def test_an_unreadable_retry_after_falls_back_to_the_backoff(tmp_path: Path) -> None:
    with FakeServer() as server:
        server.faults.append("429")
        server.retry_after = "soon"
        study = write_study(tmp_path, server.url, n=1)
        result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out")])
        assert result.exit_code == 0, result.output
        assert waited(server) < 0.5
