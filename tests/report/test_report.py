"""The report: self-contained, escaped, and working in a real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmselect.evaluation.statistics import compare
from llmselect.licensing.profile import UseProfile
from llmselect.report import render_html, render_markdown, write_report
from llmselect.selection.pipeline import select
from llmselect.selection.result import Finetuned, MetricScore, Selection
from llmselect.selection.study import SelectStudy

HOSTILE_OUTPUT = "<script>alert('output')</script> | not a cell"
HOSTILE_NAME = "<img src=x onerror=alert('name')>"
CHROMIUM = Path("/usr/bin/chromium")

STUDY = """\
name: report-test
hardware: RTX-4090
targets: {context: 4096, concurrent_users: 2}
candidates:
  ids: [Qwen/Qwen2-0.5B-Instruct, Qwen/Qwen2-1.5B-Instruct, TinyLlama/TinyLlama-1.1B-Chat-v1.0,
        HuggingFaceTB/SmolLM2-360M-Instruct, meta-llama/Llama-2-7b-chat-hf,
        huggyllama/llama-7b, meta-llama/Llama-2-70b-hf]
"""


@pytest.fixture(scope="module")
def selection(tmp_path_factory: pytest.TempPathFactory) -> Selection:
    folder = tmp_path_factory.mktemp("report-study")
    path = folder / "study.yaml"
    path.write_text(STUDY)
    study = SelectStudy.model_validate(yaml.safe_load(STUDY))
    result = select(study, UseProfile(), path, out_dir=folder / "out", measure=False)
    ranked = [e for e in result.entries if e.rank is not None]
    # What a hostile model card and a hostile model output would put in the report.
    ranked[1].name = HOSTILE_NAME
    ranked[0].examples = [
        {
            "item_id": "q1",
            "prompt": "Q: <b>bold?</b>",
            "reference": "</script>",
            "output": HOSTILE_OUTPUT,
        }
    ]
    ranked[0].metrics = [
        MetricScore(name="exact_match", value=0.5, low=0.2, high=0.8, n=10, weight=1)
    ]
    a, b = [1.0, 0.0] * 10, [1.0, 1.0] * 10
    comparison = compare("model-a", a, "model-b", b, metric="exact_match", binary=True)
    result.comparisons = [comparison.model_dump()]
    result.finetuned = [
        Finetuned(
            base="demo/base",
            tuned="demo/tuned",
            method="lora",
            examples=40,
            metric="exact_match",
            before=MetricScore(name="exact_match", value=0.0, low=0.0, high=0.0, n=20, weight=1),
            after=MetricScore(name="exact_match", value=0.6, low=0.4, high=0.8, n=20, weight=1),
            comparison=comparison.model_dump(),
            samples=[
                {"prompt": "Q?", "reference": "A", "before": "Q again?", "after": HOSTILE_OUTPUT}
            ],
        )
    ]
    return result


def test_html_is_one_offline_file_with_every_section(selection: Selection) -> None:
    html = render_html(selection)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "no external resource"
    assert html.count("<script") == 1, "only the report's own sorting script"
    for heading in (
        "Shortlist",
        "Quality against speed",
        "Fine-tuning: before and after",
        "Are the differences real?",
        "Excluded models",
        "Each model in detail",
        "Reproducibility",
    ):
        assert heading in html
    assert "<svg" in html and "Pareto front" in html
    assert "huggyllama/llama-7b" in html  # excluded, with its reason
    assert selection.recommendation.summary.split(":")[0] in html


def test_hostile_strings_are_escaped(selection: Selection) -> None:
    html = render_html(selection)
    assert HOSTILE_OUTPUT not in html and HOSTILE_NAME not in html
    assert "&lt;script&gt;alert(&#39;output&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(&#39;name&#39;)&gt;" in html
    md = render_markdown(selection)
    assert not re.search(r"(?<!\\)<(script|img|/script|b>)", md), "only escaped tags"
    assert r"\<script\>alert" in md and r"\| not a cell" in md


def test_write_report_writes_three_files_that_round_trip(
    selection: Selection, tmp_path: Path
) -> None:
    files = write_report(selection, tmp_path / "out")
    assert {p.name for p in files.values()} == {"report.html", "report.md", "results.json"}
    again = Selection.model_validate_json(files["json"].read_text())
    assert again == selection
    assert not list((tmp_path / "out").glob("*.tmp"))


# -- in a real browser -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(selection: Selection, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        if os.environ.get("LLMSELECT_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required (LLMSELECT_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("Debian's chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    out = tmp_path_factory.mktemp("report-browser")
    files = write_report(selection, out)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page()
        page.problems = []  # console errors, page errors and dialogs, collected as they come
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.on("dialog", lambda d: (page.problems.append("dialog: " + d.message), d.dismiss()))
        page.goto(files["html"].as_uri())
        yield page
        browser.close()


def _column(page: Any, index: int) -> list[str]:
    return page.eval_on_selector_all(
        "#shortlist tbody tr:not([hidden])",
        f"rows => rows.map(r => r.cells[{index}].getAttribute('data-value'))",
    )


def test_page_renders_without_errors(page: Any, selection: Selection) -> None:
    assert page.locator("#recommendation").is_visible()
    assert page.locator("#shortlist tbody tr").count() == sum(
        1 for e in selection.entries if e.rank is not None
    )
    assert page.problems == []


def test_sorting_by_a_numeric_column(page: Any) -> None:
    header = page.locator("#shortlist th", has_text="params")
    header.click()
    ascending = [float(v) for v in _column(page, 2)]
    assert ascending == sorted(ascending) and len(set(ascending)) > 1
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert [float(v) for v in _column(page, 2)] == sorted(ascending, reverse=True)
    page.locator("#shortlist th", has_text="model").click()
    names = _column(page, 1)
    assert names == sorted(names, key=str.lower) or names == sorted(names)


def test_filter_hides_rows(page: Any) -> None:
    page.fill("#filter", "qwen2-1.5b")
    assert _column(page, 1) == ["Qwen/Qwen2-1.5B-Instruct"]
    page.fill("#filter", "")
    assert len(_column(page, 1)) > 1


def test_hostile_output_shows_as_text(page: Any) -> None:
    page.locator("details").first.locator("summary").click()
    assert page.get_by_text(HOSTILE_OUTPUT).first.is_visible()
    assert page.get_by_text(HOSTILE_NAME).count() >= 1
    assert page.locator("img").count() == 0, "a model name must not become an element"
    assert page.problems == []
