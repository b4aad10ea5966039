"""Parse and show counts the way people write them: 7B, 1.5b, 350M, 128k."""

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
