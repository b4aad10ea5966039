"""A real Ray cluster of two nodes on this machine, started once per test session.

Each node has one CPU and a small object store (the tests' units are light); the head runs the
dashboard, which Ray's state API (`ray.util.state`) reads to find a unit's worker process.
"""

from __future__ import annotations

import json
import socket
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


@pytest.fixture(scope="session")
def ray_cluster(request: pytest.FixtureRequest) -> Iterator[str]:
    """The cluster's address (what `--ray` takes); this process is connected to it."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    if not _started:
        cluster: Any = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "object_store_memory": OBJECT_STORE_BYTES,
                "include_dashboard": True,
                "dashboard_port": _free_port(),
            },
        )
        cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="error", log_to_driver=False)
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
