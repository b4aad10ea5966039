"""What the bench measures, against a loopback server whose timing is known: TTFT and ITL,
token counts from usage, rate and Poisson arrivals, repeats, and prompts from a study."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import serving_servers
from serving_servers import Loopback
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.serving import parse_lengths
from llmselect.serving.metrics import percentile, stats
from llmselect.serving.prompts import SyntheticPrompts

runner = CliRunner()
# The fixtures these tests use (a module of their own, not a conftest: see serving_servers).
loopback = serving_servers.loopback
tiny_gguf = serving_servers.tiny_gguf


def _bench(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["bench", *args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_timings_are_what_the_server_did(loopback: Loopback) -> None:
    """First token after 50 ms, then one every 10 ms, usage reported: the bench sees that."""
    url = loopback(ttft=0.05, token_delay=0.01, usage=True)
    for endpoint in ([], ["--chat"]):
        data = _bench(
            url, *endpoint, "--concurrency", "1,4", "--requests", "8",
            "--prompt-tokens", "20", "--output-tokens", "6",
        )  # fmt: skip
        for level in data["levels"]:
            assert level["tokens_source"] == "usage"
            assert level["output_tokens"] == 8 * 6
            assert level["prompt_tokens"] == 8 * 20  # the loopback counts words
            assert 0.05 <= level["ttft_s"]["p50"] < 0.08
            assert 0.01 <= level["itl_s"]["p50"] < 0.02
            assert 0.01 <= level["tpot_s"]["p50"] < 0.02
            assert 0.1 <= level["e2e_s"]["p50"] < 0.15  # 50 ms + 5 x 10 ms
            per_user = level["output_tokens_per_s_per_user"]["p50"]
            assert 50 < per_user <= 100  # 1 / TPOT
        one, four = data["levels"]
        # The loopback serves requests side by side: four in flight, about four times the rate.
        assert four["requests_per_s"] > 2.5 * one["requests_per_s"]
        assert data["endpoint"] == ("chat" if endpoint else "completions")


def test_rate_levels_send_on_schedule(loopback: Loopback, tmp_path: Path) -> None:
    url = loopback(ttft=0.01)
    out = tmp_path / "rate"
    data = _bench(
        url, "--rate", "20", "--requests", "20", "--warmup", "0",
        "--prompt-tokens", "4", "--output-tokens", "2", "--out", str(out),
    )  # fmt: skip
    (level,) = data["levels"]
    assert level["profile"] == "constant" and level["rate"] == 20 and level["concurrency"] is None
    starts = [json.loads(line)["start_s"] for line in (out / "requests.jsonl").open()]
    _on_schedule(starts, [k / 20 for k in range(20)])

    out = tmp_path / "poisson"
    data = _bench(
        url, "--rate", "40", "--poisson", "--requests", "30", "--warmup", "0", "--seed", "7",
        "--prompt-tokens", "4", "--output-tokens", "2", "--out", str(out),
    )  # fmt: skip
    assert data["levels"][0]["profile"] == "poisson"
    starts = [json.loads(line)["start_s"] for line in (out / "requests.jsonl").open()]
    rng = random.Random("7/0/0")
    due = [0.0]
    for _ in starts[1:]:  # the seeded schedule, request by request
        due.append(due[-1] + rng.expovariate(40))
    _on_schedule(starts, due)


def _on_schedule(starts: list[float], due: list[float]) -> None:
    """Each request sent when due: none ever early, most within 10 ms (this machine is shared,
    so one may be late now and then, and the next ones catch up)."""
    late = [start - when for start, when in zip(starts, due, strict=True)]
    assert min(late) > -0.001, late
    assert sorted(late)[len(late) // 2] < 0.01, late
    assert max(late) < 0.25, late


def test_repeats_give_intervals(loopback: Loopback) -> None:
    url = loopback(ttft=0.02, token_delay=0.002)
    data = _bench(
        url, "--concurrency", "2", "--requests", "6", "--repeats", "3",
        "--prompt-tokens", "4", "--output-tokens", "4",
    )  # fmt: skip
    (level,) = data["levels"]
    assert level["repeats"] == 3 and level["requests"] == 18
    for name in ("ttft_p50", "ttft_p95", "itl_p50", "tpot_p50", "e2e_p50", "output_tokens_per_s"):
        interval = level["ci95"][name]
        assert interval["low"] <= interval["mean"] <= interval["high"]
    assert 0.02 <= level["ci95"]["ttft_p50"]["mean"] < 0.04


def test_prompts_come_from_the_study_through_its_template(
    loopback: Loopback, tmp_path: Path
) -> None:
    log = tmp_path / "prompts.jsonl"
    url = loopback(log=str(log))
    rows = [{"q": f"question {i}", "a": "x"} for i in range(5)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    study = tmp_path / "study.yaml"
    study.write_text(
        "dataset: {path: data.jsonl, fields: {input: q, reference: a}}\n"
        'task: {template: "Q: {{ input }}\\nA:"}\n'
        "targets: {ttft_p95_s: 30, tokens_per_s: 1}\n"
        "candidates: {ids: [gpt2]}\n"
    )
    data = _bench(
        url, "--study", str(study), "--concurrency", "2", "--requests", "10", "--output-tokens", "3"
    )
    assert data["prompt_source"].endswith("data.jsonl") and data["prompt_tokens"] is None
    assert data["targets"] == {"ttft_p95_s": 30.0, "tokens_per_s": 1.0}
    assert data["levels"][0]["goodput"] == 1.0
    sent = [json.loads(line)["prompt"] for line in log.read_text().splitlines()]
    assert len(sent) == 12  # 2 warm-up and 10
    assert set(sent) == {f"Q: question {i}\nA:" for i in range(5)}


def test_synthetic_prompts_follow_their_lengths() -> None:
    fixed = SyntheticPrompts(parse_lengths("32"), seed=1).take(20)
    assert {len(p.split()) for p in fixed} == {32}
    assert len(set(fixed)) == 20  # no two alike: a prefix cache cannot answer one from another
    assert SyntheticPrompts(parse_lengths("32"), seed=1).take(20) == fixed
    spread = [len(p.split()) for p in SyntheticPrompts(parse_lengths("uniform:10-20"), 0).take(200)]
    assert min(spread) == 10 and max(spread) == 20
    normal = [len(p.split()) for p in SyntheticPrompts(parse_lengths("normal:100,10"), 0).take(400)]
    assert 97 < stats(normal).mean < 103  # type: ignore[operator]


def test_synthetic_prompts_are_cut_by_the_tokenizer(tiny_gguf: Path) -> None:
    pytest.importorskip("llama_cpp")
    from llmselect.serving.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(tiny_gguf)
    for prompt in SyntheticPrompts(parse_lengths("uniform:5-40"), 3, tokenizer).take(20):
        # The tiny vocabulary spells most words letter by letter: cut, not counted by words.
        assert abs(len(tokenizer.encode(prompt)) - len(prompt)) < len(prompt)
        assert 5 <= len(tokenizer.encode(prompt)) <= 41


def test_percentiles_interpolate_like_numpy() -> None:
    values = sorted([0.3, 0.1, 0.4, 0.15, 0.9, 0.26])
    assert percentile(values, 50) == pytest.approx(0.28)
    assert percentile(values, 90) == pytest.approx(0.65)
    assert percentile([1.0], 99) == 1.0


def test_chunked_bodies_are_decoded_however_they_are_cut() -> None:
    from llmselect.serving.http import ProtocolError, _dechunk

    body = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nTrailer: x\r\n\r\nNEXT"
    for cut in range(len(body) + 1):  # every way the first read can end
        payload, rest, finished = _dechunk(body[:cut])
        assert b"hello world!".startswith(payload)
        if finished:
            assert payload == b"hello world!" and rest == b"NEXT"[: cut - len(body) + 4]
            continue
        more, left, finished = _dechunk(rest + body[cut:])
        assert payload + more == b"hello world!" and finished and left == b"NEXT"
    with pytest.raises(ProtocolError):
        _dechunk(b"zz\r\nhello\r\n")


def test_a_level_can_run_for_a_duration(loopback: Loopback) -> None:
    url = loopback(ttft=0.02, token_delay=0.005)
    data = _bench(
        url, "--concurrency", "2", "--duration", "1", "--warmup", "2",
        "--prompt-tokens", "4", "--output-tokens", "4",
    )  # fmt: skip
    (level,) = data["levels"]
    # About 2 users x 1 s / 35 ms a request; the last ones started within the second end after.
    assert 30 <= level["requests"] <= 60 and level["errors"] == 0
    assert 1.0 <= level["duration_s"] < 1.3


def test_tokens_are_counted_by_the_tokenizer_where_the_server_gives_no_usage(
    loopback: Loopback, tiny_gguf: Path
) -> None:
    pytest.importorskip("llama_cpp")
    from llmselect.serving.tokenizers import load_tokenizer

    url = loopback()
    data = _bench(
        url, "--concurrency", "1", "--requests", "3", "--output-tokens", "3",
        "--tokenizer", str(tiny_gguf),
    )  # fmt: skip
    (level,) = data["levels"]
    assert level["tokens_source"] == "tokenizer"
    # The loopback streams " w0", " w1", " w2"; the tiny vocabulary spells them out.
    assert level["output_tokens"] == 3 * len(load_tokenizer(tiny_gguf).encode(" w0 w1 w2"))


def test_the_knee_is_bisected_between_the_last_met_and_the_first_missed() -> None:
    from llmselect.serving.sweep import _knee_search

    for limit, best in ((64, 5), (64, 1), (64, 0), (8, 8), (6, 6), (64, 37)):
        met: dict[int, bool] = {}
        for concurrency in _knee_search(limit, met):
            assert concurrency not in met and 1 <= concurrency <= limit
            met[concurrency] = concurrency <= best
        passed = [c for c, ok in met.items() if ok]
        assert max(passed, default=0) == best, (limit, best, met)
        missed = [c for c, ok in met.items() if not ok]
        assert min(missed, default=limit + 1) == best + 1 or best == limit
