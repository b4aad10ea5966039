"""The presentation layer: every registered renderer exists, and dispatch follows the type."""

from __future__ import annotations

import importlib
import inspect
import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from llmselect.present import RENDERERS, render, renderer, to_json
from llmselect.selection.scaffold import Scaffold


@pytest.mark.parametrize("type_name", sorted(RENDERERS))
def test_every_registered_type_and_renderer_exists(type_name: str) -> None:
    module, _, cls_name = type_name.rpartition(".")
    cls = getattr(importlib.import_module(module), cls_name)
    assert inspect.isclass(cls)
    assert hasattr(cls, "to_json") or hasattr(cls, "model_dump"), f"{cls_name} has no JSON form"
    where, function = RENDERERS[type_name].split(":")
    assert callable(getattr(importlib.import_module(f"llmselect.present.{where}"), function))


def test_a_subclass_is_rendered_by_its_base_types_renderer() -> None:
    class Written(Scaffold):
        pass

    done = Written([Path("s/study.yaml"), Path("s/profile.yaml")])
    assert renderer(done) is renderer(Scaffold([]))
    out = Console(width=120, file=io.StringIO(), record=True)
    out.print(render(done))
    assert out.export_text().splitlines() == [
        "wrote s/study.yaml",
        "wrote s/profile.yaml",
        "next: edit s/study.yaml, then `llmselect select s/study.yaml`",
    ]
    assert to_json(done) == {"files": ["s/study.yaml", "s/profile.yaml"]}


def test_a_result_with_no_renderer_or_json_form_is_a_clear_error() -> None:
    @dataclass
    class Unknown:
        value: int

    with pytest.raises(TypeError, match="no renderer for Unknown"):
        renderer(Unknown(1))
    with pytest.raises(TypeError, match="Unknown has no JSON form"):
        to_json(Unknown(1))
