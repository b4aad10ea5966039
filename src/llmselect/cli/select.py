"""The selection: `llmselect init` (start a study), `llmselect select` (the main job: a ranked
shortlist and a report) and `llmselect demo` (the whole pipeline on this machine, offline)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from llmselect.cli.common import FreshFlag, JsonFlag, _stderr, progress_bars, run
from llmselect.cli.evaluate import RayAddress
from llmselect.present import present


def init(
    folder: Annotated[Path, typer.Argument(help="Folder for the new study (created).")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Start a study: study.yaml with comments, a use profile and an example dataset."""
    from llmselect.selection.scaffold import scaffold

    present(run(as_json, lambda: scaffold(folder, force=force)), as_json=as_json)


def select(
    study_file: Annotated[Path, typer.Argument(help="Selection study (YAML), e.g. from `init`.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder for the report and results (default: STUDY_DIR/selection)."
        ),
    ] = None,
    report: Annotated[
        bool,
        typer.Option("--report/--no-report", help="Write report.html, report.md, results.json."),
    ] = True,
    measure: Annotated[
        bool,
        typer.Option(
            "--measure/--no-measure", help="Run the candidates in candidates.run on the data."
        ),
    ] = True,
    fresh: FreshFlag = False,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Result store: a SQLite file or a postgresql:// URL shared by a team (default: "
            "the study's store:, else OUT/evaluation/store.sqlite).",
        ),
    ] = None,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help="List every ranked and excluded model in the terminal (default: the first 25 "
            "ranked, and the excluded counted by cause when more than 10).",
        ),
    ] = False,
    ray: RayAddress = None,
    as_json: JsonFlag = False,
) -> None:
    """The main job: from a use case to a ranked shortlist and a recommendation, with a report.

    catalog → license verdicts → fit and latency on the target hardware → measured evaluation
    → ranking. Every excluded model is listed with its reason.
    Exit code 5 when nothing qualifies."""
    from llmselect.jobs.select import select_study

    with progress_bars(as_json) as progress:
        done = run(
            as_json,
            lambda: select_study(
                study_file,
                out_dir=out,
                report=report,
                measure=measure,
                fresh=fresh,
                store=store,
                progress=progress,
                ray=ray,
            ),
        )
    present(done, as_json=as_json, show_all=show_all)
    if done.selection.recommendation.model is None:
        raise typer.Exit(5)


def demo(
    folder: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Where the demo builds its models and report (default: user data)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The whole pipeline on this machine, offline: demo models trained here, the real catalog.

    Trains four small quiz models (seconds), fine-tunes the base one, measures them all on the
    quiz, judges them and the catalog's small instruct models on license, fit and speed here,
    and writes the report."""
    from llmselect.demo import build_demo
    from llmselect.demo.finetune import finetune_demo
    from llmselect.demo.study import write_demo_study
    from llmselect.paths import data_dir

    dest = (folder or data_dir() / "demo").resolve()

    def say(text: str) -> None:
        if not as_json:
            _stderr(text)

    build = run(as_json, lambda: build_demo(dest, progress=say))
    if build.seconds:
        say(f"built {len(build.models)} demo models in {build.seconds:.0f} s under {dest}")
    study_file = write_demo_study(dest, build)
    began = time.perf_counter()
    tuned, trained = run(
        as_json, lambda: finetune_demo(study_file, rebuilt=build.seconds > 0, progress=say)
    )
    if trained:
        say(f"fine-tuned and measured in {time.perf_counter() - began:.0f} s: {tuned}")
    select(study_file, out=None, report=True, measure=True, fresh=False, as_json=as_json)
