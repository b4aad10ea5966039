"""Write report.html, report.md and results.json next to each other, each atomically."""

from __future__ import annotations

import os
from pathlib import Path

from llmselect.report.html import render_html
from llmselect.report.markdown import render_markdown
from llmselect.selection.result import Selection


def _atomic_write(path: Path, text: str) -> None:
    # A crash mid-write leaves the previous file whole, never half of a new one; the process id
    # keeps two runs writing to the same folder from sharing a temporary file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_report(
    selection: Selection, out_dir: Path, *, html_name: str = "report.html"
) -> dict[str, Path]:
    """Write the HTML report, its Markdown twin and the selection as JSON; return their paths.

    Everything is rendered before anything is written, so a failure leaves the previous
    report as it was."""
    texts = {
        "html": (out_dir / html_name, render_html(selection)),
        "markdown": (out_dir / "report.md", render_markdown(selection)),
        "json": (out_dir / "results.json", selection.model_dump_json(indent=2)),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in texts.values():
        _atomic_write(path, text)
    return {kind: path for kind, (path, _) in texts.items()}
