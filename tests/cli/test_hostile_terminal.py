"""Control characters from a model card never reach the terminal: they are shown escaped.

`\\e[2J` clears the screen, `\\e]0;...\\a` retitles the window, `\\x9b` is the one-byte CSI of
C1, and U+202E turns the rest of a line around: each is shown as its escape, not obeyed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config_folders import config_folder
from llmselect.cli import app
from llmselect.present.text import printable

runner = CliRunner()
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""What must not reach a terminal (tab and newline may)."""
CARD = """---
license: mit
language: ["\\e[2J\\e[H", "\\e]0;pwned\\a", "\\x9b31m", "fr\\u202Etxt.exe"]
tags: [chat]
---
"""


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    return config_folder(tmp_path / "evil", CARD, architectures=["LlamaForCausalLM\u001b[31m"])


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("\x9b31m \u202etxt") == "\\x9b31m \\u202etxt"
    assert printable("two\nlines\tand tab", multiline=True) == "two\nlines\tand tab"
    assert printable("one\nline") == "one\\nline"
    assert printable("café ✓ 東京") == "café ✓ 東京"


def test_catalog_show_and_list_escape_a_hostile_card(hostile: Path) -> None:
    imported = runner.invoke(app, ["catalog", "import", str(hostile), "--id", "acme/evil"])
    assert imported.exit_code == 0, imported.output
    for args in (["catalog", "show", "acme/evil"], ["catalog", "list"], ["catalog", "search"]):
        result = runner.invoke(app, args, env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.output
        assert not CONTROL.search(result.output), (args, result.output)
    shown = runner.invoke(app, ["catalog", "show", "acme/evil"], env={"COLUMNS": "300"}).output
    assert "\\x1b[2J\\x1b[H" in shown
    assert "\\x9b31m" in shown
    assert not CONTROL.search(imported.output)


def test_json_output_escapes_c1_controls_too(hostile: Path) -> None:
    assert (
        runner.invoke(app, ["catalog", "import", str(hostile), "--id", "acme/evil"]).exit_code == 0
    )
    result = runner.invoke(app, ["catalog", "show", "acme/evil", "--json"])
    assert not CONTROL.search(result.stdout)
    # Still the same data: JSON's own escapes decode back to the card's text.
    assert "\x9b31m" in json.loads(result.stdout)["languages"]


def test_an_error_message_escapes_the_file_it_names(tmp_path: Path) -> None:
    odd = tmp_path / "model\x1b[2J.txt"
    odd.write_text("")
    result = runner.invoke(app, ["catalog", "import", str(odd)])
    assert result.exit_code != 0
    assert "model\\x1b[2J.txt" in result.stderr
    assert not CONTROL.search(result.stderr)
