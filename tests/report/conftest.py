"""Fixtures of the report tests: one realistic selection, and the report written from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_selection import build_selection

from llmselect.catalog import load_catalog
from llmselect.selection.result import Selection


@pytest.fixture(scope="session")
def selection(tmp_path_factory: pytest.TempPathFactory) -> Selection:
    # An empty user catalog: a session fixture runs before the per-test LLMSELECT_HOME.
    return build_selection(load_catalog(user_dir=tmp_path_factory.mktemp("empty-catalog")))


@pytest.fixture(scope="session")
def report_dir(selection: Selection, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llmselect.report import write_report

    out = tmp_path_factory.mktemp("report")
    write_report(selection, out)
    return out
