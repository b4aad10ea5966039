"""What a result store holds, in the terminal: `llmselect runs list|show`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from llmselect.present.layout import fields
from llmselect.present.text import printable

if TYPE_CHECKING:
    from llmselect.evaluation.store import RunRecord
    from llmselect.evaluation.store_records import StoredRuns


def _text(value: str | None) -> Text:
    """Text from the store (anyone with write access wrote it): never markup, no controls."""
    return Text(printable(value or ""))


def _when(stamp: str) -> str:
    return stamp.replace("T", " ").removesuffix("Z")[:16]


def _where(record: RunRecord) -> str:
    """The device on the host that ran it; a model behind an HTTP server ran on that server."""
    if record.device is None and record.backend.startswith("openai:"):
        return "its HTTP server"
    host = record.who.rpartition("@")[2]
    return f"{record.device or '?'} on {host}" if host else record.device or ""


def runs(listing: StoredRuns, *, detail: bool = False) -> RenderableType:
    """One row per person's runs of a model on a dataset (`list`), or every field (`show`)."""
    if not listing.runs:
        return Text(f"no runs stored in {printable(listing.store)} yet")
    if detail:
        parts: list[RenderableType] = []
        for r in listing.runs:
            parts += [_detail(r), Text("")]  # a blank line between runs
        return Group(*parts[:-1])
    table = Table(title=_text(f"runs in {listing.store}"), header_style="bold")
    engines = any(r.engine for r in listing.runs)  # none for models behind HTTP servers
    for column, justify in (
        ("model", "left"),
        ("dataset", "left"),
        ("stored", "right"),
        ("produced", "right"),
        ("by", "left"),
        ("where", "left"),
        *([("engine", "left")] if engines else []),
        ("last run (UTC)", "left"),
    ):
        table.add_column(column, justify=justify, no_wrap=column == "last run (UTC)")  # type: ignore[arg-type]
    for r in listing.runs:
        table.add_row(
            _text(r.model),
            _text(f"{r.dataset} {r.dataset_sha256[:12]}"),
            f"{r.items}/{r.total}",
            str(r.produced),
            _text(r.who.rpartition("@")[0] or r.who),
            _text(_where(r)),
            *([_text(r.engine or "")] if engines else []),
            _when(r.last_run),
        )
    return table


def _detail(record: RunRecord) -> RenderableType:
    rows: list[tuple[str, str | Text]] = [
        ("model", _text(record.model)),
        ("backend", _text(record.backend)),
        ("dataset", _text(f"{record.dataset} (sha256 {record.dataset_sha256})")),
        ("settings", _text(json.dumps(record.settings, sort_keys=True, ensure_ascii=False))),
        ("stored", f"{record.items} of {record.total} items"),
        ("produced", f"{record.produced} by this person (the rest came from the store)"),
        ("by", _text(record.who)),
        ("device", _text(record.device or "")),
        ("dtype", _text(record.dtype or "")),
        ("engine", _text(record.engine or "")),
        ("first run", _when(record.first_run) + " UTC"),
        ("last run", _when(record.last_run) + " UTC"),
    ]
    return fields(rows)
