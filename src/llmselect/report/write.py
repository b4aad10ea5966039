"""Write report.html, report.md and results.json next to each other, each atomically."""

from __future__ import annotations

import os
from pathlib import Path

from llmselect.selection.result import Selection


def _atomic_write(path: Path, text: str) -> None:
    # A crash mid-write leaves the previous report whole, never half of a new one.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(
    selection: Selection, out_dir: Path, *, html_name: str = "report.html"
) -> dict[str, Path]:
    from llmselect.report.html import render_html
    from llmselect.report.markdown import render_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "html": out_dir / html_name,
        "markdown": out_dir / "report.md",
        "json": out_dir / "results.json",
    }
    _atomic_write(files["html"], render_html(selection))
    _atomic_write(files["markdown"], render_markdown(selection))
    _atomic_write(files["json"], selection.model_dump_json(indent=2))
    return files
