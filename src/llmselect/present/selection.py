"""The selection in the terminal: the ranked shortlist, the recommendation, the excluded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from llmselect.present import Screen
from llmselect.units import format_count, gib

if TYPE_CHECKING:
    from llmselect.jobs.select import SelectOutcome
    from llmselect.selection.result import Entry, Selection
    from llmselect.selection.scaffold import Scaffold

_VERDICT_STYLE = {"allowed": "green", "conditional": "yellow", "blocked": "red", "unknown": "dim"}


def scaffold(done: Scaffold) -> RenderableType:
    lines = [Text(f"wrote {path}") for path in done.files]
    study = done.files[0]
    lines.append(Text(f"next: edit {study}, then `llmselect select {study}`"))
    return Group(*lines)


def outcome(done: SelectOutcome, *, show_all: bool = False) -> Screen:
    """The selection, then the report files written; on stderr, as `eval` says it, where the
    models' units ran when they ran on a Ray cluster."""
    written = [Text(f"wrote {path}") for path in done.files.values()]
    notes = done.cluster.lines() if done.cluster else []
    return Screen(Group(selection_summary(done.selection, show_all=show_all), *written), notes)


def selection_summary(
    selection: Selection,
    *,
    show_all: bool = False,
    shortlist_rows: int = 25,
    excluded_rows: int = 10,
) -> RenderableType:
    """The recommendation, the ranked shortlist and why the other models are out.

    Over a large pool the terminal shows the first `shortlist_rows` ranked models and, when
    more than `excluded_rows` are out, the excluded ones counted by what keeps them out (a table
    of hundreds of rows is slow to draw and hard to read); `show_all` lists every model. The
    report and `--json` always hold every model."""
    rec = selection.recommendation
    lines: list[RenderableType] = [Text(rec.summary, style="bold" if rec.model else "red")]
    lines += [Text("  runner-up: " + r) for r in rec.runners_up]
    lines += [Text("  " + c, style="cyan") for c in rec.what_would_change]
    title = f"{selection.study} on {selection.hardware}"
    panel = Panel(Group(*lines), title=Text(title), border_style="green" if rec.model else "red")

    ranked = [e for e in selection.entries if e.rank is not None]
    shown = ranked if show_all else ranked[:shortlist_rows]
    table = Table(
        title="Shortlist",
        header_style="bold",
        caption="* published benchmark, not measured on your data   ★ Pareto front"
        + ("   ‡ measured under load (bench)" if any(e.load for e in shown) else ""),
    )
    for name, justify in (
        ("#", "right"),
        ("model", "left"),
        ("params", "right"),
        ("quality", "right"),
        ("score", "right"),
        ("prec.", "left"),
        ("memory", "right"),
        ("TTFT s", "right"),
        ("tok/s", "right"),
        ("license", "left"),
    ):
        width = 18 if name == "model" else None
        table.add_column(name, justify=justify, min_width=width)  # type: ignore[arg-type]
    for e in shown:
        q = e.quality
        quality = f"{q.value * 100:.1f}{'*' if q.source == 'published' else ''}" if q else "–"
        verdict = e.verdict or "?"
        table.add_row(
            str(e.rank) + (" ★" if e.pareto else ""),
            Text(e.name + (" (demo)" if e.demo else "")),
            format_count(e.params),
            quality,
            f"{e.score:.2f}" if e.score is not None else "",
            e.fit.quant if e.fit else "",
            gib(e.fit.memory.total_bytes) if e.fit else "",
            f"{e.ttft_s:.2g}{'‡' if e.load else ''}" if e.fit else "",
            f"{e.tokens_per_s:.3g}{'‡' if e.load else ''}" if e.fit else "",
            Text(verdict, style=_VERDICT_STYLE.get(verdict, "")),
        )
    parts: list[RenderableType] = [panel, table]
    if len(shown) < len(ranked):
        parts.append(
            Text(
                f"… and {len(ranked) - len(shown)} more qualify: `--all` lists them, as does "
                "the report"
            )
        )
    excluded = [e for e in selection.entries if e.rank is None]
    if show_all or len(excluded) <= excluded_rows:
        out = Table(title="Excluded", header_style="bold")
        out.add_column("model", overflow="fold")
        out.add_column("stage")
        out.add_column("reason")
        out.add_column("would qualify")
        for e in excluded:
            first = e.exclusions[0]
            more = f" (+{len(e.exclusions) - 1} more)" if len(e.exclusions) > 1 else ""
            out.add_row(
                Text(e.id), first.stage, Text(first.reason + more), Text(first.relax or "–")
            )
        if excluded:
            parts.append(out)
    else:
        parts += [_excluded_by_cause(excluded, len(selection.entries))]
        parts.append(Text("`--all` lists each excluded model with its reason, as does the report"))
    parts += [Text(f"{stage}: {what}", style="dim") for stage, what in selection.stages.items()]
    parts += [Text("! " + w, style="yellow") for w in selection.warnings]
    return Group(*parts)


_STAGE_ORDER = ("catalog", "license", "sizing", "targets", "evaluation")


def _excluded_by_cause(excluded: list[Entry], pool: int) -> Table:
    """One row per stage and key of the first exclusion (what keeps a model out first), with
    how many models it holds out and one of them as an example."""
    causes: dict[tuple[str, str], list[Entry]] = {}
    for e in excluded:
        first = e.exclusions[0]
        causes.setdefault((first.stage, first.key), []).append(e)
    table = Table(
        title=f"Excluded: {len(excluded)} of {pool}, by what keeps each out first",
        header_style="bold",
    )
    table.add_column("stage")
    table.add_column("what to change", overflow="fold")
    table.add_column("models", justify="right")
    table.add_column("for example", overflow="fold")
    order = sorted(causes.items(), key=lambda c: (_STAGE_ORDER.index(c[0][0]), -len(c[1])))
    for (stage, key), entries in order:
        example = entries[0]
        reason = example.exclusions[0].reason
        table.add_row(stage, Text(key), str(len(entries)), Text(f"{example.id}: {reason}"))
    return table
