"""A `serve:` candidate on a Ray cluster: each unit starts its engine on the node that runs it,
and the run measures what a run on this machine measures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml
from test_served_candidates import engine_logs, engines_running, loopback_serve, write_study
from typer.testing import CliRunner

from llmselect.cli import app

pytest.importorskip("ray")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
from ray_fixtures import ray_cluster, results_of

__all__ = ["ray_cluster"]  # the fixture, imported for the test below
runner = CliRunner()


def test_each_unit_starts_its_engine_where_it_runs(tmp_path: Path, ray_cluster: str) -> None:
    study = write_study(tmp_path, n=8, serve=loopback_serve())
    raw = yaml.safe_load(study.read_text())
    raw["executor"] = {"shard_items": 4}
    study.write_text(yaml.safe_dump(raw))
    local = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    on_ray = runner.invoke(
        app, ["eval", str(study), "--out", str(tmp_path / "ray"), "--ray", ray_cluster]
    )
    assert on_ray.exit_code == 0, on_ray.output
    assert results_of(tmp_path / "ray") == results_of(tmp_path / "local")
    # Two units, two engines, each started by the Ray worker that ran its unit (the log's name
    # ends with the starter's process id), each stopped when its unit was done.
    logs = engine_logs(tmp_path / "ray")
    assert len(logs) == 2
    starters = {int(log.stem.split("-")[-1]) for log in logs}
    assert os.getpid() not in starters
    assert engines_running() == []
