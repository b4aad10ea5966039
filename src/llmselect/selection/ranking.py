"""Rank the models that meet every constraint; find the Pareto front; pick what to recommend
and what would change it (worded in `sentences`).

The score is a weighted sum of quality (measured task metrics, or a published benchmark
average where nothing was measured), speed (estimated tokens/s per user on the target
hardware, relative to the fastest) and cost (relative to the cheapest, by price per million
tokens when a price is given, else by memory). Models measured on the user's data rank before
those known only from published scores: the two scales are not comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmselect.selection import sentences
from llmselect.selection.result import Entry, Quality, Recommendation
from llmselect.study import SelectStudy

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
    speed = entry.tokens_per_s / fastest if fastest else 0.0
    cost = cheapest / _cost(entry) if _cost(entry) else 1.0
    return (w.quality * quality + w.speed * speed + w.cost * cost) / (w.quality + w.speed + w.cost)


def _ms_per_token(entry: Entry) -> float:
    assert entry.fit is not None
    return 1000 / entry.tokens_per_s


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
    fastest = max((e.tokens_per_s for e in qualified if e.fit), default=0.0)
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
        warnings.append(sentences.NOTHING_MEASURED)
    recommendation = (
        _recommend(study, qualified, excluded) if qualified else _nothing_qualifies(study, excluded)
    )
    summary = sentences.qualified(len(qualified), len(entries))
    return Ranked(qualified + excluded, recommendation, summary, warnings)


def _recommend(study: SelectStudy, qualified: list[Entry], excluded: list[Entry]) -> Recommendation:
    top = qualified[0]
    return Recommendation(
        model=top.id,
        summary=sentences.recommendation(top, study.targets.concurrent_users),
        runners_up=[sentences.runner_up(top, other) for other in qualified[1:3]],
        what_would_change=_what_would_change(top.quality, excluded),
    )


def _relaxes(entry: Entry) -> list[str] | None:
    """What relaxing would let the entry in (each constraint once), or None when some exclusion
    cannot be relaxed."""
    relaxes = [x.relax for x in entry.exclusions]
    if not relaxes or any(r is None for r in relaxes):
        return None
    return list(dict.fromkeys(r for r in relaxes if r))


def _what_would_change(best: Quality | None, excluded: list[Entry]) -> list[str]:
    """Up to five excluded models that would beat the recommendation if a constraint were
    relaxed: the simplest changes first (one relaxation), then the largest gains."""
    lines: list[tuple[int, float, str]] = []
    for entry in excluded:
        relax = _relaxes(entry)
        q = entry.quality
        if relax is None or q is None:
            continue
        if best is None:
            gain = q.value * 100
        elif q.source == best.source and q.value > best.value:
            gain = (q.value - best.value) * 100
        else:
            continue
        text = sentences.would_beat(entry, relax, gain, recommended_has_score=best is not None)
        lines.append((len(entry.exclusions), -gain, text))
    return [text for *_, text in sorted(lines)[:5]]


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
        change.append(sentences.would_qualify(best, _relaxes(best) or [], len(members) - 1, keys))
    stages: dict[str, int] = {}
    for entry in excluded:
        for stage in dict.fromkeys(x.stage for x in entry.exclusions):
            stages[stage] = stages.get(stage, 0) + 1
    by_stage = sorted(stages.items(), key=lambda kv: -kv[1])
    summary = sentences.nothing_qualifies(study.name, by_stage, listed=bool(change))
    return Recommendation(model=None, summary=summary, what_would_change=change)
