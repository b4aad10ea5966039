"""Every command's way out: `present(result, as_json=...)` prints a typed result as JSON or
renders it for the terminal with the renderer registered for its type.

To show a new result, write a function `(result, **options) -> RenderableType | Screen` in the
stage's module here and add the result type's dotted name to `RENDERERS`. Renderers are named,
not imported, so that a command imports Rich and one stage's renderers only when it prints.

JSON: a result with a `to_json()` method gives its own public shape; a pydantic model is dumped
as it is. Neither depends on the terminal.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType

RENDERERS: dict[str, str] = {
    # catalog
    "llmselect.catalog.schema.ModelCard": "catalog:model_detail",
    "llmselect.catalog.catalog.CardList": "catalog:card_list",
    "llmselect.catalog.check.CatalogCheck": "catalog:catalog_check",
    "llmselect.catalog.user.Imported": "catalog:imported",
    "llmselect.catalog.user.Removed": "catalog:removed",
    # licensing
    "llmselect.licensing.verdicts.LicenseCheck": "licensing:license_detail",
    "llmselect.licensing.knowledge.License": "licensing:license_terms",
    "llmselect.licensing.knowledge.LicenseList": "licensing:license_table",
    # sizing
    "llmselect.sizing.detect.LocalMachine": "sizing:machine_detail",
    "llmselect.sizing.hardware.DeviceList": "sizing:device_table",
    "llmselect.sizing.estimate.FitChoice": "sizing:fit_detail",
    "llmselect.sizing.estimate.FitGrid": "sizing:fit_grid_table",
    "llmselect.sizing.finetune.FinetunePlan": "sizing:finetune_plan",
    "llmselect.sizing.calibration.Recorded": "sizing:recorded",
    "llmselect.sizing.calibration.RecordedRuns": "sizing:recorded_runs",
    "llmselect.sizing.calibration.CalibrationReport": "sizing:calibration_table",
    # evaluation
    "llmselect.jobs.evaluate.Evaluation": "evaluation:evaluation",
    "llmselect.evaluation.store_records.StoredRuns": "runs:runs",
    # fine-tuning
    "llmselect.finetune.data_check.DataReport": "finetune:data_report",
    "llmselect.finetune.gate.GateResult": "finetune:finetune_gate",
    "llmselect.finetune.preflight.Preflight": "finetune:finetune_preflight",
    "llmselect.finetune.result.FinetuneResult": "finetune:finetune_summary",
    # selection
    "llmselect.selection.scaffold.Scaffold": "selection:scaffold",
    "llmselect.jobs.select.SelectOutcome": "selection:outcome",
    # serving
    "llmselect.serving.results.BenchResult": "serving:bench_table",
}


@dataclass
class Screen:
    """What a renderer shows: the result on stdout, and notes beside it on stderr."""

    out: RenderableType | None
    notes: list[str] = field(default_factory=list)


def to_json(result: Any) -> Any:
    """The public JSON shape of a result."""
    if hasattr(result, "to_json"):
        return result.to_json()
    if hasattr(result, "model_dump"):
        return result.model_dump(mode="json")
    raise TypeError(f"{type(result).__name__} has no JSON form: give it a to_json() method")


def renderer(result: Any) -> Callable[..., RenderableType | Screen]:
    """The renderer registered for the result's type or the nearest base type that has one."""
    for cls in type(result).__mro__:
        name = RENDERERS.get(f"{cls.__module__}.{cls.__qualname__}")
        if name:
            module, function = name.split(":")
            found: Callable[..., RenderableType | Screen] = getattr(
                importlib.import_module(f"llmselect.present.{module}"), function
            )
            return found
    raise TypeError(f"no renderer for {type(result).__name__}: add it to present.RENDERERS")


def render(result: Any, **options: Any) -> RenderableType:
    """The result as a Rich renderable (its stdout part), e.g. to print above progress bars."""
    shown = renderer(result)(result, **options)
    if isinstance(shown, Screen):
        return shown.out if shown.out is not None else ""
    return shown


def present(result: Any, *, as_json: bool, **options: Any) -> None:
    """Print the result: JSON on stdout with --json, else its rendering (notes on stderr).
    `options` go to the renderer (e.g. `show_all`); JSON ignores them."""
    if as_json:
        emit_json(to_json(result))
        return
    from rich.markup import escape

    from llmselect.present.text import console, err_console

    shown = renderer(result)(result, **options)
    if not isinstance(shown, Screen):
        shown = Screen(shown)
    if shown.out is not None:
        console().print(shown.out)
    for note in shown.notes:
        err_console().print(escape(note), style="dim")


def emit_json(data: Any) -> None:
    """Print `data` as indented JSON on stdout, terminal controls made visible."""
    from llmselect.present.text import printable_json

    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write(printable_json(text) + "\n")
