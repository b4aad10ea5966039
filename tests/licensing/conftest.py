"""Fixtures for the licensing tests (helpers live in license_cards.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from license_cards import WriteCards, make_writer


@pytest.fixture
def write_cards(isolated_home: Path) -> WriteCards:
    """Write a family file of cards into the user catalog (LLMSELECT_HOME/catalog)."""
    return make_writer(isolated_home / "catalog")
