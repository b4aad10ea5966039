"""Write report.html, report.md and results.json next to each other, each atomically."""

from __future__ import annotations

from pathlib import Path

from llmselect.atomicfile import write_text_atomic
from llmselect.report.html import render_html
from llmselect.report.markdown import render_markdown
from llmselect.selection.result import Selection


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
        write_text_atomic(path, text)
    return {kind: path for kind, (path, _) in texts.items()}
