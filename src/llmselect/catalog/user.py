"""The user's catalog: one family file per imported model, under the user's data directory.

Each id has a file name of its own (`org/name` -> `org+name.yaml`, any other character escaped),
so two ids never share a file; an entry already there is replaced only when the caller says so.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from llmselect.catalog.families import read_family_file
from llmselect.catalog.schema import REPO_ID, ModelCard
from llmselect.errors import LLMSelectError, UsageError
from llmselect.paths import user_catalog_dir

if TYPE_CHECKING:
    from llmselect.catalog.catalog import Catalog


@dataclass(frozen=True)
class Imported:
    """`catalog import`: the card, the file it was saved in, the files it replaced, and the
    catalog that now holds it (its lineage is shown against it)."""

    card: ModelCard
    saved: Path
    replaced: list[Path]
    catalog: Catalog

    def to_json(self) -> dict[str, Any]:
        return {
            "saved": str(self.saved),
            "replaced": [str(p) for p in self.replaced],
            "model": self.card.to_public_dict(),
        }


@dataclass(frozen=True)
class Removed:
    model_id: str
    file: Path

    def to_json(self) -> dict[str, Any]:
        return {"removed": self.model_id, "file": str(self.file)}


def import_card(
    source: str, *, model_id: str | None, family: str | None, replace: bool
) -> Imported:
    """Read a model's facts (a local folder, a GGUF file, a Hub id) into your catalog."""
    from llmselect.catalog.catalog import load_catalog
    from llmselect.catalog.importers import import_any

    if model_id is not None:
        check_model_id(model_id, option="--id")
    card = import_any(source, model_id=model_id, family=family)
    replaced = user_files_of(card.id) if replace else []
    saved = save_user_card(card, replace=replace)
    return Imported(card, saved, replaced, load_catalog())


def remove_card(model_id: str) -> Removed:
    return Removed(model_id, remove_user_card(model_id))


_KEPT = re.compile(r"[A-Za-z0-9_.\-]")
_MAX_NAME = 200
"""File names stay well under the 255 bytes most file systems allow."""


def check_model_id(model_id: str, *, option: str = "id") -> None:
    """`name` or `org/name`, as the Hub writes them; `.` and `..` are paths, not names."""
    parts = model_id.split("/")
    if re.fullmatch(REPO_ID, model_id) and not any(set(p) <= {"."} for p in parts):
        return
    raise UsageError(
        f"{model_id!r} is not a model id",
        field=option,
        hint="give the id with --id as `name` or `org/name`: letters, digits, `_`, `-` and `.` "
        "(not `.` or `..` alone), one `/` at most",
    )


def file_for(model_id: str, folder: Path) -> Path:
    """The file an id is saved in: a one-to-one name, so no other id can write over it."""
    name = "".join(
        ch if _KEPT.match(ch) else "+" if ch == "/" else "".join(f"%{b:02X}" for b in ch.encode())
        for ch in model_id
    )
    if len(name) > _MAX_NAME:
        # `~` is escaped everywhere else, so a shortened name never equals a whole one.
        name = name[: _MAX_NAME - 17] + "~" + hashlib.sha256(model_id.encode()).hexdigest()[:16]
    return folder / f"{name}.yaml"


def _files_with(model_id: str, folder: Path) -> list[tuple[Path, list[str]]]:
    """The files that hold this id (as the catalog matches ids: ignoring case), with every id
    each of them holds."""
    found = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            ids = [c.id for c in read_family_file(path, origin=str(path))]
        except LLMSelectError:
            continue
        if any(i.lower() == model_id.lower() for i in ids):
            found.append((path, ids))
    return found


def _check_replaceable(
    card: ModelCard, path: Path, holders: list[tuple[Path, list[str]]], replace: bool
) -> None:
    for holder, ids in holders:
        others = [i for i in ids if i.lower() != card.id.lower()]
        if others:
            raise LLMSelectError(
                f"{card.id!r} shares this file with {', '.join(others)}",
                file=holder,
                hint="edit its entry in the file by hand, or import it under another --id",
            )
        if not replace:
            existing = next(i for i in ids if i.lower() == card.id.lower())
            raise UsageError(
                f"{existing!r} is already in your catalog",
                file=holder,
                hint="pass --replace to write over it, or --id to import it under another id",
            )
    if path.exists() and not any(_same(path, holder) for holder, _ in holders):
        raise LLMSelectError(
            "a file of this name is in your catalog and does not hold this model",
            file=path,
            hint="move the file away, or import the model under another --id",
        )


def _same(a: Path, b: Path) -> bool:
    return a.exists() and b.exists() and os.path.samefile(a, b)


def user_files_of(model_id: str, folder: Path | None = None) -> list[Path]:
    """The files of your catalog that hold this id (what `save_user_card` would replace)."""
    return [path for path, _ in _files_with(model_id, folder or user_catalog_dir())]


def save_user_card(card: ModelCard, folder: Path | None = None, *, replace: bool = False) -> Path:
    """Write the card atomically: a crash mid-write never leaves a half-written catalog file.

    An entry with the same id (ignoring case) is replaced only with `replace`."""
    check_model_id(card.id)
    folder = folder or user_catalog_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = file_for(card.id, folder)
    holders = _files_with(card.id, folder)
    _check_replaceable(card, path, holders, replace)
    data = card.model_dump(mode="json", exclude={"origin"}, exclude_defaults=True)
    data.setdefault("licenses", card.licenses.model_dump(mode="json", exclude_defaults=True))
    family = data.pop("family")
    document = {"family": family, "models": [data]}
    text = "# Imported by llmselect; edit freely, it is read back like a built-in family file.\n"
    text += yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=".import-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        # Read it back before it replaces anything: what we write must load.
        read_family_file(Path(tmp), origin=str(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for holder, _ in holders:
        # A file named another way (an older release's name, or another case of the id) goes;
        # the one just written may be that same file on a case-insensitive file system.
        if holder.exists() and not _same(holder, path):
            holder.unlink()
    return path


def remove_user_card(model_id: str, folder: Path | None = None) -> Path:
    folder = folder or user_catalog_dir()
    for path, ids in _files_with(model_id, folder):
        if len(ids) > 1:
            raise LLMSelectError(
                f"{model_id!r} shares this file with {len(ids) - 1} other model(s)",
                file=path,
                hint="delete its entry from the file by hand",
            )
        path.unlink()
        return path
    raise UsageError(
        f"{model_id!r} is not in your catalog ({folder})",
        hint="only imported models can be removed; `llmselect catalog list` shows the origin",
    )
