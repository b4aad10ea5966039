"""What every command shares: errors as messages and exit codes, JSON output, option parsers,
the target hardware, and the progress bars.

Heavy modules (Rich, the library) are imported inside the functions so that `llmselect --help`
stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from llmselect.errors import LLMSelectError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from llmselect.sizing.hardware import Device

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
FreshFlag = Annotated[
    bool,
    typer.Option(
        "--fresh",
        help="Delete the stored outputs and measure again (a SQLite store; a shared "
        "PostgreSQL one is refused). Default: resume from them.",
    ),
]
"""`eval` and `select`: measure again instead of resuming."""
T = TypeVar("T")


def fail(exc: LLMSelectError, as_json: bool) -> NoReturn:
    """Say what went wrong (also as JSON with --json) and exit with the error's code."""
    if as_json:
        from llmselect.present import emit_json

        emit_json(
            {
                "error": {
                    "message": exc.message,
                    "file": exc.file,
                    "line": exc.line,
                    "field": exc.field,
                    "hint": exc.hint,
                }
            }
        )
    from llmselect.present.text import err_console

    err_console().print(f"[bold red]error:[/] {_escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _stderr(text: str) -> None:
    from llmselect.present.text import err_console

    err_console().print(_escape(text), style="dim")


def run(as_json: bool, work: Callable[[], T]) -> T:
    """Call the library; a user-facing error becomes a message and an exit code, not a trace."""
    try:
        return work()
    except LLMSelectError as exc:
        fail(exc, as_json)


def _count(option: str) -> Callable[[str | None], int | None]:
    def parse(value: str | None) -> int | None:
        from llmselect.units import parse_count

        if value is None:
            return None
        try:
            return parse_count(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=option) from None

    return parse


MAX_CONTEXT = 100_000_000
"""Tokens no model reads at once (the catalog's longest context is 10M): beyond it, a typo."""


def _tokens(option: str, value: str) -> int:
    """A token count (`--context`, `--prompt`): at least one, at most MAX_CONTEXT."""
    tokens = _count(option)(value) or 0
    if not 1 <= tokens <= MAX_CONTEXT:
        raise typer.BadParameter(
            f"{value!r} is {tokens:,} tokens; give 1 to {MAX_CONTEXT:,}", param_hint=option
        )
    return tokens


def _prompt_tokens(prompt: str | None, context: int) -> int | None:
    """The prompt is part of the context (prompt plus generated tokens), so it fits in it."""
    if prompt is None:
        return None
    tokens = _tokens("--prompt", prompt)
    if tokens > context:
        raise typer.BadParameter(
            f"a prompt of {tokens:,} tokens is longer than the context of {context:,} "
            "(--context counts prompt plus generated tokens): raise --context or lower --prompt",
            param_hint="--prompt",
        )
    return tokens


def _target_hardware(gpu: str | None) -> tuple[Device, int]:
    from llmselect.sizing.detect import target_hardware

    return target_hardware(gpu)


class Bars:
    """One Rich progress bar per task, made on its first report; silent with --json.

    Called as `progress(name, done, total)`, it is the callback the jobs take. The display (and
    Rich's progress module) starts with the first report: a command that measures nothing, or
    fails before any work, prints nothing more than its result or its error. Everything goes
    through llmselect's console, so text from a model or a file shows its control characters
    as escapes here too."""

    def __init__(self, fields: tuple[str, ...], quiet: bool) -> None:
        self._fields = fields
        self._quiet = quiet
        self._bar: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def _progress(self) -> Progress:
        if self._bar is None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            from llmselect.present.text import console

            columns = (
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                *(TextColumn(f"{{task.fields[{field}]}}") for field in self._fields),
                TimeRemainingColumn(),
            )
            self._bar = Progress(*columns, console=console(), disable=self._quiet, transient=True)
            self._bar.start()
        return self._bar

    def __call__(self, name: str, done: int, total: int, **fields: Any) -> None:
        bar = self._progress()
        if name not in self._tasks:
            blank: dict[str, Any] = dict.fromkeys(self._fields, "")
            self._tasks[name] = bar.add_task(name, total=total, **blank)
        bar.update(self._tasks[name], completed=done, **fields)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()

    def print(self, renderable: Any) -> None:
        """Print above the bars (nothing with --json)."""
        if self._quiet:
            return
        from llmselect.present.text import console

        (self._bar.console if self._bar is not None else console()).print(renderable)


@contextmanager
def progress_bars(as_json: bool, *, fields: tuple[str, ...] = ()) -> Iterator[Bars]:
    """The progress bars of a long command: description, bar, done/total, each of `fields`
    (a text column per field, e.g. the loss), time left. They vanish when the work ends."""
    bars = Bars(fields, quiet=as_json)
    try:
        yield bars
    finally:
        bars.stop()
