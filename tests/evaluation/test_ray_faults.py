"""Nothing lost, nothing twice: a Ray worker killed mid-unit, and the driver killed with
SIGKILL, on a real two-node cluster. Every item ends up stored once, and the results are those
of a run on this machine."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from openai_server import FakeServer, write_study
from ray_fixtures import ray_cluster, results_of
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.jobs.evaluate import Evaluation, evaluate

pytest.importorskip("ray")
__all__ = ["ray_cluster"]
runner = CliRunner()
ITEMS = 20


def stored(store: Path) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(store) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
        except sqlite3.OperationalError:  # the driver has not made the table yet
            return 0


def wait_for(what: Any, timeout_s: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def slow_study(tmp_path: Path, server: FakeServer) -> Path:
    """20 items, one request at a time, each answered in 0.2 s; two units of 10."""
    server.always = {"capital": "slow"}
    study = write_study(tmp_path, server.url, n=ITEMS, concurrency=1)
    spec = json.loads(study.read_text())
    spec["executor"] = {"shard_items": 10}
    study.write_text(json.dumps(spec))
    return study


def local_results(tmp_path: Path, study: Path) -> dict[str, Any]:
    out = tmp_path / "local"
    done = runner.invoke(app, ["eval", str(study), "--out", str(out)])
    assert done.exit_code == 0, done.output
    return results_of(out)


def test_a_worker_killed_mid_unit_is_replaced_and_sends_only_what_is_not_stored(
    tmp_path: Path, ray_cluster: str
) -> None:
    from ray.util.state import list_tasks

    out = tmp_path / "ray"
    with FakeServer(slow_s=0.2) as server:
        study = slow_study(tmp_path, server)
        finished: list[Evaluation | BaseException] = []

        def drive() -> None:
            try:
                finished.append(evaluate(study, out, ray=ray_cluster, record_speed=False))
            except BaseException as exc:
                finished.append(exc)

        driver = threading.Thread(target=drive)
        driver.start()
        wait_for(lambda: stored(out / "store.sqlite") >= 3)
        running = wait_for(
            lambda: [
                t
                for t in list_tasks(
                    address=ray_cluster, filters=[("state", "=", "RUNNING")], detail=True
                )
                if t.name.startswith("llmselect-unit:") and t.worker_pid
            ]
        )
        os.kill(running[0].worker_pid, signal.SIGKILL)
        driver.join(timeout=300)
        assert finished and isinstance(finished[0], Evaluation), finished
        # The item in flight when the worker died may be asked again; no stored one is.
        assert ITEMS <= server.requests <= ITEMS + 1
        units = finished[0].cluster.units if finished[0].cluster else []
        assert sorted(u.attempts for u in units) == [1, 2]
        assert sum(u.produced for u in units) == ITEMS
        assert stored(out / "store.sqlite") == ITEMS
        assert results_of(out) == local_results(tmp_path, study)


def test_a_driver_killed_with_sigkill_resumes_where_it_stopped(
    tmp_path: Path, ray_cluster: str
) -> None:
    out = tmp_path / "ray"
    command = [sys.executable, "-m", "llmselect", "eval", "--out", str(out), "--ray", ray_cluster]
    with FakeServer(slow_s=0.2) as server:
        study = slow_study(tmp_path, server)
        driver = subprocess.Popen([*command, str(study)], stdout=subprocess.DEVNULL)
        wait_for(lambda: stored(out / "store.sqlite") >= 4)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        time.sleep(1.0)  # Ray ends the dead driver's tasks; an answer in flight may land
        before = stored(out / "store.sqlite")
        assert 4 <= before < ITEMS

        resumed = subprocess.run(
            [*command, "--json", str(study)], capture_output=True, text=True, timeout=300
        )
        assert resumed.returncode == 0, resumed.stderr
        units = json.loads(resumed.stdout)["cluster"]["units"]
        assert sum(u["items"] for u in units) == ITEMS - before  # only what was not stored
        assert stored(out / "store.sqlite") == ITEMS
        assert results_of(out) == local_results(tmp_path, study)
