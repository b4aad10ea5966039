"""`llmselect data check`: is a data set ready for fine-tuning."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmselect.cli.common import JsonFlag, _count, run
from llmselect.present import present

app = typer.Typer(help="Check fine-tuning data before training.", no_args_is_help=True)


@app.command("check")
def data_check(
    train: Annotated[
        Path,
        typer.Argument(help="Training set: a data file, or a dataset folder (its train split)."),
    ],
    eval_set: Annotated[
        Path | None,
        typer.Option("--eval", help="Evaluation set (file or folder), checked for leakage."),
    ] = None,
    input_field: Annotated[str, typer.Option(help="Column holding the prompt.")] = "input",
    reference_field: Annotated[
        str, typer.Option(help="Column holding the answer to train on.")
    ] = "reference",
    near_threshold: Annotated[
        float,
        typer.Option(help="Jaccard of character 5-grams from which rows are near duplicates."),
    ] = 0.8,
    model: Annotated[
        str | None,
        typer.Option(
            help="Local model folder (its tokenizer counts tokens) or catalog id (its context; "
            "tokens estimated as characters / 4)."
        ),
    ] = None,
    max_tokens: Annotated[
        str | None,
        typer.Option(help="Training sequence length in tokens, e.g. 2048 (default: the context)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Is this data ready for fine-tuning? Duplicates, leakage, lengths, labels, a verdict.

    Exits 0 when the data is ready or usable with warnings, 5 when it is not ready, 1 or 2 on
    an error."""
    from llmselect.evaluation.datasets import FieldMap
    from llmselect.finetune.data_check import NOT_READY_EXIT_CODE, check_data

    tokens = _count("--max-tokens")(max_tokens)
    report = run(
        as_json,
        lambda: check_data(
            train,
            eval_set,
            fields=FieldMap(input=input_field, reference=reference_field),
            near_threshold=near_threshold,
            model=model,
            max_tokens=tokens,
        ),
    )
    present(report, as_json=as_json)
    if report.verdict == "not ready":
        raise typer.Exit(NOT_READY_EXIT_CODE)
