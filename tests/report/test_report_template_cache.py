"""The report's template is compiled once and kept in the user's cache: the next run renders
the same page without compiling, and a damaged entry is compiled again, never an error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from jinja2 import Environment

from llmselect.report import html
from llmselect.selection.result import Selection


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    html._environment.cache_clear()  # a new run: the environment is made again
    yield tmp_path / "llmselect" / "templates"
    html._environment.cache_clear()


def _fresh_render(selection: Selection) -> str:
    html._environment.cache_clear()
    return html.render_html(selection)


def test_the_next_run_renders_the_same_page_without_compiling(
    selection: Selection, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = _fresh_render(selection)
    (entry,) = cache.glob("*.cache")

    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again")

    with monkeypatch.context() as patch:
        patch.setattr(Environment, "compile", no_compiling)
        assert _fresh_render(selection) == page
    entry.write_bytes(b"damaged")
    assert _fresh_render(selection) == page
    entry.write_bytes(entry.read_bytes()[:40])  # cut short
    assert _fresh_render(selection) == page


def test_no_cache_where_none_can_be_written(
    selection: Selection, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = _fresh_render(selection)
    blocker = cache.parent.parent / "file"
    blocker.write_text("in the way")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache folder cannot be made
    assert _fresh_render(selection) == page
