"""A real Ray cluster of two nodes on this machine, started once per test session.

Each node has one CPU and a small object store (the tests' units are light); the head runs the
dashboard, which Ray's state API (`ray.util.state`) reads to find a unit's worker process.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

OBJECT_STORE_BYTES = 80 * 2**20
_started: list[Any] = []
"""The one cluster of the session (test modules import the fixture, each gets the same)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_cluster(
    workers: int,
    *,
    head_cpus: float,
    worker_cpus: float,
    dashboard: bool = False,
    attempts: int = 3,
) -> Any:
    """A `ray.cluster_utils.Cluster` of a head and `workers` nodes, this process connected.

    A raylet waits about 15 s for its agents (Python processes) to say their ports, and ends its
    node if they have not; on a machine whose few cores are busy with other work, starting them
    can take longer (seen here at a load of 8 on 2 cores). Each try that times out is cleaned
    up (the processes it started are ended) and the cluster started again, after a pause."""
    import psutil
    import ray
    from ray.cluster_utils import Cluster

    for attempt in range(attempts):
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        try:
            head: dict[str, Any] = {
                "num_cpus": head_cpus,
                "include_dashboard": dashboard,
                "object_store_memory": OBJECT_STORE_BYTES,
            }
            if dashboard:
                head["dashboard_port"] = _free_port()
            cluster: Any = Cluster(initialize_head=True, head_node_args=head)
            for _ in range(workers):
                cluster.add_node(num_cpus=worker_cpus, object_store_memory=OBJECT_STORE_BYTES)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, logging_level=logging.ERROR, log_to_driver=False)
            return cluster
        except Exception:
            for process in psutil.Process().children(recursive=True):
                if process.pid not in before:
                    process.kill()
            if attempt == attempts - 1:
                raise
            time.sleep(10)
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def ray_cluster(request: pytest.FixtureRequest) -> Iterator[str]:
    """The cluster's address (what `--ray` takes); this process is connected to it."""
    ray = pytest.importorskip("ray")
    if not _started:
        cluster = start_cluster(1, head_cpus=1, worker_cpus=1, dashboard=True)
        _started.append(cluster)

        def stop() -> None:
            ray.shutdown()
            cluster.shutdown()

        request.session.addfinalizer(stop)
    yield str(_started[0].address)


def results_of(out: Path) -> dict[str, Any]:
    """What a run measured, without the timings (which differ from run to run)."""
    results = json.loads((out / "results.json").read_text())
    return {
        "metrics": {name: model["metrics"] for name, model in results["models"].items()},
        "comparisons": results["comparisons"],
        "samples": sorted(
            json.dumps(line, sort_keys=True)
            for line in map(json.loads, (out / "samples.jsonl").read_text().splitlines())
        ),
    }
