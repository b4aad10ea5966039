"""A CSV dataset whose rows do not match its header, or whose quotes do not close, is refused
with its file and line; quoted fields keep their line breaks and their items their lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmselect.errors import LLMSelectError
from llmselect.evaluation.datasets import FieldMap, load_dataset


def refused(tmp_path: Path, text: str) -> LLMSelectError:
    path = tmp_path / "data.csv"
    path.write_text(text)
    with pytest.raises(LLMSelectError) as err:
        load_dataset(path)
    assert err.value.file == str(path)
    return err.value


def test_a_row_missing_a_column(tmp_path: Path) -> None:
    err = refused(tmp_path, "input,reference\na,b\nc\nd,e\n")
    assert err.line == 3
    assert "1 field" in err.message and "2 columns" in err.message


def test_a_row_with_a_column_too_many(tmp_path: Path) -> None:
    err = refused(tmp_path, "input,reference\na,b\nc,d,e\n")
    assert err.line == 3
    assert "3 fields" in err.message


def test_a_quote_that_never_closes(tmp_path: Path) -> None:
    err = refused(tmp_path, 'input,reference\na,b\n"c,d\ne,f\ng,h\n')
    assert err.line == 3  # where the quote opened, not the end of the file
    assert "quote" in err.message


def test_text_after_a_closing_quote(tmp_path: Path) -> None:
    err = refused(tmp_path, 'input,reference\na,b\n"c"x,d\n')
    assert err.line == 3


def test_a_column_named_twice(tmp_path: Path) -> None:
    err = refused(tmp_path, "input,reference,input\na,b,c\n")
    assert err.line == 1
    assert "'input'" in err.message


def test_quoted_line_breaks_are_kept_and_lines_counted(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text('input,reference\n"first\nsecond",x\n\nthird,"y\u2028z"\n')
    items = load_dataset(path, FieldMap()).items
    assert [i.input for i in items] == ["first\nsecond", "third"]
    assert [i.line for i in items] == [2, 5]
    assert items[1].reference == "y\u2028z"
