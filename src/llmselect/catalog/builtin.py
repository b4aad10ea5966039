"""The built-in cards, with their family files merged once per version of the files.

`select` reads the whole catalog on every run, and reading 40-odd family files and merging each
family's defaults into its models took about a tenth of its time. The merged model entries
(what the files say, nothing computed from it) are kept as one JSON file, whose name is a
digest of every family file's name and text and of the code that merges them: a changed file is
a miss, never a misreading. Every run still validates the entries with the current schema, so a
change to the schema or its validators needs no new key. A cache that cannot be read, parsed or
written is no cache: the files are read as if there were none, and their errors name their
lines as always.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import TypeAdapter

from llmselect.catalog import families
from llmselect.catalog.families import family_entries
from llmselect.catalog.schema import ModelCard
from llmselect.yamlfile import validate

_CACHE_VERSION = b"1"
_CARDS = TypeAdapter(list[ModelCard])


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("llmselect", appauthor=False)) / "catalog"


def builtin_cards(files: list[Path]) -> list[ModelCard]:
    """The cards of the built-in family `files`, in order."""
    digest = hashlib.sha256(_CACHE_VERSION)
    digest.update(Path(families.__file__).read_bytes())
    for path in files:
        text = path.read_bytes()
        digest.update(f"\0{path.name}\0{len(text)}\0".encode())
        digest.update(text)
    cache = cache_dir() / f"builtin-{digest.hexdigest()[:32]}.json"
    with contextlib.suppress(OSError, ValueError):  # absent or damaged: read the files
        return _CARDS.validate_json(cache.read_bytes())
    entries: list[dict[str, Any]] = []
    cards = []
    for path in files:
        for index, (data, entry, defaults) in enumerate(family_entries(path)):
            sources, where = (entry, defaults), f"models[{index}]"
            cards.append(validate(ModelCard, data, file=path, sources=sources, where=where))
            entries.append(data)
    _write(cache, entries)
    return cards


def _date(value: Any) -> str:
    if isinstance(value, datetime.date):  # datetimes too; JSON validation reads both back
        return value.isoformat()
    raise TypeError(f"not cached: {type(value).__name__}")


def _write(cache: Path, entries: list[dict[str, Any]]) -> None:
    try:
        text = json.dumps(entries, default=_date, separators=(",", ":"))
    except (TypeError, ValueError):
        return  # a value JSON does not hold: read from the files every time
    tmp = cache.with_name(f".{cache.name}.{secrets.token_hex(8)}.tmp")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, cache)  # a reader sees the whole file or none
        for old in cache.parent.glob("builtin-*.json"):  # the entries of earlier files
            if old != cache:
                old.unlink(missing_ok=True)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
