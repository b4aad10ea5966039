"""Result store write and read speed: SQLite (the default) against a shared PostgreSQL store.

    python benchmarks/store_backends.py [--items 4000] [--batch 8] [--writers 1,4]

Writes `--items` outputs (a 200-character prompt and a 100-character output each) through the
store's public `put`, in batches of `--batch` as the runner commits them, from each number of
writer processes in `--writers` (each writes its share of the keys, plus the first batch of
everyone else's, as two runs of one study would); then reads them back with `done` and `get`,
as a resumed study does. PostgreSQL is a server this script starts on loopback with initdb and
pg_ctl (tests/postgres_server.py: Debian's `postgresql` package), a new database per row.
Writers start together once each has opened its store (process start-up is not timed); writes/s
is all outputs over the slowest writer's time. Reference: SQLite with one writer; `x SQLite` is
each row's writes per second over it. The run's own outputs per second are what
matters beside these: a model answering 50 items a second is far below either.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from llmselect.evaluation.store import Sample, open_store

ROOT = Path(__file__).resolve().parents[1]


def keys(n: int) -> list[str]:
    return [f"{i:064x}" for i in range(n)]


def write(
    location: str, mine: list[str], others: list[str], batch: int, start: Any, took: Any
) -> None:
    store = open_store(location)
    try:
        todo = others + mine  # another run's first items first: they meet on those keys
        start.wait()
        began = time.perf_counter()
        for first in range(0, len(todo), batch):
            store.put(
                [
                    Sample(
                        cache_key=k,
                        model="m",
                        item_id=k[-8:],
                        prompt="p" * 200,
                        output="o" * 100,
                        seconds=0.1,
                    )
                    for k in todo[first : first + batch]
                ]
            )
        took.put(time.perf_counter() - began)
    finally:
        store.close()


def measure(location: str, items: int, batch: int, writers: int) -> dict[str, float]:
    all_keys = keys(items)
    shares = [all_keys[w::writers] for w in range(writers)]
    overlap = [[k for s in shares if s is not share for k in s[:batch]] for share in shares]
    ctx = multiprocessing.get_context("spawn")
    start, took = ctx.Barrier(writers), ctx.Queue()
    procs = [
        ctx.Process(target=write, args=(location, share, other, batch, start, took))
        for share, other in zip(shares, overlap, strict=True)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a writer failed (exit code {p.exitcode})")
    wrote = max(took.get() for _ in procs)
    store = open_store(location)
    try:
        stored = store.count()
        start = time.perf_counter()
        found = store.done(all_keys)
        got = store.get(all_keys)
        read = time.perf_counter() - start
    finally:
        store.close()
    if stored != items or len(found) != items or len(got) != items:
        raise SystemExit(f"stored {stored}, found {len(found)}, read {len(got)} of {items}")
    return {"write_per_s": items / wrote, "read_s": read}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--writers", default="1,4")
    args = parser.parse_args()
    counts = [int(w) for w in args.writers.split(",")]

    sys.path.insert(0, str(ROOT / "tests"))
    import postgres_server

    server = postgres_server.postgres_server._get_wrapped_function()()
    started = next(server)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for writers in counts:
                lite = str(Path(tmp) / f"store-{writers}.sqlite")
                pg = started.create_database()
                rows.append(("SQLite", writers, measure(lite, args.items, args.batch, writers)))
                rows.append(("PostgreSQL", writers, measure(pg, args.items, args.batch, writers)))
    finally:
        next(server, None)  # stops the server

    reference = rows[0][2]["write_per_s"]
    table = Table(
        title=f"result store: {args.items} outputs in batches of {args.batch}", header_style="bold"
    )
    for column in ("store", "writers", "writes/s", "x SQLite", "done+get all, s"):
        table.add_column(column, justify="left" if column == "store" else "right")
    for name, writers, result in rows:
        table.add_row(
            name,
            str(writers),
            f"{result['write_per_s']:,.0f}",
            f"{result['write_per_s'] / reference:.2f}",
            f"{result['read_s']:.3f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
