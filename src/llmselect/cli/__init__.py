"""The `llmselect` command: the Typer app, its global options, and where each command lives.

One module per command group, each command thin (parse the options, call one library or job
function, render the result); what they share is in `common`. To add a command, write it in its
group's module: a group's commands register themselves on the group's Typer app (`catalog.app`);
a top-level command, or a new group, is registered below. Heavy modules are imported inside the
commands so that `llmselect --help` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from llmselect import __version__
from llmselect.cli import bench, catalog, data, evaluate, finetune, license, runs, select, sizing
from llmselect.cli.common import fail
from llmselect.errors import LLMSelectError


class _Guarded(TyperGroup):
    """The floor under every command: an exception no error message was written for becomes one
    line and a hint, never a traceback (`llmselect --debug ...` shows it)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["llmselect.args"] = list(args)  # to answer in JSON where --json was asked
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (TyperException, typer.Exit, typer.Abort):  # usage errors and exits: as they are
            raise
        except Exception as exc:
            if ctx.meta.get("llmselect.debug"):
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            error = LLMSelectError(
                f"unexpected {type(exc).__name__}" + (f": {first}" if first else ""),
                hint="rerun with `llmselect --debug ...` to see where it happened, and report it",
            )
            fail(error, "--json" in ctx.meta.get("llmselect.args", []))


app = typer.Typer(
    cls=_Guarded,
    help="Choose an open-source LLM for your hardware, data and legal constraints.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"llmselect {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")
    ] = False,
) -> None:
    """llmselect answers: which open LLM, on which hardware, under which license, and how well."""
    ctx.meta["llmselect.debug"] = debug


# Commands first, then the groups, each in the order `llmselect --help` lists them.
app.command("hardware")(sizing.hardware)
app.command("fit")(sizing.fit)
app.command("eval")(evaluate.evaluate)
app.command("init")(select.init)
app.command("demo")(select.demo)
app.command("select")(select.select)
app.command("finetune")(finetune.finetune)
app.command("bench")(bench.bench)
app.add_typer(catalog.app, name="catalog")
app.add_typer(license.app, name="license")
app.add_typer(sizing.calibrate_app, name="calibrate")
app.add_typer(data.app, name="data")
app.add_typer(runs.app, name="runs")
