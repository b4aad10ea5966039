"""Ruff and mypy stay clean: CI runs this file with the rest of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "--no-cache", "."],
        ["ruff", "format", "--no-cache", "--check", "."],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tool_is_clean(command: list[str]) -> None:
    # The tool from this environment, not whatever else is on PATH; no cache, so a stale
    # local cache cannot hide what a clean clone would report.
    exe = Path(sys.prefix) / "bin" / command[0]
    if not exe.exists():
        pytest.skip(f"{command[0]} is not installed (pip install -e .[dev])")
    result = subprocess.run([str(exe), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
