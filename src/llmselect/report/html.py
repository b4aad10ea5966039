"""The HTML report: one file, no network, every string from a card, dataset or output escaped.

Jinja2 renders with autoescape on; the only markup not escaped is the SVG built in `svg.py`
from numbers and escaped labels. The small script sorts and filters the table from the DOM:
no data from the selection is placed inside it.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from llmselect.report import svg
from llmselect.selection.result import Selection


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("llmselect.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["gib"] = lambda b: f"{b / 2**30:.1f}" if b is not None else "–"
    env.filters["pct"] = lambda v: f"{v * 100:.1f}" if v is not None else "–"
    env.filters["num"] = lambda v, fmt=".3g": format(v, fmt) if v is not None else "–"
    return env


def significance_matrices(selection: Selection) -> list[dict[str, Any]]:
    """Per metric: the models, and for each ordered pair the difference (column minus row)."""
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for c in selection.comparisons:
        by_metric.setdefault(c["metric"], []).append(c)
    matrices = []
    for metric, comparisons in by_metric.items():
        models = list(dict.fromkeys(m for c in comparisons for m in (c["a"], c["b"])))
        cells: dict[tuple[str, str], dict[str, Any]] = {}
        for c in comparisons:
            cells[(c["a"], c["b"])] = {
                "diff": c["diff"],
                "p": c["p_value"],
                "sig": c["significant"],
            }
            cells[(c["b"], c["a"])] = {
                "diff": -c["diff"],
                "p": c["p_value"],
                "sig": c["significant"],
            }
        matrices.append({"metric": metric, "models": models, "cells": cells, "rows": comparisons})
    return matrices


def render_html(selection: Selection) -> str:
    template = _environment().get_template("report.html.j2")
    ranked = [e for e in selection.entries if e.rank is not None]
    excluded = [e for e in selection.entries if e.rank is None]
    return template.render(
        s=selection,
        ranked=ranked,
        excluded=excluded,
        chart=svg.quality_latency(selection.entries),
        memory_bar=svg.memory_bar,
        matrices=significance_matrices(selection),
        detailed=ranked + [e for e in excluded if e.metrics or e.fit],
    )
