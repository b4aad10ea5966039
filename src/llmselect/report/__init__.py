"""The report: one self-contained HTML file, its Markdown twin, and the selection as JSON."""

from __future__ import annotations

from llmselect.report.html import render_html
from llmselect.report.markdown import render_markdown
from llmselect.report.write import write_report

__all__ = ["render_html", "render_markdown", "write_report"]
