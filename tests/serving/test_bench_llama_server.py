"""`llmselect bench` against a real engine: llama-cpp-python's OpenAI-compatible server on a tiny
GGUF, given by URL and started by `--serve`."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import httpx
import serving_servers
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.serving import GivenPrompts, Level, RequestSettings, run_level

runner = CliRunner()
# The fixtures these tests use (a module of their own, not a conftest: see serving_servers).
llama_server = serving_servers.llama_server
tiny_gguf = serving_servers.tiny_gguf

ORDERED = ("min", "p50", "p90", "p95", "p99", "max")


def _bench(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["bench", *args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _consistent(level: dict[str, Any], requests: int) -> None:
    """The figures of one level agree with one another."""
    assert level["requests"] == requests
    assert level["completed"] + level["errors"] == requests
    for name in ("ttft_s", "itl_s", "tpot_s", "e2e_s"):
        stats = level[name]
        values = [stats[key] for key in ORDERED]
        assert all(v is not None for v in values), (name, stats)
        assert values == sorted(values), (name, stats)
        assert stats["min"] <= stats["mean"] <= stats["max"]
    assert level["ttft_s"]["max"] <= level["e2e_s"]["max"]
    assert level["output_tokens_per_s"] > 0 and level["requests_per_s"] > 0
    # Throughput is tokens over the level's time, as the requests' own counts add up.
    assert abs(level["output_tokens"] / level["duration_s"] - level["output_tokens_per_s"]) < 1e-6


def test_a_sweep_of_three_levels_is_consistent(llama_server: str, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    data = _bench(
        llama_server,
        "--concurrency",
        "1,2,4",
        "--requests",
        "8",
        "--prompt-tokens",
        "16",
        "--output-tokens",
        "8",
        "--out",
        str(out),
    )
    levels = data["levels"]
    assert [level["concurrency"] for level in levels] == [1, 2, 4]
    assert data["complete"] is True and data["error"] is None
    for level in levels:
        _consistent(level, 8)
        assert level["errors"] == 0
        # llama-cpp-python's server reports no usage in a stream: one token per chunk.
        assert level["tokens_source"] == "chunks"
        assert level["goodput"] is None  # no targets given
    # The server runs one request at a time: four in flight wait for one another.
    assert levels[2]["ttft_s"]["p50"] > levels[0]["ttft_s"]["p50"]

    lines = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    # Each request once: the warm-up ones (as many as the level's concurrency) and 8 measured.
    assert len(lines) == sum(8 + c for c in (1, 2, 4))
    assert len({(r["level"], r["index"]) for r in lines}) == len(lines)
    for index, concurrency in enumerate((1, 2, 4)):
        mine = [r for r in lines if r["level"] == index]
        assert sum(1 for r in mine if r["warmup"]) == concurrency
        measured = [r for r in mine if not r["warmup"]]
        assert len(measured) == 8
        assert sum(r["output_tokens"] for r in measured) == levels[index]["output_tokens"]
        for r in measured:
            assert len(r["token_times_s"]) == r["output_tokens"]
            assert r["token_times_s"][0] == r["ttft_s"] <= r["e2e_s"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["levels"] == levels and summary["complete"] is True


def test_token_counts_match_the_servers_usage(llama_server: str) -> None:
    """Streamed tokens, counted one per chunk, are the tokens the server counts in its usage when
    asked the same (greedy) question without streaming."""
    prompt = "What is the capital of Rome"
    settings = RequestSettings(model="tiny", max_tokens=12, timeout_s=30)
    records = asyncio.run(
        run_level(
            llama_server,
            settings,
            Level("concurrency", concurrency=2, requests=4),
            GivenPrompts([prompt], seed=0),
        )
    )
    assert len(records) == 4 and all(r.ok for r in records)
    body = {**settings.body(prompt), "stream": False}
    body.pop("stream_options")
    usage = httpx.post(llama_server + "/v1/completions", json=body, timeout=30).json()["usage"]
    assert {r.output_tokens for r in records} == {usage["completion_tokens"]}
    assert all(r.tokens_source == "chunks" for r in records)


def test_targets_give_goodput_and_the_knee(llama_server: str, tmp_path: Path) -> None:
    out = tmp_path / "knee"
    data = _bench(
        llama_server,
        "--knee",
        "--max-concurrency",
        "4",
        "--requests",
        "6",
        "--prompt-tokens",
        "8",
        "--output-tokens",
        "4",
        "--ttft-p95",
        "60",
        "--out",
        str(out),
    )
    # A minute to the first token: every level meets it, up to the cap.
    assert [level["concurrency"] for level in data["levels"]] == [1, 2, 4]
    assert all(level["goodput"] == 1.0 and level["meets_targets"] for level in data["levels"])
    assert data["knee"] == {"concurrency": 4, "first_miss": None}
    lines = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    # Each level warms up with as many requests as it holds in flight.
    warm = [sum(1 for r in lines if r["level"] == i and r["warmup"]) for i in range(3)]
    assert warm == [1, 2, 4]


def test_serve_starts_the_engine_and_stops_it(tiny_gguf: Path, tmp_path: Path) -> None:
    out = tmp_path / "served"
    command = (
        f"{shlex.quote(sys.executable)} -m llama_cpp.server --model {{file}} --port {{port}} "
        "--interrupt_requests false"
    )
    data = _bench(
        "--serve",
        command,
        "--file",
        str(tiny_gguf),
        "--concurrency",
        "1,2,3",
        "--requests",
        "5",
        "--prompt-tokens",
        "12",
        "--output-tokens",
        "6",
        "--out",
        str(out),
    )
    assert data["complete"] is True
    for level in data["levels"]:
        _consistent(level, 5)
        assert level["errors"] == 0
    engine = data["engine"]
    command_line = engine["command"]
    port = data["url"].rsplit(":", 1)[1]
    assert command_line[command_line.index("--port") + 1] == port
    assert command_line[command_line.index("--model") + 1] == str(tiny_gguf)
    assert engine["startup_s"] > 0
    log = Path(engine["log"])
    assert log == out / "engine.log" and "Uvicorn running" in log.read_text()
    # Stopped: its port answers no more.
    try:
        httpx.get(data["url"] + "/v1/models", timeout=2)
        raise AssertionError("the engine still answers")
    except httpx.ConnectError:
        pass
