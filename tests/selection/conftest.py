"""Tiny local models for measured selections, built once per session."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "evaluation_fixtures", Path(__file__).parents[1] / "evaluation" / "conftest.py"
)
assert _spec and _spec.loader
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
build_tiny_model = _fixtures.build_tiny_model


def _card(folder: Path, license_id: str) -> Path:
    (folder / "README.md").write_text(
        f"---\nlicense: {license_id}\npipeline_tag: text-generation\n---\n# {folder.name}\n"
    )
    return folder


@pytest.fixture(scope="session")
def local_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("select-models")
    return {
        "open": _card(build_tiny_model(root / "open", 1), "apache-2.0"),
        "nc": _card(build_tiny_model(root / "nc", 2), "cc-by-nc-4.0"),
    }
