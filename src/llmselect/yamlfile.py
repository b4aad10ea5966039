"""Read YAML so that validation errors can name the file, the line and the field."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

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
    """Parse a YAML file; mappings come back as `LineDict`, lists as `LineList`."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LLMSelectError(f"cannot read file: {exc.strerror}", file=path) from exc
    if size > MAX_BYTES:
        raise LLMSelectError(f"file is {size} bytes, more than the {MAX_BYTES} allowed", file=path)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506
    except UnicodeDecodeError as exc:
        raise LLMSelectError("not UTF-8 text", file=path, hint="save the file as UTF-8") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise LLMSelectError(f"invalid YAML: {problem}", file=path, line=line) from exc
    except yaml.YAMLError as exc:
        raise LLMSelectError(f"invalid YAML: {exc}", file=path) from exc


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
