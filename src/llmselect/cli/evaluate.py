"""`llmselect eval`: each candidate measured on the user's own examples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmselect.cli.common import FreshFlag, JsonFlag, progress_bars, run
from llmselect.present import present

RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Run the models on a Ray cluster: `local` starts one on this machine, `auto` joins "
        "the one this machine is in, or its address (ray://HEAD:10001). Overrides the study's "
        "executor:.",
    ),
]


def evaluate(
    study_file: Annotated[Path, typer.Argument(help="Evaluation study (YAML).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for results.json and samples.jsonl.")],
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Result store: a SQLite file or a postgresql:// URL shared by a team (default: "
            "the study's store:, else OUT/store.sqlite).",
        ),
    ] = None,
    fresh: FreshFlag = False,
    no_record: Annotated[
        bool,
        typer.Option(
            "--no-record", help="Do not record local models' measured speed for `fit` calibration."
        ),
    ] = False,
    ray: RayAddress = None,
    as_json: JsonFlag = False,
) -> None:
    """Run each candidate on your own examples; scores with 95% CIs and paired comparisons.

    Outputs are stored as they come: rerunning after a crash or Ctrl-C resumes where it stopped."""
    from llmselect.jobs.evaluate import evaluate as evaluate_job
    from llmselect.present.evaluation import failed_items
    from llmselect.present.text import err_console

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
                ray=ray,
            ),
        )
    present(done, as_json=as_json)
    failures = failed_items(done.results)
    for line in failures:
        err_console().print(line, soft_wrap=True)
    if failures:
        raise typer.Exit(1)
