from __future__ import annotations

from pathlib import Path

import pytest

# A real PostgreSQL server, started once per session for the tests that ask for it.
pytest_plugins = ["postgres_server"]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty user catalog; the real one is never touched."""
    home = tmp_path / "llmselect-home"
    monkeypatch.setenv("LLMSELECT_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home
