"""The progress bars: nothing shown until there is work, and text printed above them goes
through llmselect's console (control characters shown as escapes, never obeyed)."""

from __future__ import annotations

import sys

import pytest
from rich.text import Text

from llmselect.cli.common import progress_bars


@pytest.mark.parametrize("started", [False, True])
def test_text_above_the_bars_shows_control_characters_as_escapes(
    started: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    with progress_bars(False) as bars:
        if started:
            bars("llmselect-demo/quiz-base", 1, 4)
        bars.print(Text("gate for evil\x1b[2J\x1b]0;owned\x07 model"))
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b[2J\\x1b]0;owned" in out


def test_no_work_no_progress_module_and_no_output(capsys: pytest.CaptureFixture[str]) -> None:
    sys.modules.pop("rich.progress", None)
    with progress_bars(False):
        pass
    assert "rich.progress" not in sys.modules
    assert capsys.readouterr().out == ""


def test_with_json_nothing_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bars(True) as bars:
        bars("model", 1, 2)
        bars.print(Text("above"))
    assert capsys.readouterr().out == ""
