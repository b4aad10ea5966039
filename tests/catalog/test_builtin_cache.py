"""The cache of the built-in family files gives back the cards the files give, or nothing: it is
read only when every file and the merging code are as they were, and a damaged or unwritable
cache is no cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llmselect.catalog import builtin
from llmselect.catalog.builtin import builtin_cards
from llmselect.catalog.catalog import builtin_files
from llmselect.catalog.families import read_family_file
from llmselect.catalog.schema import ModelCard
from llmselect.errors import LLMSelectError


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return builtin.cache_dir()


def _same(a: list[ModelCard], b: list[ModelCard]) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        assert x == y, x.id
        assert x.model_fields_set == y.model_fields_set, x.id  # what the file said, no more
        assert x.model_dump(mode="json") == y.model_dump(mode="json"), x.id


def test_the_cached_cards_are_the_files_cards(cache: Path) -> None:
    files = builtin_files()
    parsed = [card for path in files for card in read_family_file(path)]
    first = builtin_cards(files)  # read from the files, and kept
    assert len(list(cache.glob("builtin-*.json"))) == 1
    again = builtin_cards(files)  # from the cache
    _same(parsed, first)
    _same(parsed, again)


@pytest.fixture
def family(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    source = next(p for p in builtin_files() if p.name.startswith("llama-2"))
    return Path(shutil.copy(source, folder / source.name))


def test_a_changed_file_is_read_again_and_replaces_the_entry(family: Path, cache: Path) -> None:
    before = builtin_cards([family])
    text = family.read_text()
    family.write_text(text.replace("params: 6738415616", "params: 6738415617", 1))
    after = builtin_cards([family])
    assert [c.params for c in after] != [c.params for c in before]
    assert 6738415617 in [c.params for c in after]
    assert len(list(cache.glob("builtin-*.json"))) == 1  # the old entry removed
    family.write_text(text.replace("models:", "models:\n  - {id: bad/one, params: many}", 1))
    with pytest.raises(LLMSelectError) as error:  # an error names its file and line as ever
        builtin_cards([family])
    assert error.value.file == str(family) and error.value.line


def test_a_damaged_or_unwritable_cache_is_no_cache(
    family: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = builtin_cards([family])
    (entry,) = cache.glob("builtin-*.json")
    for damage in ("[", "{}", '[{"id": 3}]', ""):
        entry.write_text(damage)
        _same(builtin_cards([family]), first)
    monkeypatch.setattr(builtin, "cache_dir", lambda: family / "catalog")  # a file in the way
    _same(builtin_cards([family]), first)
