"""Fine-tuning in the terminal: the data check, the license gate, the memory preflight, the run
and its before/after scores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from llmselect.present.layout import fields as _fields
from llmselect.present.sizing import finetune_detail

if TYPE_CHECKING:
    from llmselect.finetune.curve import BeforeAfter, LearningCurve
    from llmselect.finetune.data_check import DataReport
    from llmselect.finetune.gate import GateResult
    from llmselect.finetune.preflight import Preflight
    from llmselect.finetune.result import FinetuneResult


def data_report(report: DataReport, *, examples: int = 5) -> RenderableType:
    """`llmselect data check`: verdict, one line per check, advice, and a few repeated rows."""
    style = {"ready": "green", "usable with warnings": "yellow", "not ready": "red"}[report.verdict]
    verdict = Text(report.verdict, style=f"bold {style}")
    facts: list[tuple[str, str | Text]] = [("verdict", verdict)]
    facts.append(("rows", f"{report.rows} ({report.usable_rows} usable: input and reference)"))
    dup = report.duplicates
    facts.append(
        (
            "duplicates",
            f"{len(dup.identical)} identical, {len(dup.near)} near (similarity >= "
            f"{report.near_threshold:g}), {len(dup.conflicting)} same input with another reference",
        )
    )
    leak = report.leakage
    if leak is not None:
        facts.append(
            (
                "leakage",
                f"{len(leak.leaked)} of {leak.eval_rows} evaluation rows are in training "
                f"(inputs: {leak.identical_input} identical, {leak.near_input} near; "
                f"input+reference: {leak.identical_example} identical, {leak.near_example} near)",
            )
        )
    else:
        facts.append(("leakage", "not checked (no --eval)"))
    n = report.lengths
    tokens = Text(
        f"min {n.min} · p50 {n.p50} · p90 {n.p90} · p99 {n.p99} · max {n.max}, by {n.counted_with}"
    )
    if n.limit is not None:
        source = "--max-tokens" if n.max_tokens else (n.context_source or "context")
        tokens.append(f"\n{len(n.over_limit_lines)} over {n.limit} ({source})")
    facts.append(("tokens", tokens))
    if report.labels is not None:
        counts = ", ".join(f"{label} {count}" for label, count in report.labels.counts.items())
        facts.append(("labels", Text(f"{counts} (majority {report.labels.majority_share:.0%})")))
    title = Text(f"data check: {report.train}")
    advice_style = {"blocker": ("✗ ", "red"), "warning": ("! ", "yellow"), "note": ("· ", "dim")}
    lines: list[RenderableType] = [_fields(facts)]
    for advice in report.advice:
        mark, colour = advice_style[advice.severity]
        lines.append(Text(mark + advice.message, style=colour))
    parts: list[RenderableType] = [Panel(Group(*lines), title=title, border_style=style)]

    repeats = [("identical", m) for m in dup.identical[:examples]]
    repeats += [("near", m) for m in dup.near[:examples]]
    repeats += [("other reference", m) for m in dup.conflicting[:examples]]
    if leak is not None:
        repeats += [("leak", m) for m in leak.leaked[:examples]]
    if repeats:
        table = Table(title="Repeated rows (first few of each kind)", header_style="bold")
        for name, justify in (
            ("kind", "left"),
            ("line", "right"),
            ("repeats line", "right"),
            ("on", "left"),
            ("similarity", "right"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for kind, m in repeats:
            where = "eval " if kind == "leak" else ""
            of = "train " if kind == "leak" else ""
            table.add_row(kind, f"{where}{m.line}", f"{of}{m.of_line}", m.on, f"{m.similarity:.2f}")
        parts.append(table)
    return Group(*parts)


_GATE_STYLE = {"pass": "green", "warn": "yellow", "stop": "bold red"}


def finetune_gate(gate: GateResult) -> RenderableType:
    """The license gate: stop reasons, inherited duties and notes, before any training."""
    head = Text.assemble(
        ("license gate: ", "bold"),
        (gate.decision, _GATE_STYLE[gate.decision]),
        f"   verdict for the base model: {gate.verdict}",
    )
    if gate.forced:
        head.append("\noverridden with --force (the model card records it)", style="bold red")
    lines: list[RenderableType] = [head]
    for r in gate.stops:
        lines.append(Text(f"✗ {r.message} ({r.license or '?'}, from {r.origin})", style="red"))
    # One line per duty: a license that states it in several clauses says it once here.
    duties = {(o.duty, o.license, o.origin, o.when) for o in gate.obligations}
    for o in gate.obligations:
        if (o.duty, o.license, o.origin, o.when) not in duties:
            continue
        duties.discard((o.duty, o.license, o.origin, o.when))
        when = ", when distributed" if o.when != "always" else ""
        text = f"! {o.duty} ({o.license or '?'}, from {o.origin}{when})"
        lines.append(Text(text, style="yellow"))
    lines += [Text(f"· {note}", style="dim") for note in gate.notes]
    style = "red" if gate.decision == "stop" else _GATE_STYLE[gate.decision]
    return Panel(Group(*lines), title=Text(gate.model), title_align="left", border_style=style)


def finetune_preflight(check: Preflight, *, model: str) -> RenderableType:
    """Memory needed against memory available, and the time and cost the estimate gives."""
    run = Text(
        f"{check.examples} examples, {check.steps} steps, batch {check.batch}, "
        f"longest sequence {check.seq} tokens; trains on {check.trains_on}"
    )
    if check.estimated_seconds is not None:
        run.append(f"\nestimated time on {check.hardware}: {check.estimated_seconds:,.1f} s")
        if check.estimated_cost is not None:
            run.append(f" (about {check.estimated_cost:,.2f} at the study's price per GPU-hour)")
    for note in check.notes:
        run.append(f"\n· {note}", style="dim")
    detail = finetune_detail(model, check.hardware, 1, check.memory)
    return Group(detail, Panel(run, title="memory pre-flight", title_align="left"))


def _ci_cell(interval: Any) -> str:
    return f"{interval.mean:.3f} ({interval.low:.3f}–{interval.high:.3f})"


def finetune_before_after(evaluation: BeforeAfter) -> RenderableType:
    metrics = list(evaluation.after.scores)
    table = Table(
        title=f"before and after, {evaluation.items} evaluation items", header_style="bold"
    )
    table.add_column("model")
    for metric in metrics:
        table.add_column(Text(f"{metric} (95% CI)"), justify="right")
    for score in [evaluation.before, evaluation.after, *evaluation.others]:
        cells = [_ci_cell(score.scores[m]) if m in score.scores else "" for m in metrics]
        table.add_row(Text(score.model), *cells)
    lines: list[RenderableType] = [table]
    lines += [Text("• " + c.sentence) for c in evaluation.comparisons]
    if evaluation.warning:
        lines.append(Text("! " + evaluation.warning, style="yellow"))
    return Group(*lines)


def finetune_curve(curve: LearningCurve) -> RenderableType:
    table = Table(title="learning curve", header_style="bold")
    table.add_column("examples", justify="right")
    table.add_column(Text(f"{curve.metric} (95% CI)"), justify="right")
    table.add_row("0 (base)", _ci_cell(curve.base))
    for point in curve.points:
        table.add_row(f"{point.examples:,}", _ci_cell(point.score))
    style = {"likely": "green", "unlikely": "yellow", "unclear": "cyan"}[curve.outlook]
    return Group(table, Text(curve.verdict, style=style))


def finetune_summary(result: FinetuneResult) -> RenderableType:
    """What training did, what it bought, and where the files are."""
    t = result.training
    losses = t.losses
    trained = Text(
        f"{t.method}: {t.steps} steps on {t.examples} examples, "
        f"{t.trainable_params:,} trained parameters, {t.seconds:,.1f} s on {t.device}"
    )
    if losses:
        trained.append(f"; training loss {losses[0]:.4f} → {losses[-1]:.4f}")
    if t.resumed_from is not None:
        trained.append(f" (resumed from step {t.resumed_from})")
    estimate = result.preflight.estimated_seconds
    if estimate and t.resumed_from is None and t.seconds > 3 * estimate:
        # The step model counts work, traffic and (on a GPU) launches, not the loop's own costs.
        trained.append(
            f"\nit took {t.seconds / estimate:,.0f}× the pre-flight estimate of "
            f"{estimate:.2g} s, which counts the steps' arithmetic, memory traffic and, on a "
            "GPU, kernel launches: on a model this small, torch's and the training loop's own "
            "costs per step dominate"
        )
    parts: list[RenderableType] = [Panel(trained, title=Text(result.output), title_align="left")]
    if result.evaluation is not None:
        parts.append(finetune_before_after(result.evaluation))
    if result.curve is not None:
        parts.append(finetune_curve(result.curve))
    parts += [Text("! " + w, style="yellow") for w in result.warnings]
    parts += [Text(f"wrote {path}") for path in result.files.values()]
    return Group(*parts)
