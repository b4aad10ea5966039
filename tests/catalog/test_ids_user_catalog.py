"""`catalog import --id`: every id gets its own file, and nothing is replaced unless asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from config_folders import config_folder
from llmselect.catalog import load_catalog
from llmselect.cli import app

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return config_folder(tmp_path / "model", "---\nlicense: mit\n---\n")


def imported(folder: Path, model_id: str, *extra: str) -> Any:
    result = runner.invoke(app, ["catalog", "import", str(folder), "--id", model_id, *extra])
    return result


def user_ids() -> list[str]:
    return sorted(c.id for c in load_catalog() if c.origin != "builtin")


@pytest.mark.parametrize(
    ("first", "second"),
    [("foo--bar/baz", "foo/bar--baz"), ("a-b/c", "a/b-c"), ("x_y/z", "x/y_z")],
)
def test_ids_that_once_shared_a_file_each_keep_their_own(
    folder: Path, isolated_home: Path, first: str, second: str
) -> None:
    assert imported(folder, first, "--json").exit_code == 0
    assert imported(folder, second, "--json").exit_code == 0
    assert user_ids() == sorted([first, second])
    assert len(list((isolated_home / "catalog").glob("*.yaml"))) == 2


@pytest.mark.parametrize("bad", ["acme/..", "acme/.", "../acme", "acme/../x", "a/b/c"])
def test_an_id_that_is_a_path_trick_is_refused_naming_the_option(
    folder: Path, isolated_home: Path, bad: str
) -> None:
    assert imported(folder, "acme").exit_code == 0
    result = imported(folder, bad)
    assert result.exit_code == 2, result.output
    assert "--id" in result.stderr
    assert repr(bad) in result.stderr
    assert user_ids() == ["acme"]
    assert [p.name for p in (isolated_home / "catalog").iterdir()] == ["acme.yaml"]


def test_importing_an_id_again_is_refused_unless_replace(folder: Path) -> None:
    first = json.loads(imported(folder, "acme/tuned", "--json").stdout)
    result = imported(folder, "ACME/Tuned")
    assert result.exit_code == 2
    # The message names the entry already there, its file, and the way to replace it.
    assert "'acme/tuned'" in result.stderr
    assert first["saved"] in result.stderr.replace("\n", "")
    assert "--replace" in result.stderr
    assert user_ids() == ["acme/tuned"]

    again = imported(folder, "ACME/Tuned", "--replace", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["replaced"] == [first["saved"]]
    assert user_ids() == ["ACME/Tuned"]


def test_replace_takes_the_place_of_a_file_named_the_old_way(
    folder: Path, isolated_home: Path
) -> None:
    # Imports before this release named the file `org--name.yaml`.
    assert imported(folder, "acme/tuned", "--json").exit_code == 0
    catalog_dir = isolated_home / "catalog"
    (saved,) = catalog_dir.glob("*.yaml")
    legacy = catalog_dir / "acme--tuned.yaml"
    saved.rename(legacy)
    assert imported(folder, "acme/tuned").exit_code == 2
    assert imported(folder, "acme/tuned", "--replace").exit_code == 0
    assert not legacy.exists()
    assert user_ids() == ["acme/tuned"]


def test_replace_never_removes_a_file_that_holds_other_models(
    folder: Path, isolated_home: Path
) -> None:
    catalog_dir = isolated_home / "catalog"
    catalog_dir.mkdir(parents=True)
    shared = catalog_dir / "mine.yaml"
    shared.write_text(
        "family: acme\nmodels:\n"
        "  - {id: acme/one, params: 1000, licenses: {code: mit, weights: mit}}\n"
        "  - {id: acme/two, params: 1000, licenses: {code: mit, weights: mit}}\n"
    )
    result = imported(folder, "acme/one", "--replace")
    assert result.exit_code == 1
    assert str(shared) in result.stderr.replace("\n", "")
    assert "acme/two" in result.stderr
    assert user_ids() == ["acme/one", "acme/two"]
