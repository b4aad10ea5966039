"""`llmselect select --ray`: a selection whose models run on a real two-node Ray cluster says
where their units ran (`cluster` in `--json`, lines on the terminal), as `eval` does, and
ranks on the scores a run on this machine measures; a run here has no `cluster` key.

In tests/evaluation with the other Ray tests: they share the session's one cluster, which
`ray_fixtures` (imported by this folder's name) starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from openai_server import FakeServer
from ray_fixtures import ray_cluster
from typer.testing import CliRunner

from llmselect.cli import app

pytest.importorskip("ray")
__all__ = ["ray_cluster"]  # the session's cluster, imported for the test below
runner = CliRunner()
MODELS = ("mistralai/Mistral-7B-Instruct-v0.2", "Qwen/Qwen2.5-7B-Instruct")


def select_study(folder: Path, url: str) -> Path:
    """`init`'s study, with two catalog models measured against one loopback server, in
    units of 4 items."""
    result = runner.invoke(app, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    study_file = folder / "study.yaml"
    study: dict[str, Any] = yaml.safe_load(study_file.read_text())
    study["hardware"] = "H100-80GB"
    study["candidates"] = {
        "ids": [],
        "run": [
            {"id": model, "openai": url, "model": f"m{n}", "timeout_s": 5}
            for n, model in enumerate(MODELS)
        ],
    }
    study["executor"] = {"shard_items": 4}  # where: --ray
    study_file.write_text(yaml.safe_dump(study))
    return study_file


def measured(outcome: dict[str, Any]) -> dict[str, Any]:
    return {e["id"]: e["quality"] for e in outcome["entries"] if e["id"] in MODELS}


def test_select_on_a_ray_cluster_says_where_its_models_ran(
    tmp_path: Path, ray_cluster: str
) -> None:
    with FakeServer(slow_s=0) as server:
        study = select_study(tmp_path / "study", server.url)
        items = len((tmp_path / "study" / "data" / "eval.jsonl").read_text().splitlines())
        on_cluster = runner.invoke(
            app,
            [
                *("select", str(study), "--out", str(tmp_path / "cluster"), "--no-report"),
                *("--ray", ray_cluster, "--json"),
            ],
        )
        assert on_cluster.exit_code == 0, on_cluster.output
        assert server.requests == 2 * items
        here = runner.invoke(
            app, ["select", str(study), "--out", str(tmp_path / "here"), "--no-report", "--json"]
        )
        assert here.exit_code == 0, here.output
        # On the terminal (a store of its own, so that the cluster runs every unit again).
        shown = runner.invoke(
            app,
            [
                *("select", str(study), "--out", str(tmp_path / "shown"), "--no-report"),
                *("--ray", ray_cluster),
            ],
        )
        assert shown.exit_code == 0, shown.output
        assert server.requests == 6 * items  # each run asked for every item once

    cluster_json, here_json = json.loads(on_cluster.stdout), json.loads(here.stdout)
    assert "cluster" not in here_json  # the JSON of a run here is unchanged
    assert measured(cluster_json) == measured(here_json)
    assert all(q and q["source"] == "measured" for q in measured(cluster_json).values())

    cluster = cluster_json["cluster"]
    shards = -(-items // 4)
    assert sorted((u["candidate"], u["shard"]) for u in cluster["units"]) == sorted(
        (model, shard) for model in MODELS for shard in range(shards)
    )
    assert sum(u["produced"] for u in cluster["units"]) == 2 * items
    assert all(u["cpus"] == 0.25 and u["gpus"] == 0 for u in cluster["units"])
    ray: Any = pytest.importorskip("ray")
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert {u["node_id"] for u in cluster["units"]} == nodes  # spread over both nodes
    assert cluster["address"] == ray.get_runtime_context().gcs_address

    # The lines `eval` prints: the cluster, then each node with its units and items.
    assert f"ran on the Ray cluster at {cluster['address']}: {2 * shards} units" in shown.stderr
    for node_id in nodes:
        assert f"({node_id[:8]}):" in shown.stderr
    assert "Shortlist" in shown.stdout
