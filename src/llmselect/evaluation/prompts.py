"""Each item's prompt, rendered once and kept in the result store.

A template need not be deterministic (`{{ ["Q:", "Question:"]|random }}`): rendered again when
results are written, or when a run resumes, it would give other prompts, so other cache keys,
and outputs stored under the first keys would never be found. So a prompt is rendered once,
kept under a key of what it is rendered from (the template, the few-shot examples, the item),
and read back from then on: every model runs on the same text, and is scored on what it ran.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from llmselect.evaluation.datasets import Item
from llmselect.evaluation.store import Store
from llmselect.evaluation.templates import render

SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (
    source_key TEXT PRIMARY KEY,
    prompt TEXT NOT NULL
)
"""


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def stored_prompts(
    store: Store, template: str | None, items: list[Item], examples: list[Item], file: str
) -> dict[str, str]:
    """Item id to prompt: the stored one, or rendered now (once) and stored."""
    if not template:
        return {i.id: i.input for i in items}  # the input itself: nothing to render
    shots = _digest([[e.input, e.reference] for e in examples])
    sources = {
        i.id: _digest([template, shots, i.id, i.input, i.choices, i.metadata]) for i in items
    }
    with store.db:
        store.db.execute(SCHEMA)
    found = _read(store, list(sources.values()))
    missing = [i for i in items if sources[i.id] not in found]
    if missing:
        rendered = [(sources[i.id], render(template, i, examples, file)) for i in missing]
        with store.db:
            # Another process may have stored some meanwhile: its prompt is kept, and read back.
            store.db.executemany(
                "INSERT OR IGNORE INTO prompts (source_key, prompt) VALUES (?, ?)", rendered
            )
        found.update(_read(store, [key for key, _ in rendered]))
    return {item_id: found[key] for item_id, key in sources.items()}


def _read(store: Store, keys: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT source_key, prompt FROM prompts WHERE source_key IN ({marks})"  # noqa: S608
        found.update(store.db.execute(query, chunk))
    return found
