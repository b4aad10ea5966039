"""`llmselect init`: a study folder to start from, with comments on every key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from llmselect.errors import UsageError

FILES = ("study.yaml", "profile.yaml", "data/eval.jsonl")


@dataclass(frozen=True)
class Scaffold:
    """`init`: the files written, the study first."""

    files: list[Path]

    def to_json(self) -> dict[str, Any]:
        return {"files": [str(p) for p in self.files]}


def scaffold(dest: Path, *, force: bool = False) -> Scaffold:
    """Write the study, its use profile and an example dataset into `dest`."""
    targets = [dest / name for name in FILES]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise UsageError(
            f"{existing[0]} already exists", hint="choose another folder, or pass --force"
        )
    source = resources.files("llmselect.selection") / "scaffold"
    name = re.sub(r"[^\w.-]+", "-", dest.resolve().name).strip("-") or "my-study"
    for relative, target in zip(FILES, targets, strict=True):
        text = (source / relative).read_text(encoding="utf-8")
        if relative == "study.yaml":
            text = text.replace("name: my-study", f"name: {name}", 1)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return Scaffold(targets)
