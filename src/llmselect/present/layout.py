"""Pieces every renderer uses: a label/value grid and the commercial-use verdict of a license."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from llmselect.licensing import commercial_use

COMMERCIAL_STYLE = {
    "allowed": "green",
    "conditional": "yellow",
    "forbidden": "red",
    "unknown": "dim",
}


def commercial(license_id: str) -> Text:
    verdict = commercial_use(license_id)
    return Text(verdict, style=COMMERCIAL_STYLE[verdict])


def fields(rows: list[tuple[str, str | Text]], pairs_per_row: int = 1) -> Table:
    """A label/value grid; several pairs per row keep long, short-valued lists compact."""
    grid = Table.grid(padding=(0, 2))
    for _ in range(pairs_per_row):
        grid.add_column(style="bold")
        grid.add_column()
    cells = [(label, value if isinstance(value, Text) else Text(value)) for label, value in rows]
    for start in range(0, len(cells), pairs_per_row):
        chunk = cells[start : start + pairs_per_row]
        chunk += [("", Text(""))] * (pairs_per_row - len(chunk))
        grid.add_row(*[cell for pair in chunk for cell in pair])
    return grid
