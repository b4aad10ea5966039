"""`llmselect eval`: each candidate measured on the user's own examples."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmselect.cli.common import JsonFlag, _escape, _stderr, emit_json, progress_bars, run

if TYPE_CHECKING:
    from llmselect.evaluation.results import EvalResults


def evaluate(
    study_file: Annotated[Path, typer.Argument(help="Evaluation study (YAML).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for results.json and samples.jsonl.")],
    store: Annotated[
        Path | None, typer.Option("--store", help="Result store (default: OUT/store.sqlite).")
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Ignore stored outputs (default: resume from them).")
    ] = False,
    no_record: Annotated[
        bool,
        typer.Option(
            "--no-record", help="Do not record local models' measured speed for `fit` calibration."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run each candidate on your own examples; scores with 95% CIs and paired comparisons.

    Outputs are stored as they come: rerunning after a crash or Ctrl-C resumes where it stopped."""
    from llmselect.jobs.evaluate import evaluate as evaluate_job

    with progress_bars(as_json) as progress:
        done = run(
            as_json,
            lambda: evaluate_job(
                study_file,
                out,
                store=store,
                fresh=fresh,
                record_speed=not no_record,
                progress=progress,
            ),
        )
    if as_json:
        emit_json(done.to_json())
        _exit_if_items_failed(done.results)
        return
    from llmselect.console import console, eval_summary

    console().print(eval_summary(done.results))
    speeds = done.calibration
    for entry in speeds.recorded if speeds else []:
        _stderr(
            f"recorded for `fit` calibration: {entry.model} on {entry.device}, "
            f"{entry.decode_tokens_per_s:.3g} tokens/s per sequence at batch {entry.batch}"
        )
    for skip in speeds.skipped if speeds else []:
        if skip.card:  # said only where the user named a catalog model
            _stderr(f"not recorded for calibration ({skip.candidate}): {skip.reason}")
    _exit_if_items_failed(done.results)


def _exit_if_items_failed(results: EvalResults) -> None:
    """Items that got no output are neither stored nor scored: say which and why, and exit 1."""
    from llmselect.console import err_console

    failed = {name: model for name, model in results.models.items() if model.failed}
    for name, model in failed.items():
        err_console().print(
            f"[bold red]error:[/] {_escape(name)}: {model.failed} of "
            f"{results.dataset.items} items got no usable output; they are not stored "
            "or scored, and rerunning retries them",
            soft_wrap=True,
        )
        for entry in model.errors[:3]:
            err_console().print(_escape(f"  {entry.item_id}: {entry.error}"), soft_wrap=True)
    if failed:
        raise typer.Exit(1)
