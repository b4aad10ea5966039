"""Rank the models that meet every constraint; find the Pareto front; say it in words.

The score is a weighted sum of quality (measured task metrics, or a published benchmark
average where nothing was measured), speed (estimated tokens/s per user on the target
hardware, relative to the fastest) and cost (relative to the cheapest, by price per million
tokens when a price is given, else by memory). Models measured on the user's data rank before
those known only from published scores: the two scales are not comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmselect.selection.result import Entry, Quality, Recommendation
from llmselect.selection.study import SelectStudy

PUBLISHED_BENCHMARK = "open-llm-v1/average"
_STAGES = ("catalog", "license", "sizing", "targets", "evaluation")


@dataclass
class Ranked:
    entries: list[Entry]
    recommendation: Recommendation
    summary: str
    warnings: list[str]


def published_quality(
    entry: Entry, benchmarks: dict[str, float], name: str = PUBLISHED_BENCHMARK
) -> Quality | None:
    value = benchmarks.get(name)
    if value is None:
        return None
    if name == PUBLISHED_BENCHMARK:
        detail = "Open LLM Leaderboard v1 average (published, not measured on your data)"
    else:
        detail = f"{name} as its vendor published it (own setup; not measured on your data)"
    return Quality(value=value / 100, source="published", detail=detail, benchmark=name)


def _cost(entry: Entry) -> float:
    assert entry.fit is not None
    cost = entry.fit.estimates.cost_per_million_tokens
    return cost if cost is not None else entry.fit.memory.total_bytes * entry.fit.memory.devices


def _score(study: SelectStudy, entry: Entry, fastest: float, cheapest: float) -> float:
    assert entry.fit is not None
    w = study.ranking
    quality = entry.quality.value if entry.quality else 0.0
    speed = entry.fit.estimates.decode_tokens_per_s / fastest if fastest else 0.0
    cost = cheapest / _cost(entry) if _cost(entry) else 1.0
    return (w.quality * quality + w.speed * speed + w.cost * cost) / (w.quality + w.speed + w.cost)


def _ms_per_token(entry: Entry) -> float:
    assert entry.fit is not None
    return 1000 / entry.fit.estimates.decode_tokens_per_s


def _mark_pareto(entries: list[Entry]) -> None:
    """Not beaten on quality, time per token and memory at once, within one quality source."""
    for entry in entries:
        if entry.quality is None or entry.fit is None:
            continue
        mine = (entry.quality.value, -_ms_per_token(entry), -entry.fit.memory.total_bytes)
        entry.pareto = not any(
            other is not entry
            and other.quality is not None
            and other.fit is not None
            and other.quality.source == entry.quality.source
            and _dominates(
                (other.quality.value, -_ms_per_token(other), -other.fit.memory.total_bytes), mine
            )
            for other in entries
        )


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True)) and a != b


def rank(
    study: SelectStudy, entries: list[Entry], benchmarks: dict[str, dict[str, float]]
) -> Ranked:
    """Order the entries (ranked first), score and mark them, and write the recommendation.

    `benchmarks` maps a model id to its published benchmark values (catalog cards)."""
    for entry in entries:
        if entry.quality is None:
            entry.quality = published_quality(
                entry, benchmarks.get(entry.id, {}), study.ranking.published_benchmark
            )
    qualified = [e for e in entries if e.qualified and e.fit is not None]
    fastest = max((e.fit.estimates.decode_tokens_per_s for e in qualified if e.fit), default=0.0)
    cheapest = min((_cost(e) for e in qualified), default=0.0)
    for entry in qualified:
        entry.score = _score(study, entry, fastest, cheapest)
    qualified.sort(
        key=lambda e: (
            e.quality is not None and e.quality.source == "measured",
            e.quality is not None,
            e.score or 0.0,
        ),
        reverse=True,
    )
    for position, entry in enumerate(qualified, start=1):
        entry.rank = position
    _mark_pareto(qualified)
    chosen = {id(e) for e in qualified}  # by identity: comparing entries field by field is slow
    excluded = [e for e in entries if id(e) not in chosen]
    excluded.sort(key=lambda e: (_STAGES.index(e.exclusions[0].stage) if e.exclusions else 9, e.id))

    warnings = []
    if qualified and (qualified[0].quality is None or qualified[0].quality.source != "measured"):
        warnings.append(
            "no qualifying model was measured on your data: the ranking rests on published "
            "benchmarks and estimates"
        )
    recommendation = (
        _recommend(study, qualified, excluded) if qualified else _nothing_qualifies(study, excluded)
    )
    summary = f"{len(qualified)} of {len(entries)} models meet every constraint"
    return Ranked(qualified + excluded, recommendation, summary, warnings)


def _points(quality: Quality) -> str:
    text = f"{quality.value * 100:.1f}"
    if quality.low is not None and quality.high is not None:
        text += f" (95% CI {quality.low * 100:.1f}–{quality.high * 100:.1f})"
    return text


def _recommend(study: SelectStudy, qualified: list[Entry], excluded: list[Entry]) -> Recommendation:
    top = qualified[0]
    assert top.fit is not None
    est, mem = top.fit.estimates, top.fit.memory
    if top.quality is None:
        quality = "it has no task score, measured or published"
    elif top.quality.source == "measured":
        quality = f"it scores {_points(top.quality)} on your task"
    else:
        quality = f"it scores {top.quality.value * 100:.1f} {top.quality.where}"
    summary = (
        f"Choose {top.name} ({top.id}): {quality}. On {top.fit.hardware} at {top.fit.quant} "
        f"with {top.fit.engine} it needs {mem.total_bytes / 2**30:.1f} of "
        f"{mem.available_bytes / 2**30:.0f} GiB per device, answers first in "
        f"{_seconds(est.ttft_s)} and writes about {_rate(est.decode_tokens_per_s)} tokens/s "
        f"per user with {study.targets.concurrent_users} at once"
    )
    if est.cost_per_million_tokens is not None:
        summary += f", at ${est.cost_per_million_tokens:.3g} per million tokens"
    summary += "."
    if top.verdict:
        duties = len(top.duties)
        summary += f" License: {top.verdict}"
        summary += (
            f", with {duties} dut{'y' if duties == 1 else 'ies'} (see the report)."
            if duties
            else "."
        )
    if top.demo:
        summary += " Its measurements come from a small demo model built on this machine."
    runners = [_runner_up(top, other) for other in qualified[1:3]]
    change = _what_would_change(top.quality, excluded)
    return Recommendation(
        model=top.id, summary=summary, runners_up=runners, what_would_change=change
    )


def _seconds(value: float) -> str:
    return "well under 0.01 s" if value < 0.01 else f"about {value:.2g} s"


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _runner_up(top: Entry, other: Entry) -> str:
    parts = [other.name]
    if top.quality and other.quality and top.quality.source == other.quality.source:
        parts.append(f"{(other.quality.value - top.quality.value) * 100:+.1f} points")
    if top.fit and other.fit:
        ratio = other.fit.estimates.decode_tokens_per_s / top.fit.estimates.decode_tokens_per_s
        parts.append(f"{ratio:.2g}× the speed")
        mem = other.fit.memory.total_bytes / top.fit.memory.total_bytes
        parts.append(f"{mem:.2g}× the memory")
    if other.score is not None:
        parts.append(f"score {other.score:.2f}")
    return ", ".join(parts)


def _relaxes(entry: Entry) -> str | None:
    relaxes = [x.relax for x in entry.exclusions]
    if not relaxes or any(r is None for r in relaxes):
        return None
    # "if a" + "if b" + "if c" -> "if a, b and c"
    parts = list(dict.fromkeys(r for r in relaxes if r))
    parts = parts[:1] + [p.removeprefix("if ") for p in parts[1:]]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _what_would_change(best: Quality | None, excluded: list[Entry]) -> list[str]:
    lines: list[tuple[int, float, str]] = []
    for entry in excluded:
        relax = _relaxes(entry)
        q = entry.quality
        if relax is None or q is None:
            continue
        source = q.where
        if best is None:
            gain = q.value * 100
            text = (
                f"{_capital(relax)}, {entry.name} would qualify: it scores {gain:.1f} {source}, "
                "where the recommended model has no score"
            )
        elif q.source == best.source and q.value > best.value:
            gain = (q.value - best.value) * 100
            text = f"{_capital(relax)}, {entry.name} scores {gain:.1f} points higher {source}."
        else:
            continue
        lines.append((len(entry.exclusions), -gain, text))
    # The simplest changes first (one relaxation), then the largest gains.
    return [text for *_, text in sorted(lines)[:5]]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _nothing_qualifies(study: SelectStudy, excluded: list[Entry]) -> Recommendation:
    """Why nothing qualifies, and for each kind of relaxation the best model it lets in."""
    groups: dict[tuple[str, ...], list[Entry]] = {}
    for entry in excluded:
        if _relaxes(entry):
            keys = tuple(sorted({x.key for x in entry.exclusions}))
            groups.setdefault(keys, []).append(entry)

    def quality(entry: Entry) -> float:
        return entry.quality.value if entry.quality else -1.0

    # One relaxation before two, then the relaxation that lets in the most models.
    ordered = sorted(groups.items(), key=lambda kv: (len(kv[0]), -len(kv[1]), kv[0]))[:6]
    change = []
    for keys, members in ordered:
        best = max(members, key=quality)
        others = len(members) - 1
        line = f"{_capital(_relaxes(best) or '')}, {best.name} would qualify"
        if others:
            held = " and ".join(keys)
            verb = "are" if others > 1 else "is"
            line += f" ({others} more model{'s' * (others > 1)} {verb} held out only by {held})"
        change.append(line + ".")
    stages: dict[str, int] = {}
    for entry in excluded:
        for stage in dict.fromkeys(x.stage for x in entry.exclusions):
            stages[stage] = stages.get(stage, 0) + 1
    why = ", ".join(f"{n} by {stage}" for stage, n in sorted(stages.items(), key=lambda kv: -kv[1]))
    summary = f"No model meets every constraint of {study.name} ({why})."
    if change:
        summary += " The smallest changes that would let models in are listed below."
    return Recommendation(model=None, summary=summary, what_would_change=change)
