"""Evaluation on a Ray cluster: throughput with 1, 2 and 4 worker nodes, and Ray's overhead.

    .venv/bin/python benchmarks/cluster_scaling.py [--items 200] [--latency-ms 50]

Scaling: four HTTP candidates, each against its own loopback OpenAI-compatible server that
answers every request after a fixed latency (50 ms), `--items` items each, run by `eval`'s Ray
executor (the code `llmselect eval --ray` runs) on a local cluster of 1, 2 and 4 worker nodes
(`ray.cluster_utils.Cluster`; the head runs no task). Units hold 25 items.

What a node can do is fixed, so that the benchmark measures what adding nodes gives, as on a
real cluster where each node brings capacity of its own: each node has one CPU and an HTTP
unit asks for one (the study's `executor: {http_cpus: 1}`), so a node runs one unit at a time,
and each unit sends one request at a time (`concurrency: 1`). A node therefore answers at most
1 / 50 ms = 20 items a second, and N nodes 20 N. (Before, an HTTP unit asked a quarter CPU, so
one node ran four units and asked 80 items a second by itself: this 2-core machine, which runs
every node, the driver and the servers, was then the limit at one node already, and four nodes
were no faster: 0.72x to 1.15x.) The nodes are the limit, as long as this
machine's cores keep up with the work around the requests (the driver storing every output,
each node's raylet and worker). That work is light at 20 to 80 items a second; what it asks
of the cores is shown (the driver's CPU per item), and the table gives each run's share of
the nodes' ceiling. Where the rest goes is measured too: the mean time of one request as its
unit timed it (50 ms and HTTP's own), and the share of the nodes' time spent in a request (the
rest: units starting and ending, the driver sending them). The loopback servers run in a
process of their own, so that they stand for servers elsewhere and take no time from the
driver's Python (they did, in its process).

Items per second are over the whole run as the driver sees it (planning, sending the units,
storing every output). The cluster starts once with the most nodes, a warm-up run starts each
node's worker, and nodes are then taken away (4, then 2, then 1). The target (issue 18) is 3x
from 1 to 4 nodes.

Overhead: one local CPU candidate (a small Llama built here, transformers on the CPU) on the
same items, run in this process (`eval` without `--ray`) and as one Ray unit on a one-node
cluster with as many CPUs (Ray gives its worker as many threads): the Ray run over the local
one, both including the model's load; the target is under 10%. The cluster is started before
either is timed (starting it is reported apart); after one run of each to warm up, the two take
turns three times and the medians are compared.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "evaluation"))

from openai_server import FakeServer  # noqa: E402  (the tests' loopback server)
from ray_fixtures import start_cluster as start_local_cluster  # noqa: E402

from llmselect.evaluation.executors import ExecutorSpec, open_executor  # noqa: E402
from llmselect.evaluation.runner import run_models  # noqa: E402
from llmselect.evaluation.store import Store  # noqa: E402
from llmselect.evaluation.study import EvalStudy  # noqa: E402

SCALING_TARGET = 3.0
NODE_CPUS = 1.0
"""Each worker node's CPUs, and what an HTTP unit asks for: one unit per node at a time."""
OVERHEAD_TARGET = 0.10


def write_items(folder: Path, count: int) -> Path:
    rows = [
        {"id": f"q{i}", "question": f"What is the capital of France? ({i})", "answer": "Paris"}
        for i in range(count)
    ]
    path = folder / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def http_study(folder: Path, urls: list[str], items: int) -> EvalStudy:
    write_items(folder, items)
    return EvalStudy.model_validate(
        {
            "dataset": {
                "path": "data.jsonl",
                "fields": {"input": "question", "reference": "answer", "id": "id"},
            },
            "task": {"kind": "generate", "template": "{{ input }} A:"},
            "metrics": ["exact_match"],
            "candidates": [
                {"name": f"api{n}", "openai": url, "model": "tiny", "concurrency": 1}
                for n, url in enumerate(urls)
            ],
        }
    )


def timed_run(
    study: EvalStudy, folder: Path, spec: ExecutorSpec | None
) -> tuple[float, float, float]:
    """Seconds for a whole run into a fresh store, the CPU seconds this process (the driver)
    used, and the seconds the items' requests took, all added up (each output's `seconds`, as
    the unit that sent it measured it)."""
    store_path = folder / f"store-{time.monotonic_ns()}.sqlite"
    store = Store(store_path)
    began, cpu = time.perf_counter(), time.process_time()
    try:
        run_models(study, folder, store, executor=open_executor(spec))
    finally:
        store.close()
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    with sqlite3.connect(store_path) as db:
        asking = float(db.execute("SELECT SUM(seconds) FROM samples").fetchone()[0] or 0.0)
    return seconds, cpu, asking


def start_cluster(workers: int, cpus: float) -> tuple[Any, float]:
    """A head that runs no task and `workers` nodes of `cpus` CPUs; seconds to start them."""
    began = time.perf_counter()
    cluster = start_local_cluster(workers, head_cpus=0, worker_cpus=cpus)
    return cluster, time.perf_counter() - began


def stop_cluster(cluster: Any) -> None:
    import ray

    ray.shutdown()
    cluster.shutdown()


def serve(latency_s: float, count: int, urls: Any, stop: Any) -> None:
    """In a process of its own: `count` loopback servers that answer after `latency_s`; their
    URLs go back through `urls`, and they stop when `stop` is set."""
    servers = [FakeServer(slow_s=latency_s) for _ in range(count)]
    for server in servers:
        server.always = {"": "slow"}  # every answer waits `latency_s`
        server.__enter__()
    urls.send([s.url for s in servers])
    stop.wait()
    for server in servers:
        server.__exit__()


def scaling(
    items: int, latency_s: float, node_counts: list[int], shard_items: int = 25
) -> list[dict[str, float]]:
    """Items per second with each count of worker nodes: the cluster starts with the most,
    every node starts its worker in a warm-up run, then nodes are taken away, most first."""
    rows = []
    spawn = multiprocessing.get_context("spawn")  # not forked from a process that runs Ray
    urls_in, urls_out = spawn.Pipe(duplex=False)
    stop = spawn.Event()
    servers = spawn.Process(target=serve, args=(latency_s, 4, urls_out, stop), daemon=True)
    servers.start()
    urls: list[str] = urls_in.recv()
    # One unit per node at a time: a unit asks for the whole of a node's one CPU.
    spec = ExecutorSpec(ray="auto", shard_items=shard_items, http_cpus=NODE_CPUS)
    cluster, started_s = start_cluster(max(node_counts), cpus=NODE_CPUS)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            study = http_study(folder, urls, items)
            (folder / "warm").mkdir()
            # One unit per candidate, one per node: each node starts the worker the runs use.
            warm = http_study(folder / "warm", urls, shard_items)
            timed_run(warm, folder / "warm", spec)
            for nodes in sorted(node_counts, reverse=True):
                for node in list(cluster.worker_nodes)[nodes:]:
                    cluster.remove_node(node)
                cluster.wait_for_nodes()
                seconds, cpu, asking = timed_run(study, folder, spec)
                done = len(study.candidates) * items
                rows.append(
                    {
                        "nodes": nodes,
                        "s": seconds,
                        "rate": done / seconds,
                        "ceiling": nodes / latency_s,
                        "cpu_ms": cpu / done * 1e3,
                        # A node runs one unit at a time: the share of its time spent waiting
                        # on a request, and the mean time of one (50 ms, and HTTP's own).
                        "asking": asking / (nodes * seconds),
                        "request_ms": asking / done * 1e3,
                    }
                )
    finally:
        stop_cluster(cluster)
        stop.set()
        servers.join(timeout=10)
    rows.sort(key=lambda row: row["nodes"])
    for row in rows:
        row["start_s"] = started_s
    return rows


def build_model(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests" / "evaluation"))
    from conftest import build_tiny_model

    return build_tiny_model(folder / "model", seed=1)


def local_study(folder: Path, model: Path, items: int) -> EvalStudy:
    rows = [
        {"id": f"i{n}", "q": f"Q: What is the capital of Italy? ({n}) A:"} for n in range(items)
    ]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return EvalStudy.model_validate(
        {
            "dataset": {"path": "data.jsonl", "fields": {"input": "q", "id": "id"}},
            "task": {"kind": "generate", "max_tokens": 32},
            "candidates": [{"name": "tiny", "transformers": str(model), "batch_size": 8}],
        }
    )


def overhead(items: int, cpus: int, repeats: int = 3) -> dict[str, float]:
    """The local run and the Ray run in turn, `repeats` times each after one of each to warm
    up (the cluster already started): the medians, so that a busy moment on a shared machine
    weighs on both alike."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        study = local_study(folder, build_model(folder), items)
        cluster, started_s = start_cluster(1, cpus=cpus)
        spec = ExecutorSpec(ray="auto", cpus=cpus, shard_items=items)
        local: list[float] = []
        on_ray: list[float] = []
        try:
            for turn in range(repeats + 1):
                local.append(timed_run(study, folder, None)[0])
                on_ray.append(timed_run(study, folder, spec)[0])
                if turn == 0:
                    local, on_ray = [], []
        finally:
            stop_cluster(cluster)
    return {
        "local_s": statistics.median(local),
        "ray_s": statistics.median(on_ray),
        "start_s": started_s,
    }


def keep_niceness(nice: int) -> None:
    """Ray starts its processes at niceness 0: bring each to the run's, as they appear."""
    import psutil

    while True:
        for process in psutil.Process().children(recursive=True):
            try:
                if process.nice() != nice:
                    process.nice(nice)
            except psutil.Error:
                pass
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200, help="items per HTTP candidate")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--nodes", default="1,2,4", help="worker node counts to measure")
    parser.add_argument("--local-items", type=int, default=400, help="items of the CPU model")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the CPU model's unit")
    parser.add_argument("--no-overhead", action="store_true", help="measure the scaling only")
    parser.add_argument(
        "--nice",
        type=int,
        default=-5,
        help="niceness of this run and of the cluster it starts (when allowed; 0: as is)",
    )
    args = parser.parse_args()
    # The tables' width, also where the output goes to a file (Rich would take 80 columns).
    console = Console(width=None if sys.stdout.isatty() else 120)
    if args.nice:
        # A raylet ends its node when its agents take over ~15 s to start, which they do on a
        # machine whose cores are busy with other work: the whole run (local and Ray alike)
        # runs at this priority, so the comparisons stay fair.
        try:
            os.nice(args.nice)
            threading.Thread(target=keep_niceness, args=(args.nice,), daemon=True).start()
        except PermissionError:
            console.print(f"(not allowed to run at niceness {args.nice}: running as is)")

    rows = scaling(args.items, args.latency_ms / 1000, [int(n) for n in args.nodes.split(",")])
    table = Table(
        title=f"4 HTTP candidates x {args.items} items, {args.latency_ms:g} ms each",
        caption="one unit per node at a time, one request at a time per unit; request ms: "
        "one request as its unit timed it; in requests: the nodes' time spent in one; "
        f"ceiling: nodes x 1 / {args.latency_ms:g} ms",
    )
    columns = (
        "nodes",
        "run s",
        "driver CPU ms/item",
        "request ms",
        "in requests",
        "items/s",
        "of ceiling",
        "x 1 node",
    )
    for column in columns:
        table.add_column(column, justify="right")
    base = rows[0]["rate"]
    for row in rows:
        table.add_row(
            f"{row['nodes']:g}",
            f"{row['s']:.2f}",
            f"{row['cpu_ms']:.2f}",
            f"{row['request_ms']:.1f}",
            f"{row['asking']:.0%}",
            f"{row['rate']:.1f}",
            f"{row['rate'] / row['ceiling']:.0%} of {row['ceiling']:.0f}",
            f"{row['rate'] / base:.2f}",
        )
    console.print(table)
    console.print(
        f"(starting the cluster of {rows[-1]['nodes']:g} nodes: {rows[0]['start_s']:.0f} s)"
    )
    ratio = rows[-1]["rate"] / base
    verdict = "meets" if ratio >= SCALING_TARGET else "misses"
    console.print(
        f"{rows[-1]['nodes']:g} nodes / 1 node: {ratio:.2f}x ({verdict} the {SCALING_TARGET:g}x "
        "target)"
    )

    if args.no_overhead:
        return
    cost = overhead(args.local_items, args.cpus)
    extra = cost["ray_s"] / cost["local_s"] - 1
    table = Table(title=f"one CPU candidate (tiny Llama), {args.local_items} items")
    for column in ("run", "s"):
        table.add_column(column, justify="right")
    table.add_row("this process (eval)", f"{cost['local_s']:.2f}")
    table.add_row(f"one Ray unit, {args.cpus} CPUs (eval --ray)", f"{cost['ray_s']:.2f}")
    table.add_row("(starting the one-node cluster)", f"{cost['start_s']:.1f}")
    console.print(table)
    verdict = "meets" if extra < OVERHEAD_TARGET else "misses"
    console.print(
        f"Ray overhead: {extra:+.1%} ({verdict} the {OVERHEAD_TARGET:.0%} target; medians of "
        "three runs each, taken in turn)"
    )


if __name__ == "__main__":
    main()
