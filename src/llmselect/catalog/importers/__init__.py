"""Importers: a local Hugging Face folder, a GGUF file, or a Hub repo id."""

from __future__ import annotations

import re
from pathlib import Path

from llmselect.catalog.importers.gguf_file import import_gguf
from llmselect.catalog.importers.hf_folder import import_hf_folder
from llmselect.catalog.importers.hub import import_from_hub
from llmselect.catalog.schema import ModelCard
from llmselect.errors import LLMSelectError

__all__ = ["import_any", "import_from_hub", "import_gguf", "import_hf_folder"]


def import_any(source: str, *, model_id: str | None = None, family: str | None = None) -> ModelCard:
    """A path that exists is read locally; `org/name` that is not a path goes to the Hub."""
    path = Path(source).expanduser()
    if path.is_dir():
        return import_hf_folder(path, model_id=model_id, family=family)
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return import_gguf(path, model_id=model_id, family=family)
        if path.name == "config.json":
            return import_hf_folder(path.parent, model_id=model_id, family=family)
        raise LLMSelectError(
            "unsupported file", file=path, hint="give a model folder, a .gguf file or a Hub repo id"
        )
    if _looks_local(source):
        raise LLMSelectError(
            "no such file or folder",
            file=path,
            hint="check the path; a Hub repo id is `org/name`, without `./`, `/` or `~`",
        )
    if re.fullmatch(r"[\w.\-]+/[\w.\-]+", source):
        return import_from_hub(source, model_id=model_id, family=family)
    raise LLMSelectError(
        f"{source!r} is neither a local path nor a Hub repo id",
        hint="give a model folder, a .gguf file, or an id like org/name",
    )


def _looks_local(source: str) -> bool:
    """A path, not a Hub id: an id never starts with `.`, `/` or `~`, has at most one `/`, and
    names a repository, not a .gguf file."""
    return (
        source.startswith((".", "/", "~"))
        or "\\" in source
        or source.count("/") > 1
        or source.lower().endswith(".gguf")
    )
