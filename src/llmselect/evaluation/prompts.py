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
    found = store.prompts(list(sources.values()))
    missing = [i for i in items if sources[i.id] not in found]
    if missing:
        rendered = {sources[i.id]: render(template, i, examples, file) for i in missing}
        # Another process may have stored some meanwhile: its prompt is kept, and read back.
        store.put_prompts(rendered)
        found.update(store.prompts(list(rendered)))
    return {item_id: found[key] for item_id, key in sources.items()}
