"""Read family files: one YAML file per model family, shared `defaults` merged into each model.

```yaml
family: llama-2
organization: Meta
defaults:              # merged into every model (mappings merge key by key)
  licenses: {code: llama2, weights: llama2, data: undisclosed}
models:
  - id: meta-llama/Llama-2-7b-hf
    params: 6738415616
    ...
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmselect.catalog.schema import ModelCard
from llmselect.errors import LLMSelectError
from llmselect.yamlfile import LineDict, line_of, load_yaml, validate

FAMILY_KEYS = {"family", "organization", "defaults", "models", "description"}


def merge(base: Any, override: Any) -> Any:
    """Deep-merge mappings; anything else in `override` replaces `base`."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return override


def read_family_file(path: Path, *, origin: str = "builtin") -> list[ModelCard]:
    return [
        validate(ModelCard, data, file=path, sources=(entry, defaults), where=f"models[{index}]")
        for index, (data, entry, defaults) in enumerate(family_entries(path, origin=origin))
    ]


def family_entries(path: Path, *, origin: str = "builtin") -> list[tuple[dict[str, Any], Any, Any]]:
    """Each model of a family file as the mapping its card is validated from (the family's
    defaults merged in), with the file's own entry and defaults (where errors find a line)."""
    raw = load_yaml(path)
    if not isinstance(raw, LineDict):
        raise LLMSelectError("a family file is a mapping with `family` and `models`", file=path)
    unknown = set(raw) - FAMILY_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise LLMSelectError(
            f"unknown key {key!r}",
            file=path,
            line=line_of(raw, [key])[1],
            hint=f"top-level keys are {', '.join(sorted(FAMILY_KEYS))}",
        )
    models = raw.get("models")
    if not isinstance(models, list) or not models:
        raise LLMSelectError("`models` must be a non-empty list", file=path, line=raw.line)
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise LLMSelectError(
            "`defaults` must be a mapping", file=path, line=line_of(raw, ["defaults"])[1]
        )
    shared = {"family": raw.get("family"), "organization": raw.get("organization")}
    shared = {k: v for k, v in shared.items() if v is not None}

    entries = []
    for index, entry in enumerate(models):
        if not isinstance(entry, dict):
            raise LLMSelectError(
                "each model is a mapping", file=path, line=line_of(raw, ["models", index])[1]
            )
        data = merge(merge(shared, defaults), entry)
        data["origin"] = origin
        entries.append((data, entry, defaults))
    return entries
