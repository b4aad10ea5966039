"""The whole of issue 18 at once: `llmselect eval --ray ... --store postgresql://...` runs a
study on a real two-node Ray cluster with its outputs in a real PostgreSQL server, and measures
what the same study measures on this machine with SQLite; `runs list` on the shared store shows
the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from openai_server import FakeServer, write_study
from ray_fixtures import ray_cluster, results_of
from typer.testing import CliRunner

from llmselect.cli import app

pytest.importorskip("ray")
__all__ = ["ray_cluster"]  # the session's cluster, imported for the test below
runner = CliRunner()
ITEMS = 24


def two_candidates(tmp_path: Path, url: str) -> Path:
    """24 capital questions for two candidates on one server (the second asks for another
    model name, so its outputs have keys of their own), in units of 6: 8 units."""
    study = write_study(tmp_path, url, n=ITEMS)
    spec = json.loads(study.read_text())
    second = spec["candidates"][0] | {"name": "api-b", "model": "tiny-b"}
    spec["candidates"].append(second)
    spec["executor"] = {"shard_items": 6}
    study.write_text(json.dumps(spec))
    return study


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(query))  # the test's own queries


def test_a_study_on_ray_with_postgresql_measures_what_one_machine_with_sqlite_does(
    tmp_path: Path, ray_cluster: str, pg_url: str
) -> None:
    with FakeServer(slow_s=0) as server:
        study = two_candidates(tmp_path, server.url)
        on_cluster = runner.invoke(
            app,
            [
                *("eval", str(study), "--out", str(tmp_path / "cluster"), "--json"),
                *("--ray", ray_cluster, "--store", pg_url),
            ],
            env={"USER": "ann"},
        )
        assert on_cluster.exit_code == 0, on_cluster.output
        asked = server.requests
        here = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "here"), "--json"])
        assert here.exit_code == 0, here.output
        # Each run asked the model for every item of both candidates, once.
        assert (asked, server.requests - asked) == (2 * ITEMS, 2 * ITEMS)

    # The same metrics, comparisons and per-item outputs and scores (timings aside).
    assert results_of(tmp_path / "cluster") == results_of(tmp_path / "here")
    cluster_json, here_json = json.loads(on_cluster.stdout), json.loads(here.stdout)
    assert "cluster" not in here_json
    for model in ("api", "api-b"):
        assert cluster_json["models"][model]["metrics"] == here_json["models"][model]["metrics"]
        assert cluster_json["models"][model]["metrics"]["exact_match"]["n"] == ITEMS

    # The units ran on both nodes of the cluster; their outputs went to PostgreSQL only.
    units = cluster_json["cluster"]["units"]
    assert sorted((u["candidate"], u["shard"]) for u in units) == [
        (name, shard) for name in ("api", "api-b") for shard in range(4)
    ]
    assert sum(u["produced"] for u in units) == 2 * ITEMS
    ray: Any = pytest.importorskip("ray")
    assert {u["node_id"] for u in units} == {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert not (tmp_path / "cluster" / "store.sqlite").exists()
    assert (tmp_path / "here" / "store.sqlite").exists()
    # Every item of each model stored once (`model` is the backend: server and model name).
    counted = "SELECT COUNT(*), COUNT(DISTINCT cache_key), COUNT(DISTINCT model) FROM samples"
    assert rows(pg_url, counted) == [(2 * ITEMS, 2 * ITEMS, 2)]
    assert rows(pg_url, "SELECT COUNT(*) FROM failures") == [(0,)]

    # `runs list` on the shared store shows what the cluster run measured, and who ran it.
    listed = runner.invoke(app, ["runs", "list", "--store", pg_url, "--json"])
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.stdout)["runs"]
    assert sorted((r["model"], r["items"], r["produced"]) for r in runs) == [
        ("api", ITEMS, ITEMS),
        ("api-b", ITEMS, ITEMS),
    ]
    assert {r["who"].split("@")[0] for r in runs} == {"ann"}
    assert {r["dataset_sha256"] for r in runs} == {here_json["dataset"]["sha256"]}
    table = runner.invoke(app, ["runs", "list", "--store", pg_url], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "api-b" in table.stdout and f"{ITEMS}/{ITEMS}" in table.stdout
    assert "s3cret" not in table.stdout + table.stderr  # the URL's password is never shown
