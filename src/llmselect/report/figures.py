"""Numbers as the report shows them, the same in HTML and Markdown."""

from __future__ import annotations

GIB = 2**30
"""Memory is shown in GiB (2^30 bytes), and says so."""


def number(value: float | None, fmt: str = ".3g") -> str:
    """`fmt` for small numbers; whole numbers with separators from 1000 up (never 1.67e+03)."""
    if value is None:
        return "–"
    if fmt.endswith("g") and abs(value) >= 1000:
        return f"{value:,.0f}"
    return format(value, fmt)


def gib(value: int | None, fmt: str = ".1f") -> str:
    return format(value / GIB, fmt) if value is not None else "–"


def points(value: float | None) -> str:
    """A score in 0..1 as points out of 100."""
    return f"{value * 100:.1f}" if value is not None else "–"
