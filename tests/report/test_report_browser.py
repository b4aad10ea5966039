"""The HTML report in a real headless Chromium: it renders, sorts, filters, prints, runs nothing.

Skipped where Debian's chromium is not installed, unless LLMSELECT_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_selection import HOSTILE_NAME, HOSTILE_OUTPUT, MEASURED, SCRIPT

from llmselect.selection.result import Selection

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PARAMS, QUALITY, MODEL = 2, 3, 1
"""Shortlist columns the tests sort by."""


def _unavailable(why: str) -> None:
    if os.environ.get("LLMSELECT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"LLMSELECT_REQUIRE_BROWSER=1 but {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


class Page:
    """A fresh tab on the report, with every console error, page error and dialog it raised."""

    def __init__(self, browser: Any, url: str) -> None:
        self.tab = browser.new_page()
        self.problems: list[str] = []
        self.tab.on("console", self._console)
        self.tab.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.tab.on("dialog", self._dialog)
        self.tab.on("request", self._request)
        self.tab.goto(url)

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def _request(self, request: Any) -> None:
        if not request.url.startswith("file://"):
            self.problems.append(f"request: {request.url}")

    def column(self, index: int) -> list[str]:
        """The data-value of one column, in the order the visible rows are shown."""
        values: list[str] = self.tab.eval_on_selector_all(
            "#shortlist tbody tr:not([hidden])",
            f"rows => rows.map(r => r.cells[{index}].getAttribute('data-value'))",
        )
        return values

    def sort_by(self, header: str) -> None:
        self.tab.locator("#shortlist thead th", has_text=header).click()


@pytest.fixture
def page(browser: Any, report_dir: Path) -> Iterator[Page]:
    opened = Page(browser, (report_dir / "report.html").as_uri())
    yield opened
    opened.tab.close()


def test_report_renders_with_the_recommendation_first(page: Page, selection: Selection) -> None:
    recommendation = page.tab.locator("#recommendation")
    assert recommendation.is_visible()
    assert selection.recommendation.summary in recommendation.inner_text()
    assert recommendation.bounding_box()["y"] < page.tab.locator("#shortlist").bounding_box()["y"]
    assert page.column(MODEL)[0] == MEASURED
    assert page.tab.locator("#chart svg").is_visible()
    assert page.problems == []


def test_clicking_a_numeric_header_sorts_by_number_both_ways(page: Page) -> None:
    before = page.column(MODEL)
    params = [float(v) for v in page.column(PARAMS)]
    # Sorting these as text would give another order: the test tells the two apart.
    assert sorted(params) != [float(v) for v in sorted(page.column(PARAMS))]
    page.sort_by("params")
    ascending = [float(v) for v in page.column(PARAMS)]
    assert ascending == sorted(params)
    assert page.column(MODEL) != before
    assert page.tab.locator("#shortlist th", has_text="params").get_attribute("aria-sort") == (
        "ascending"
    )
    page.sort_by("params")
    assert [float(v) for v in page.column(PARAMS)] == sorted(params, reverse=True)
    assert page.problems == []


def test_models_without_a_value_sort_last_both_ways(page: Page) -> None:
    page.sort_by("quality")
    values = page.column(QUALITY)
    assert values[-1] == "" and [float(v) for v in values[:-1]] == sorted(
        float(v) for v in values[:-1]
    )
    page.sort_by("quality")
    values = page.column(QUALITY)
    assert values[-1] == "" and [float(v) for v in values[:-1]] == sorted(
        (float(v) for v in values[:-1]), reverse=True
    )


def test_clicking_a_text_header_sorts_alphabetically(page: Page) -> None:
    page.sort_by("model")
    names = page.column(MODEL)
    assert names == sorted(names, key=str.lower)
    page.sort_by("model")
    assert page.column(MODEL) == sorted(names, key=str.lower, reverse=True)


def test_typing_in_the_filter_hides_rows(page: Page) -> None:
    everything = page.column(MODEL)
    page.tab.fill("#filter", "qwen")
    assert page.column(MODEL) == [m for m in everything if "qwen" in m.lower()]
    assert page.tab.locator("#shown").inner_text() == f"2 of {len(everything)} models"
    assert page.tab.locator("#no-match").is_hidden()
    page.tab.fill("#filter", "published")  # matches the text of a cell, not only the name
    assert len(page.column(MODEL)) == 2
    page.tab.fill("#filter", "no such model")
    assert page.column(MODEL) == [] and page.tab.locator("#no-match").is_visible()
    page.tab.fill("#filter", "")
    assert page.column(MODEL) == everything
    assert page.problems == []


def test_hostile_strings_show_as_text_and_run_nothing(page: Page) -> None:
    # The first model's details are open: its answer, with a script in it, is plain text.
    output = page.tab.get_by_text(HOSTILE_OUTPUT)
    assert output.is_visible()
    assert page.tab.get_by_text(HOSTILE_NAME).first.is_visible()
    assert page.tab.get_by_text(SCRIPT).first.is_visible()
    assert page.tab.locator("script").count() == 1
    assert page.tab.locator("img, b").count() == 0, "no element came from the data"
    assert page.problems == [], "no alert, no error, no request"


def test_printing_shows_every_model_in_full(page: Page) -> None:
    closed = page.tab.locator("details:not([open])")
    how_many = closed.count()
    assert how_many > 0
    inside = closed.first.locator("h3").first
    assert inside.is_hidden()
    page.tab.emulate_media(media="print")
    assert inside.is_visible(), "print CSS shows closed details"
    assert page.tab.locator("#filter").is_hidden()
    page.tab.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert closed.count() == 0
    page.tab.evaluate("window.dispatchEvent(new Event('afterprint'))")
    assert closed.count() == how_many
