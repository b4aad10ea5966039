"""A level's figures from its request records: percentiles, throughput, goodput, and intervals
over repeats."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from collections.abc import Sequence

from llmselect.serving.results import (
    Interval,
    LevelSummary,
    Profile,
    RequestRecord,
    Stats,
    Targets,
)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile of sorted values, interpolated linearly between ranks (numpy's
    default, which vLLM and guidellm report)."""
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def stats(values: Sequence[float]) -> Stats:
    if not values:
        return Stats()
    ordered = sorted(values)
    return Stats(
        mean=statistics.fmean(ordered),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        min=ordered[0],
        max=ordered[-1],
        count=len(ordered),
    )


def gaps(record: RequestRecord) -> list[float]:
    """The inter-token latencies of one request: the time between successive tokens."""
    times = record.token_times_s
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def meets(record: RequestRecord, targets: Targets) -> bool:
    """Whether one request saw the targets: its first token in time, and its answer streamed at
    least as fast as asked."""
    if not record.ok or record.ttft_s is None:
        return False
    if targets.ttft_p95_s is not None and record.ttft_s > targets.ttft_p95_s:
        return False
    if targets.tokens_per_s is not None:
        tpot = record.tpot_s
        if tpot is not None and tpot > 0 and 1 / tpot < targets.tokens_per_s:
            return False
    return True


def summarize(
    records: Sequence[RequestRecord],
    *,
    profile: Profile,
    concurrency: int | None,
    rate: float | None = None,
    targets: Targets | None = None,
) -> LevelSummary:
    """The figures of one level, over its measured requests (warm-up ones are left out), every
    repeat pooled; with two or more repeats, 95% intervals of the per-repeat figures."""
    measured = [r for r in records if not r.warmup]
    repeats = sorted({r.repeat for r in measured})
    figures = _figures(measured)
    summary = LevelSummary(
        profile=profile,
        concurrency=concurrency,
        rate=rate,
        repeats=max(len(repeats), 1),
        **figures.core,
        **_goodput(measured, figures.duration_s, figures.summary_per_user, targets),
    )
    if len(repeats) >= 2:
        per_repeat = [_figures([r for r in measured if r.repeat == k]) for k in repeats]
        summary.ci95 = _intervals([f.headline for f in per_repeat])
    return summary


class _Figures:
    """The figures of a set of records, and the few each repeat contributes to an interval."""

    def __init__(self, records: Sequence[RequestRecord]) -> None:
        done = [r for r in records if r.ok]
        failed = [r for r in records if not r.ok]
        self.duration_s = _duration(records)
        tokens = sum(r.output_tokens or 0 for r in done)
        prompt = [r.prompt_tokens for r in done if r.prompt_tokens is not None]
        tpots = [t for r in done if (t := r.tpot_s) is not None]
        sources = Counter(r.tokens_source for r in done if r.tokens_source)
        ttft = stats([r.ttft_s for r in done if r.ttft_s is not None])
        itl = stats([g for r in done for g in gaps(r)])
        tpot = stats(tpots)
        e2e = stats([r.e2e_s for r in done if r.e2e_s is not None])
        per_second = (lambda n: n / self.duration_s) if self.duration_s > 0 else (lambda n: 0.0)
        self.summary_per_user = stats([1 / t for t in tpots if t > 0])
        self.core = {
            "requests": len(records),
            "completed": len(done),
            "errors": len(failed),
            "timeouts": sum(1 for r in failed if r.error == "timeout"),
            "error_kinds": dict(Counter(str(r.error) for r in failed).most_common()),
            "duration_s": self.duration_s,
            "ttft_s": ttft,
            "itl_s": itl,
            "tpot_s": tpot,
            "e2e_s": e2e,
            "output_tokens": tokens,
            "prompt_tokens": sum(prompt) if prompt else None,
            "tokens_source": sources.most_common(1)[0][0] if sources else None,
            "output_tokens_per_s": per_second(tokens),
            "output_tokens_per_s_per_user": self.summary_per_user,
            "requests_per_s": per_second(len(done)),
        }
        self.headline = {
            "ttft_p50": ttft.p50,
            "ttft_p95": ttft.p95,
            "itl_p50": itl.p50,
            "tpot_p50": tpot.p50,
            "e2e_p50": e2e.p50,
            "output_tokens_per_s": per_second(tokens),
            "requests_per_s": per_second(len(done)),
        }


def _figures(records: Sequence[RequestRecord]) -> _Figures:
    return _Figures(records)


def _duration(records: Sequence[RequestRecord]) -> float:
    """From the first request sent to the last one finished; each repeat's span adds up (the
    repeats run one after another, each timed from its own start)."""
    total = 0.0
    for repeat in {r.repeat for r in records}:
        mine = [r for r in records if r.repeat == repeat]
        first = min(r.start_s for r in mine)
        last = max(r.start_s + (r.e2e_s or 0.0) for r in mine)
        total += max(last - first, 0.0)
    return total


def _goodput(
    records: Sequence[RequestRecord],
    duration_s: float,
    per_user: Stats,
    targets: Targets | None,
) -> dict[str, float | bool | None]:
    if targets is None or not targets.given or not records:
        return {"goodput": None, "goodput_requests_per_s": None, "meets_targets": None}
    good = sum(1 for r in records if meets(r, targets))
    done = [r for r in records if r.ok and r.ttft_s is not None]
    ttft = stats([r.ttft_s for r in done if r.ttft_s is not None])
    met = bool(done) and len(done) == len(records)
    if met and targets.ttft_p95_s is not None:
        met = ttft.p95 is not None and ttft.p95 <= targets.ttft_p95_s
    if met and targets.tokens_per_s is not None and per_user.count:
        slowest = percentile(
            sorted(1 / t for r in done if (t := r.tpot_s) is not None and t > 0), 5
        )
        met = slowest >= targets.tokens_per_s
    return {
        "goodput": good / len(records),
        "goodput_requests_per_s": good / duration_s if duration_s > 0 else 0.0,
        "meets_targets": met,
    }


def _intervals(per_repeat: list[dict[str, float | None]]) -> dict[str, Interval]:
    from scipy.stats import t  # only when repeats ask for intervals

    out: dict[str, Interval] = {}
    for name in per_repeat[0]:
        values = [v for f in per_repeat if (v := f[name]) is not None]
        if len(values) < 2:
            continue
        mean = statistics.fmean(values)
        half = float(t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / len(values) ** 0.5
        out[name] = Interval(mean=mean, low=mean - half, high=mean + half)
    return out
