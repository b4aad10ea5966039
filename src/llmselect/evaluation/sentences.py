"""The sentences an evaluation writes: a paired comparison said in plain words, and the warning
that a dataset is too small to separate two models. The statistics compute the numbers; this
module only words them, so that changing a phrase never touches a test of the arithmetic."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from llmselect.units import signed

if TYPE_CHECKING:
    from llmselect.evaluation.statistics import Comparison


def comparison(c: Comparison, *, confidence: float, scale: float, unit: str) -> str:
    """ "b beats a by +4.2 points on accuracy, 95% CI ..." or "no significant difference ..."."""
    level = f"{confidence * 100:g}%"
    better = "" if c.higher_is_better else " (lower is better)"
    if c.significant:
        # Say it from the winner's side, so the difference and its interval are positive.
        b_wins = (c.diff > 0) == c.higher_is_better
        winner, loser = (c.b, c.a) if b_wins else (c.a, c.b)
        sign = 1.0 if c.diff > 0 else -1.0
        lo, hi = sorted((sign * c.low * scale, sign * c.high * scale))
        ci = f"{signed(lo)}–{signed(hi)}" if unit == "points" else _range(lo, hi)
        return (
            f"{winner} beats {loser} by {_amount(abs(c.diff) * scale, unit)} on "
            f"{c.metric}{better}, {level} CI {ci} ({_p(c.p_value)}, {c.test})"
        )
    if unit == "points":
        shown = signed(c.diff * scale)
        ci = f"{signed(c.low * scale)}–{signed(c.high * scale)}"
    else:
        shown, ci = _significant(c.diff * scale), _range(c.low * scale, c.high * scale)
    with_sign = (
        shown if shown.startswith("−") or float(shown.replace("−", "-")) == 0 else "+" + shown
    )
    amount = f"{with_sign} {unit}".rstrip()
    return (
        f"no significant difference between {c.a} and {c.b} on {c.metric}{better} "
        f"({amount}, {level} CI {ci}, {_p(c.p_value)})"
    )


def dataset_too_small(n: int, diff: float, mdd: float, *, scale: float, unit: str) -> str | None:
    """Said beside "no significant difference" when the difference is below what `n` items can
    detect (`mdd`): then the dataset, not the models, is the likely reason."""
    if math.isinf(mdd):
        return (
            f"with {n} item this dataset cannot measure how much scores vary; "
            "add items to separate these models"
        )
    if abs(diff) >= mdd:
        return None
    items = "item" if n == 1 else "items"
    text = (
        f"with {n} {items} this dataset can only detect differences of "
        f"{_amount(mdd * scale, unit)} or more; add items to separate these models"
    )
    if unit != "points":
        if diff:
            needed = math.ceil(n * (mdd / abs(diff)) ** 2)
            text += f" (about {needed} items for a difference of {_amount(abs(diff), unit)})"
        return text
    # A difference that rounds to zero points would need absurd numbers of items: say nothing.
    if abs(diff) * scale >= 0.05:
        needed = math.ceil(n * (mdd / abs(diff)) ** 2)
        text += f" (about {needed} items for a {signed(abs(diff) * scale)}-point difference)"
    return text


def _significant(value: float) -> str:
    """Three significant digits (whole numbers from 100), for metrics whose differences can be
    far below one unit."""
    text = f"{value:.0f}" if abs(value) >= 99.95 else f"{value:#.3g}".rstrip(".")
    if float(text) == 0.0:
        return "0"
    return "−" + text[1:] if text.startswith("-") else text


def _amount(value: float, unit: str) -> str:
    """A value in the sentence's unit: points with one decimal, other units with 3 digits."""
    if unit == "points":
        return f"{signed(value)} points"
    return f"{_significant(value)} {unit}".rstrip()


def _p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.2g}"


def _range(low: float, high: float) -> str:
    return f"{_significant(low)}–{_significant(high)}"
