"""`eval --ray`: a study runs on a real two-node Ray cluster, each candidate x shard a task on
some node, and measures what a run on this machine measures."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from openai_server import FakeServer, write_study
from ray_fixtures import ray_cluster, results_of
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.errors import LLMSelectError
from llmselect.evaluation.executors import ExecutorSpec
from llmselect.evaluation.executors.needs import Needs, Node, check_capacity, gpus_for

pytest.importorskip("ray")
__all__ = ["ray_cluster"]  # the fixture, imported for the tests below
runner = CliRunner()


def with_executor(study: Path, executor: object) -> Path:
    spec = json.loads(study.read_text())
    spec["executor"] = executor
    study.write_text(json.dumps(spec))
    return study


def test_an_http_study_on_two_nodes_measures_what_a_local_run_does(
    tmp_path: Path, ray_cluster: str
) -> None:
    with FakeServer() as server:
        study = write_study(tmp_path, server.url, n=24)
        with_executor(study, {"shard_items": 6})
        local = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "local")])
        assert local.exit_code == 0, local.output
        on_ray = runner.invoke(
            app,
            ["eval", str(study), "--out", str(tmp_path / "ray"), "--ray", ray_cluster, "--json"],
        )
        assert on_ray.exit_code == 0, on_ray.output
        assert server.requests == 48  # each item once per run
    assert results_of(tmp_path / "ray") == results_of(tmp_path / "local")
    cluster = json.loads(on_ray.stdout)["cluster"]
    units = cluster["units"]
    assert [(u["candidate"], u["shard"], u["items"]) for u in units] == [
        ("api", shard, 6) for shard in range(4)
    ]
    assert sum(u["produced"] for u in units) == 24
    ray: Any = pytest.importorskip("ray")
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert {u["node_id"] for u in units} == nodes  # spread over both nodes
    assert all(u["cpus"] == 0.25 and u["gpus"] == 0 for u in units)  # HTTP: a light task

    # The terminal says where the units ran; a rerun finds everything stored and sends nothing.
    again = runner.invoke(
        app, ["eval", str(study), "--out", str(tmp_path / "ray"), "--ray", ray_cluster]
    )
    assert again.exit_code == 0, again.output
    assert "ran on the Ray cluster" in again.stderr and "0 units" in again.stderr


def test_a_local_model_on_ray_writes_the_outputs_of_a_local_run(
    tmp_path: Path, ray_cluster: str, tiny_models: tuple[Path, Path]
) -> None:
    rows = [{"id": f"i{n}", "q": f"Q: What is the capital of France? ({n}) A:"} for n in range(6)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    study = tmp_path / "study.yaml"
    study.write_text(
        json.dumps(
            {
                "dataset": {"path": "data.jsonl", "fields": {"input": "q", "id": "id"}},
                "task": {"kind": "generate", "max_tokens": 4},
                "candidates": [{"name": "tiny", "transformers": str(tiny_models[0])}],
                "executor": {"ray": ray_cluster, "shard_items": 3},
            }
        )
    )
    on_ray = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "ray"), "--json"])
    assert on_ray.exit_code == 0, on_ray.output
    units = json.loads(on_ray.stdout)["cluster"]["units"]
    assert len(units) == 2 and all(u["cpus"] == 1 for u in units)  # no GPU: a CPU each
    local = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "local"), "--ray"])
    assert local.exit_code != 0  # --ray takes an address
    study.write_text(study.read_text().replace(f'"ray": "{ray_cluster}", ', ""))
    local = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    assert results_of(tmp_path / "ray") == results_of(tmp_path / "local")
    # Where the model ran is kept beside its outputs, as for a local run.
    with sqlite3.connect(tmp_path / "ray" / "store.sqlite") as db:
        assert db.execute("SELECT device FROM runs").fetchall() == [("cpu",)]


def test_a_candidate_no_node_can_hold_is_reported_before_anything_runs(
    tmp_path: Path, ray_cluster: str
) -> None:
    with FakeServer() as server:
        study = write_study(tmp_path, server.url, n=4)
        with_executor(study, {"http_cpus": 8})
        result = runner.invoke(
            app, ["eval", str(study), "--out", str(tmp_path / "out"), "--ray", ray_cluster]
        )
        assert server.requests == 0
    assert result.exit_code == 1
    assert "candidate 'api' needs 8 CPUs on one node (an HTTP client)" in result.stderr
    assert "the largest node of the cluster has 0 GPUs and 1 CPU" in result.stderr


def test_gpus_come_from_the_sizing_stage(tiny_models: tuple[Path, Path]) -> None:
    """A model gets as many GPUs as its weights and cache need at bf16; more than a node has
    is an error naming what it needs."""
    one = gpus_for("tiny", tiny_models[0], "H100-SXM-80GB")
    assert one.gpus == 1 and "bf16 on H100-SXM-80GB" in one.why
    nodes = [Node("a", "10.0.0.1", cpus=32, gpus=2, gpu_type="H100")]
    check_capacity({"tiny": one}, nodes)
    with pytest.raises(LLMSelectError) as error:
        check_capacity({"big": Needs(cpus=1, gpus=4, why="bf16 on H100")}, nodes)
    assert "needs 4 GPUs and 1 CPU on one node (bf16 on H100)" in error.value.message
    assert "2 GPUs" in error.value.message


def test_the_study_names_its_executor(tmp_path: Path) -> None:
    assert ExecutorSpec.model_validate("ray").ray == "local"
    assert ExecutorSpec.model_validate({"ray": "auto"}).ray == "auto"
    assert not ExecutorSpec.model_validate("local").uses_ray
    study = write_study(tmp_path, "http://127.0.0.1:9/v1")
    with_executor(study, {"ray": "auto", "shards": 4})
    result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "executor.shards" in result.stderr and "study.yaml" in result.stderr


def test_an_api_key_stays_in_the_environment_it_is_in(
    tmp_path: Path, ray_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver's key is not copied into the tasks or Ray's runtime environment (which Ray
    keeps in its control store and shows in the dashboard): workers use their own nodes'
    environment, here one without a key, and the key is written nowhere in Ray's session."""
    secret = "sk-driver-only-7f3a9c"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with FakeServer() as server:
        study = write_study(tmp_path, server.url, n=4)
        result = runner.invoke(
            app, ["eval", str(study), "--out", str(tmp_path / "out"), "--ray", ray_cluster]
        )
        assert result.exit_code == 0, result.output
        assert server.authorization == [None] * 4
    ray: Any = pytest.importorskip("ray")
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    written = [p for p in session.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert written == []
    assert not [p for p in (tmp_path / "out").iterdir() if secret.encode() in p.read_bytes()]


def test_pending_items_are_cut_into_even_shards_and_ray_keeps_the_studys_settings() -> None:
    from llmselect.evaluation.datasets import Item
    from llmselect.evaluation.executors import CandidateWork, choose_executor
    from llmselect.evaluation.executors.ray_cluster import shards
    from llmselect.evaluation.study import Candidate

    items = [Item(id=f"i{n}", input="x", line=n + 1) for n in range(10)]
    work = CandidateWork(
        candidate=Candidate(name="api", openai="http://127.0.0.1:9/v1", model="m"),
        backend="openai:...",
        pending=items,
        prompts={i.id: "x" for i in items},
        keys={i.id: i.id for i in items},
        total=12,
        stored=2,
        file="data.jsonl",
    )
    cut = shards(work, Needs(cpus=0.25), size=4)
    assert [len(u.items) for u in cut] == [4, 4, 2]
    assert [i.id for u in cut for i in u.items] == [i.id for i in items]  # each item once
    assert [len(u.items) for u in shards(work, Needs(cpus=1), size=250)] == [10]
    assert shards(CandidateWork(**{**work.__dict__, "pending": []}), Needs(cpus=1), 4) == []

    study = ExecutorSpec(ray="auto", shard_items=50)
    assert choose_executor("ray://h:10001", study) == ExecutorSpec(
        ray="ray://h:10001", shard_items=50
    )
    assert choose_executor(None, study) is study
    assert choose_executor("local", None) == ExecutorSpec(ray="local")
