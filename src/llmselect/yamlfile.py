"""Read YAML so that validation errors can name the file, the line and the field.

The built-in data files (the catalog, the license base, hardware and engine profiles: some 90
files, 1 MB) take a quarter of a second to parse even with libyaml, on every command. Their
parse is kept in the user's cache directory as JSON, lines included, under the SHA-256 of the
file's text: a changed file is parsed again, and JSON holds data only, never code."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import platformdirs
import yaml
from pydantic import BaseModel, ValidationError

from llmselect.errors import LLMSelectError

MAX_BYTES = 5_000_000

M = TypeVar("M", bound=BaseModel)


class LineDict(dict[str, Any]):
    """A mapping that remembers the line of each key (1-based) and of itself."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    line: int = 0
    item_lines: list[int]


# libyaml's parser when PyYAML was built with it: several times faster, same marks and errors.
_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_BASE):  # type: ignore[misc, valid-type]
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be plain values", key_node.start_mark
            )
        key = str(key)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file; mappings come back as `LineDict`, lists as `LineList`. A file of the
    package itself is read from the parse cache when its text is unchanged."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LLMSelectError(f"cannot read file: {exc.strerror}", file=path) from exc
    if size > MAX_BYTES:
        raise LLMSelectError(f"file is {size} bytes, more than the {MAX_BYTES} allowed", file=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LLMSelectError("not UTF-8 text", file=path, hint="save the file as UTF-8") from exc
    cache = _cache_file(path)
    key = _CACHE_VERSION + hashlib.sha256(text.encode("utf-8")).hexdigest()
    if cache is not None:
        found = _read_cache(cache, key)
        if found is not _MISSING:
            return found
    data = _parse(text, path)
    if cache is not None:
        _write_cache(cache, key, data)
    return data


def _parse(text: str, path: Path) -> Any:
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise LLMSelectError(f"invalid YAML: {problem}", file=path, line=line) from exc
    except yaml.YAMLError as exc:
        raise LLMSelectError(f"invalid YAML: {exc}", file=path) from exc


# -- the parse cache of the package's own files ----------------------------------------------

_PACKAGE = Path(__file__).resolve().parent
_CACHE_VERSION = f"1:{yaml.__version__}:{_BASE.__name__}:"
"""Part of every key: a new cache layout or another YAML parser is a miss, not a misreading."""
_MISSING = object()


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("llmselect", appauthor=False)) / "yaml"


def _cache_file(path: Path) -> Path | None:
    """Where the parse of one of the package's own files is kept; None for any other file
    (studies, profiles, the user's catalog: small, and their paths are theirs)."""
    try:
        resolved = path.resolve()
    except OSError:
        return None
    if not resolved.is_relative_to(_PACKAGE):
        return None
    name = hashlib.sha256(str(resolved).encode("utf-8")).hexdigest()[:32]
    return cache_dir() / f"{name}.json"


def _read_cache(cache: Path, key: str) -> Any:
    try:
        stored = json.loads(cache.read_text(encoding="utf-8"))
        if stored["key"] == key:
            return _decode(stored["data"])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        pass  # absent, unreadable or damaged: parse the file as if there were no cache
    return _MISSING


def _write_cache(cache: Path, key: str, data: Any) -> None:
    try:
        encoded = _encode(data)
    except TypeError:
        return  # a type JSON does not hold (!!binary, !!set): parsed every time
    if _decode(encoded) != data:
        return
    text = json.dumps({"key": key, "data": encoded}, separators=(",", ":"))
    tmp = cache.with_name(f".{cache.name}.{secrets.token_hex(8)}.tmp")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, cache)  # a reader sees the old entry or the new one, never half
    except OSError:  # no cache where the directory cannot be written
        with contextlib.suppress(OSError):
            tmp.unlink()


def _encode(value: Any) -> Any:
    """JSON for parsed YAML: a mapping with its lines, a list with its lines, a date tagged."""
    if isinstance(value, LineDict):
        keys = list(value)
        lines = [value.key_lines[k] for k in keys]
        return {"d": [value.line, keys, lines, [_encode(v) for v in value.values()]]}
    if isinstance(value, LineList):
        return {"l": [value.line, value.item_lines, [_encode(v) for v in value]]}
    if isinstance(value, datetime.datetime):
        return {"t": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"date": value.isoformat()}
    if value is None or isinstance(value, str | int | float):
        return value
    raise TypeError(f"not cached: {type(value).__name__}")


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "d" in value:
        line, keys, lines, values = value["d"]
        mapping = LineDict(zip(keys, map(_decode, values), strict=True))
        mapping.line, mapping.key_lines = line, dict(zip(keys, lines, strict=True))
        return mapping
    if "l" in value:
        line, item_lines, values = value["l"]
        items = LineList(map(_decode, values))
        items.line, items.item_lines = line, item_lines
        return items
    if "t" in value:
        return datetime.datetime.fromisoformat(value["t"])
    return datetime.date.fromisoformat(value["date"])


def line_of(data: Any, loc: Sequence[str | int]) -> tuple[int, int | None]:
    """How deep `loc` goes into `data`, and the line of the deepest element found."""
    line = getattr(data, "line", None) or None
    node = data
    depth = 0
    for part in loc:
        depth += 1
        if isinstance(node, LineDict) and isinstance(part, str) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            return depth - 1, line
    return depth, line


def validate(
    model: type[M], data: Any, *, file: str | Path, sources: Sequence[Any] = (), where: str = ""
) -> M:
    """Validate `data` as `model`; the first error is raised with its file, line and field.

    `sources` are the raw mappings the data was built from, searched in order for the line.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [p for p in err["loc"] if isinstance(p, str | int)]
        # The deepest match wins; on a tie, the earlier (more specific) source.
        found = [line_of(raw, loc) for raw in (*sources, data)]
        line = max(found, key=lambda f: f[0])[1] if found else None
        field = ".".join(str(p) for p in loc) or None
        if where and field:
            field = f"{where}.{field}"
        more = len(exc.errors()) - 1
        # pydantic prefixes our own validators' messages with "Value error, ": drop it.
        text = str(err["msg"]).removeprefix("Value error, ")
        message = text + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")
        raise LLMSelectError(message, file=file, line=line, field=field or where or None) from exc
