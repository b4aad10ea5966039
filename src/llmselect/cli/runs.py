"""`llmselect runs list|show`: what a result store holds, by whom, where, when."""

from __future__ import annotations

from typing import Annotated

import typer

from llmselect.cli.common import JsonFlag, run

app = typer.Typer(
    help="What a result store holds: who measured which model, on which data, where.",
    no_args_is_help=True,
)

StoreOption = Annotated[
    str,
    typer.Option(
        "--store",
        envvar="LLMSELECT_STORE",
        help="The result store: a SQLite file or a postgresql://user@host/db URL (the password "
        "from PGPASSWORD or ~/.pgpass). Also LLMSELECT_STORE.",
        show_envvar=False,
    ),
]


@app.command("list")
def runs_list(store: StoreOption, as_json: JsonFlag = False) -> None:
    """What the store holds: each model, dataset and settings measured, per person.

    Items stored, how many each person produced, where and when. A study whose items are
    stored already reuses them instead of running the model again."""
    from llmselect.evaluation.store_records import stored_runs
    from llmselect.present import present

    present(run(as_json, lambda: stored_runs(store)), as_json=as_json)


@app.command("show")
def runs_show(
    model: Annotated[str, typer.Argument(help="The model: its name in the study or backend.")],
    store: StoreOption,
    as_json: JsonFlag = False,
) -> None:
    """Every run of one model in the store, with its settings and the dataset's hash."""
    from llmselect.evaluation.store_records import stored_runs
    from llmselect.present import present

    present(run(as_json, lambda: stored_runs(store, model)), as_json=as_json, detail=True)
