"""The bench's client is not the bottleneck: what llmselect adds to the TTFT it measures.

A loopback server (tests/serving/loopback_server.py, its own process) streams every answer at
once. Two clients load it in turn, round after round, at concurrency 1 and 32: llmselect's load
generator (the code `llmselect bench` runs), and the reference, a bare asyncio client (one
keep-alive socket per user, the request written in one piece, the stream scanned for its first
`data:` line) that does the least a client can. What llmselect adds is its TTFT p50 minus the
reference's, round by round (the median over rounds, and its middle half: on a shared machine
the rounds differ by more than the clients do); the target (issue 17) is under 1 ms at
concurrency 32. Beside it, each client's CPU time per request.

    .venv/bin/python benchmarks/bench_client_overhead.py [--requests 300] [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from llmselect.serving import Level, RequestSettings, run_level
from llmselect.serving.metrics import percentile

SERVER = Path(__file__).resolve().parents[1] / "tests" / "serving" / "loopback_server.py"
TARGET_MS = 1.0


class Numbered:
    """Prompts `req-0`, `req-1`...: request n of a level carries prompt n."""

    def __init__(self) -> None:
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"req-{self.n - 1}"


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def llmselect_client(url: str, concurrency: int, requests: int, tokens: int) -> dict[str, float]:
    """TTFT per prompt, measured by llmselect's load generator."""
    settings = RequestSettings(model="loopback", max_tokens=tokens, timeout_s=30)
    level = Level("concurrency", concurrency=concurrency, requests=requests, warmup=concurrency)
    records = asyncio.run(run_level(url, settings, level, Numbered()))
    measured = [r for r in records if not r.warmup and r.ok and r.ttft_s is not None]
    assert len(measured) == requests, f"{requests - len(measured)} requests failed"
    return {f"req-{r.index}": r.ttft_s or 0.0 for r in measured}


def reference_client(url: str, concurrency: int, requests: int, tokens: int) -> dict[str, float]:
    """TTFT per prompt, measured by the least a client can do over asyncio."""
    host, port = url.removeprefix("http://").split(":")
    prompts = Numbered()
    ttft: dict[str, float] = {}
    total = requests + concurrency

    async def user() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while prompts.n < total:
            prompt = prompts.next()
            body = json.dumps(
                {"model": "loopback", "prompt": prompt, "max_tokens": tokens, "stream": True}
            ).encode()
            head = (
                f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            start = time.perf_counter()
            writer.write(head.encode() + body)
            first = None
            buffer = b""
            while not buffer.endswith(b"0\r\n\r\n"):
                buffer += await reader.read(65536)
                if first is None and b"data:" in buffer:
                    first = time.perf_counter() - start
            if int(prompt.split("-")[1]) >= concurrency:  # the first ones warm up
                ttft[prompt] = first or 0.0
        writer.close()

    async def users() -> None:
        await asyncio.gather(*(user() for _ in range(concurrency)))

    asyncio.run(users())
    return ttft


def p50_ms(values: list[float]) -> float:
    return percentile(sorted(values), 50) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    port = _port()
    clients = {"llmselect": llmselect_client, "reference": reference_client}
    rows: dict[int, dict[str, list[float]]] = {}
    server = subprocess.Popen([sys.executable, str(SERVER), "--port", str(port)])  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(url + "/v1/models", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        for concurrency in (1, 32):
            figures: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                for name, measure in clients.items():
                    cpu = time.process_time()
                    ttft = measure(url, concurrency, args.requests, args.tokens)
                    cpu = time.process_time() - cpu
                    figures.setdefault(name + " cpu", []).append(
                        cpu / (args.requests + concurrency) * 1e6
                    )
                    figures.setdefault(name, []).append(p50_ms(list(ttft.values())))
            rows[concurrency] = figures
    finally:
        server.terminate()
        server.wait()
    table = Table(
        title=f"TTFT p50 in ms, median of {args.rounds} rounds of {args.requests} requests "
        f"({args.tokens} tokens each)"
    )
    for name in (
        "concurrency",
        "llmselect",
        "reference",
        "llmselect added",
        f"added / {TARGET_MS:g} ms",
        "added, middle half",
        "client CPU µs/request (llmselect / reference)",
    ):
        table.add_column(name, justify="right")
    added_32 = 0.0
    for concurrency, figures in rows.items():
        added = [a - b for a, b in zip(figures["llmselect"], figures["reference"], strict=True)]
        median = statistics.median(added)
        quartiles = statistics.quantiles(added, n=4) if len(added) > 1 else [median] * 3
        if concurrency == 32:
            added_32 = median
        table.add_row(
            str(concurrency),
            f"{statistics.median(figures['llmselect']):.3f}",
            f"{statistics.median(figures['reference']):.3f}",
            f"{median:.3f}",
            f"{median / TARGET_MS:.2f}",
            f"{quartiles[0]:.3f} to {quartiles[2]:.3f}",
            f"{statistics.median(figures['llmselect cpu']):.0f} / "
            f"{statistics.median(figures['reference cpu']):.0f}",
        )
    Console(width=120).print(table)
    verdict = "met" if added_32 < TARGET_MS else "MISSED"
    print(f"target: llmselect adds under {TARGET_MS:g} ms to TTFT p50 at concurrency 32: {verdict}")


if __name__ == "__main__":
    main()
