"""The sentences of a selection: the recommendation, the runners-up, what would change the
choice, why nothing qualifies. The ranking decides; this module only words its decisions."""

from __future__ import annotations

from llmselect.selection.result import Entry, MeasuredLoad, Quality

NOTHING_MEASURED = (
    "no qualifying model was measured on your data: the ranking rests on published "
    "benchmarks and estimates"
)


def items_failed(model: str, failed: int, items: int) -> str:
    return (
        f"{model}: {failed} of {items} items got no usable output, so its scores rest on the "
        f"other {items - failed}; rerun `select` to retry them"
    )


def qualified(count: int, of: int) -> str:
    return f"{count} of {of} models meet every constraint"


def recommendation(top: Entry, concurrent_users: int) -> str:
    """ "Choose X (id): it scores ... On H100 at bf16 with vllm it needs ... License: ..."."""
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
        f"{_seconds(top.ttft_s)} and writes about {_rate(top.tokens_per_s)} tokens/s "
        f"per user with {concurrent_users} at once"
    )
    if top.load is not None:
        summary += f" (measured under load at {top.load.at.concurrency} concurrent requests"
        if top.load.most_users is not None:
            summary += f"; inside the speed targets up to {top.load.most_users}"
        summary += ")"
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
    return summary


def most_users(load: MeasuredLoad, *, targets_given: bool) -> str | None:
    """How many requests at once the benched server took inside the speed targets."""
    if not targets_given:
        return None
    tried = max(level.concurrency for level in load.levels)
    if load.most_users is None:
        return f"no level of the bench (up to {tried} concurrent requests) met the speed targets"
    if load.most_users == tried:
        return (
            f"it met the speed targets at every level up to {tried} concurrent requests, the "
            "most the bench tried"
        )
    return (
        f"it met the speed targets at up to {load.most_users} concurrent requests (the bench "
        f"tried up to {tried})"
    )


def runner_up(top: Entry, other: Entry) -> str:
    """ "Name, -1.2 points, 1.5× the speed, 0.8× the memory, score 0.71"."""
    parts = [other.name]
    if top.quality and other.quality and top.quality.source == other.quality.source:
        parts.append(f"{(other.quality.value - top.quality.value) * 100:+.1f} points")
    if top.fit and other.fit:
        ratio = other.tokens_per_s / top.tokens_per_s
        parts.append(f"{ratio:.2g}× the speed")
        mem = other.fit.memory.total_bytes / top.fit.memory.total_bytes
        parts.append(f"{mem:.2g}× the memory")
    if other.score is not None:
        parts.append(f"score {other.score:.2f}")
    return ", ".join(parts)


def would_beat(entry: Entry, relax: list[str], gain: float, *, recommended_has_score: bool) -> str:
    """An excluded model that would beat the recommendation by `gain` points if relaxed."""
    assert entry.quality is not None
    source = entry.quality.where
    if not recommended_has_score:
        return (
            f"{_capital(_joined(relax))}, {entry.name} would qualify: it scores {gain:.1f} "
            f"{source}, where the recommended model has no score"
        )
    return f"{_capital(_joined(relax))}, {entry.name} scores {gain:.1f} points higher {source}."


def would_qualify(best: Entry, relax: list[str], others: int, held_by: tuple[str, ...]) -> str:
    """The best model a relaxation lets in, and how many more it would."""
    line = f"{_capital(_joined(relax))}, {best.name} would qualify"
    if others:
        verb = "are" if others > 1 else "is"
        held = " and ".join(held_by)
        line += f" ({others} more model{'s' * (others > 1)} {verb} held out only by {held})"
    return line + "."


def nothing_qualifies(study: str, by_stage: list[tuple[str, int]], *, listed: bool) -> str:
    why = ", ".join(f"{n} by {stage}" for stage, n in by_stage)
    summary = f"No model meets every constraint of {study} ({why})."
    if listed:
        summary += " The smallest changes that would let models in are listed below."
    return summary


def _joined(relax: list[str]) -> str:
    """ "if a" + "if b" + "if c" -> "if a, b and c"."""
    parts = relax[:1] + [p.removeprefix("if ") for p in relax[1:]]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _points(quality: Quality) -> str:
    text = f"{quality.value * 100:.1f}"
    if quality.low is not None and quality.high is not None:
        text += f" (95% CI {quality.low * 100:.1f}–{quality.high * 100:.1f})"
    return text


def _seconds(value: float) -> str:
    return "well under 0.01 s" if value < 0.01 else f"about {value:.2g} s"


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
