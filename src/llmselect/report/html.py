"""The HTML report: one file, no network, every string from a card, dataset or output escaped.

Jinja2 renders with autoescape on; the only markup not escaped is the SVG built in `svg.py`
from numbers and escaped labels. The small script (`templates/report.js`) sorts and filters the
shortlist from the values already in the table cells: no data from the selection is placed
inside a script, and the page's Content-Security-Policy allows that script alone, by its hash.
No control character reaches the file (`printable`).
"""

from __future__ import annotations

import base64
import hashlib
import os
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
import platformdirs
from jinja2 import Environment, FileSystemBytecodeCache, FunctionLoader, StrictUndefined
from jinja2.bccache import Bucket
from markupsafe import Markup, escape

from llmselect import units
from llmselect.licensing.verdicts import Reason
from llmselect.present.text import printable
from llmselect.report import svg
from llmselect.selection.result import Entry, Selection
from llmselect.selection.sentences import most_users
from llmselect.units import format_count, format_tokens


def _template_source(name: str) -> str:
    # importlib.resources reads package data from a wheel, a zip or a source checkout alike.
    return (files("llmselect.report") / "templates" / name).read_text(encoding="utf-8")


@cache
def _script() -> tuple[Markup, str]:
    """The report's script and its CSP source (`sha256-...` of its exact text, as the browser
    hashes the element's content): no nonce, so the same selection gives the same file."""
    script = _template_source("report.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    return Markup(script), f"sha256-{digest}"  # noqa: S704 - our own file, not data


def _chip(verdict: str | None) -> Markup:
    """A license verdict as a coloured chip. A function rather than a template macro: the
    report shows thousands, and Jinja calls a macro at several times a function's cost."""
    cls, text = escape(verdict or "unknown"), escape(verdict or "not judged")
    return Markup(f'<span class="chip {cls}">{text}</span>')  # noqa: S704 - escaped above


def _sort_value(value: float | None) -> str:
    """What the script sorts a numeric cell by; empty (sorted last) when there is no value."""
    return "" if value is None else repr(float(value))


class _CompiledTemplates(FileSystemBytecodeCache):
    """The report's template compiled once, not on every run (compiling it takes about as long
    as rendering the whole catalog). Jinja checks the template's text against each entry; the
    file names carry the options that shape the compiled code too. A cache that cannot be read
    or written is no cache, never an error."""

    def __init__(self, env: Environment) -> None:
        options = [jinja2.__version__, env.autoescape, env.undefined.__name__, env.trim_blocks]
        options += [env.lstrip_blocks, env.keep_trailing_newline, env.newline_sequence]
        digest = hashlib.sha256(repr(options).encode("utf-8")).hexdigest()[:16]
        folder = Path(platformdirs.user_cache_dir("llmselect", appauthor=False)) / "templates"
        super().__init__(str(folder), f"{digest}-%s.cache")

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # a damaged entry: compile as if there were none
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            os.makedirs(self.directory, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError:
            pass


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FunctionLoader(_template_source),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.bytecode_cache = _CompiledTemplates(env)
    env.filters["gib"] = units.gib
    env.filters["pct"] = units.points
    env.filters["num"] = units.number
    env.filters["sortvalue"] = _sort_value
    env.filters["params"] = lambda n: format_count(n) if n is not None else "–"
    env.filters["tokens"] = format_tokens
    return env


def significance_matrices(selection: Selection) -> list[dict[str, Any]]:
    """Per metric: the models, and for each ordered pair the difference (column minus row).

    `Comparison.diff` is `b - a`; the mirrored cell is `a - b` with the interval flipped."""
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for c in selection.comparisons:
        by_metric.setdefault(str(c["metric"]), []).append(c)
    matrices = []
    for metric, comparisons in by_metric.items():
        models = list(dict.fromkeys(str(m) for c in comparisons for m in (c["a"], c["b"])))
        cells: dict[tuple[str, str], dict[str, Any]] = {}
        for c in comparisons:
            shared = {"p": c["p_value"], "sig": c["significant"], "sentence": c["sentence"]}
            cells[(c["a"], c["b"])] = {"diff": c["diff"], "low": c["low"], "high": c["high"]}
            cells[(c["b"], c["a"])] = {"diff": -c["diff"], "low": -c["high"], "high": -c["low"]}
            cells[(c["a"], c["b"])].update(shared)
            cells[(c["b"], c["a"])].update(shared)
        matrices.append({"metric": metric, "models": models, "cells": cells, "rows": comparisons})
    return matrices


def grouped_reasons(reasons: list[Reason]) -> list[dict[str, Any]]:
    """The same term inherited through several lineage steps, said once with every origin."""
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for r in reasons:
        key = (r.verdict, r.message, r.license or "", r.clause or "", r.detail or "")
        group = groups.setdefault(key, {"reason": r, "origins": []})
        if r.origin not in group["origins"]:
            group["origins"].append(r.origin)
    return list(groups.values())


def _detailed(selection: Selection) -> list[Entry]:
    """Entries worth a details block: everything we know something about beyond the catalog."""
    return [e for e in selection.entries if e.rank is not None or e.license or e.fit or e.metrics]


def render_html(selection: Selection) -> str:
    """The whole report as one self-contained HTML page (inline CSS, SVG and a small script)."""
    ranked = [e for e in selection.entries if e.rank is not None]
    excluded = [e for e in selection.entries if e.rank is None]
    detailed = _detailed(selection)
    with_details = {id(e) for e in detailed}
    anchors = {id(e): f"model-{i}" for i, e in enumerate(selection.entries, start=1)}
    script, script_hash = _script()
    page = (
        _environment()
        .get_template("report.html.j2")
        .render(
            script=script,
            script_hash=script_hash,
            s=selection,
            ranked=ranked,
            excluded=excluded,
            detailed=detailed,
            has_details=lambda e: id(e) in with_details,
            anchor=lambda e: anchors[id(e)],
            chart=svg.quality_latency(selection.entries),
            load_chart=svg.load_charts(
                selection.entries, selection.targets.ttft_p95_s, selection.targets.tokens_per_s
            ),
            memory_bar=svg.memory_bar,
            matrices=significance_matrices(selection),
            source_label=svg.SOURCE_LABEL,
            grouped_reasons=grouped_reasons,
            chip=_chip,
            most_users=lambda load: most_users(
                load,
                targets_given=bool(selection.targets.ttft_p95_s or selection.targets.tokens_per_s),
            ),
        )
    )
    # Escaped, not dropped: a control character in a card shows, and cannot hide, what follows.
    return printable(page, multiline=True)
