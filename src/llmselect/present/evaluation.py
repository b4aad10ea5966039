"""An evaluation in the terminal: scores with their intervals, latency, comparisons; what was
recorded for `fit`'s calibration; the items that got no output."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from llmselect.present import Screen

if TYPE_CHECKING:
    from llmselect.evaluation.results import EvalResults
    from llmselect.jobs.evaluate import Evaluation


def evaluation(done: Evaluation) -> Screen:
    """The scores, and on stderr what was recorded for calibration and what was not (only where
    the user named a catalog model: the others are not expected to be recorded)."""
    notes = []
    speeds = done.calibration
    for entry in speeds.recorded if speeds else []:
        notes.append(
            f"recorded for `fit` calibration: {entry.model} on {entry.device}, "
            f"{entry.decode_tokens_per_s:.3g} tokens/s per sequence at batch {entry.batch}"
        )
    for skip in speeds.skipped if speeds else []:
        if skip.card:
            notes.append(f"not recorded for calibration ({skip.candidate}): {skip.reason}")
    if done.cluster:  # where each unit ran on a Ray cluster
        notes += done.cluster.lines()
    return Screen(eval_summary(done.results), notes)


def failed_items(results: EvalResults) -> list[Text]:
    """Items that got no output are neither stored nor scored: which, and why (the first three
    errors of each model)."""
    lines = []
    for name, model in results.models.items():
        if not model.failed:
            continue
        lines.append(
            Text.assemble(
                ("error:", "bold red"),
                f" {name}: {model.failed} of {results.dataset.items} items got no usable "
                "output; they are not stored or scored, and rerunning retries them",
            )
        )
        lines += [Text(f"  {entry.item_id}: {entry.error}") for entry in model.errors[:3]]
    return lines


def eval_summary(results: EvalResults) -> RenderableType:
    """Scores with their 95% intervals, then each paired comparison in a sentence."""
    metrics = sorted({m for model in results.models.values() for m in model.metrics})
    table = Table(title=f"{results.study}: {results.dataset.items} items", header_style="bold")
    table.add_column("model")
    for metric in metrics:
        table.add_column(f"{metric} (95% CI)", justify="right")
    # How long an item waited for its answer (a batch's items wait for all of it), and how many
    # items the run got through per second.
    table.add_column("p50 s", justify="right")
    table.add_column("items/s", justify="right")
    for name, model in results.models.items():
        cells = []
        for metric in metrics:
            ci = model.metrics.get(metric)
            cells.append(f"{ci.mean:.3f} ({ci.low:.3f}–{ci.high:.3f})" if ci else "")
        lat = model.latency
        if lat:
            cells += [f"{lat.p50_s:.3f}", f"{lat.items_per_s:.3g}" if lat.items_per_s else ""]
        table.add_row(Text(name), *cells)
    sentences = [Text("• " + c.sentence) for c in results.comparisons]
    warnings = [Text("! " + c.warning, style="yellow") for c in results.comparisons if c.warning]
    return Group(table, *sentences, *warnings)
