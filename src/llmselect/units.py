"""Numbers as llmselect reads and shows them, in one place: counts the way people write them
(7B, 1.5b, 350M, 128k), memory in GiB, scores in points, differences with a real minus sign."""

from __future__ import annotations

import re

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_COUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)


def parse_count(text: str) -> int:
    """`7B` -> 7_000_000_000, `128k` -> 128_000, `4096` -> 4096."""
    match = _COUNT.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a count; write e.g. 7B, 500M, 128k or 4096")
    number, suffix = match.groups()
    return round(float(number) * _SUFFIX[suffix.lower()])


def format_count(value: int | None) -> str:
    """6738415616 -> `6.74B`; None -> `?`."""
    if value is None:
        return "?"
    for suffix, size in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        # 999,885,952 rounds to 1000M at three digits: say 1B instead.
        if float(f"{value / size:.3g}") >= 1:
            return f"{float(f'{value / size:.3g}'):g}{suffix}"
    return str(value)


def format_tokens(value: int | None) -> str:
    """Context lengths: 4096 -> `4k`, 131072 -> `128k`, 2048 -> `2k`."""
    if value is None:
        return "?"
    if value >= 1024 and value % 1024 == 0:
        return f"{value // 1024}k"
    return str(value)


GIB = 2**30
"""Memory is shown in GiB (2^30 bytes), and the tables say so."""


def gib(value: float | None, fmt: str = ",.1f") -> str:
    """Bytes in GiB; `–` for an unknown size."""
    return format(value / GIB, fmt) if value is not None else "–"


def number(value: float | None, fmt: str = ".3g") -> str:
    """`fmt` for small numbers; whole numbers with separators from 1000 up (never 1.67e+03)."""
    if value is None:
        return "–"
    if fmt.endswith("g") and abs(value) >= 1000:
        return f"{value:,.0f}"
    return format(value, fmt)


def points(value: float | None) -> str:
    """A score in 0..1 as points out of 100, one decimal."""
    return f"{value * 100:.1f}" if value is not None else "–"


def signed(value: float, *, plus: bool = False) -> str:
    """One decimal with a real minus sign (−1.5), never "-0.0"; `plus`: +1.5 for a gain."""
    text = f"{round(value, 1) + 0.0:{'+' if plus else ''}.1f}"
    if text in ("-0.0", "+0.0") and not plus:
        return "0.0"
    return text.replace("-", "−")
