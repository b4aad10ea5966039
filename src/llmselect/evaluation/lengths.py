"""Prompts against the model's context, checked before the model runs.

A prompt fits when the room it must leave (`max_tokens` to generate, or the longest choice to
score) still fits the context with it. One that does not is handled as the study's
`task.on_long_prompt` says: `error` (the default) stops before anything runs and names the item;
`truncate_left` keeps the prompt's end (as lm-evaluation-harness does), `truncate_right` its
start; `skip` leaves the item out of that model's scores, and results list it.

A local model counts with its own tokenizer against its config's context. A server's model is
checked only when the catalog knows its context (looked up by the candidate's `model` name), its
tokens estimated as characters / 4. A perplexity task reads any length in windows: not checked.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from llmselect.errors import LLMSelectError
from llmselect.evaluation.datasets import Item
from llmselect.evaluation.study import Candidate, EvalStudy

CHARS_PER_TOKEN = 4
"""The estimate when no tokenizer is at hand (as `data check` estimates)."""
HINT = (
    "shorten the input or lower max_tokens, or set `on_long_prompt:` under `task:` to "
    "truncate_left, truncate_right or skip"
)


class Tokens(Protocol):
    """What a model offers to measure prompts: its context and its way of counting."""

    context: int
    source: str
    """Where the context comes from, for messages."""

    def count(self, texts: list[str]) -> list[int]: ...

    def cut(self, text: str, tokens: int, side: str) -> str:
        """The text cut to `tokens` of its tokens: its end (`left`) or its start (`right`)."""
        ...


class Fitted(NamedTuple):
    prompts: dict[str, str]
    """Item id to the prompt to send (cut where the policy truncates)."""
    skipped: dict[str, int]
    """Item id to its prompt's tokens, for the items left out."""


class _Estimate:
    def __init__(self, context: int, source: str) -> None:
        self.context = context
        self.source = source

    def count(self, texts: list[str]) -> list[int]:
        return [-(-len(t) // CHARS_PER_TOKEN) for t in texts]

    def cut(self, text: str, tokens: int, side: str) -> str:
        chars = max(0, tokens) * CHARS_PER_TOKEN
        return (text[len(text) - chars :] if chars else "") if side == "left" else text[:chars]


def _catalog_context(model: str | None) -> _Estimate | None:
    if not model:
        return None
    from llmselect.catalog import load_catalog

    try:
        card = load_catalog().find(model)
    except LLMSelectError:
        return None
    context = card.architecture.context_length if card else None
    if card is None or not context:
        return None
    return _Estimate(context, f"the catalog card of {card.id}; tokens estimated as characters / 4")


def tokens_of(backend: Any, candidate: Candidate) -> Tokens | None:
    """The backend's own tokenizer and context, else the catalog's context for a server model."""
    own: Tokens | None = getattr(backend, "tokens", None)
    if own is not None:
        return own
    if candidate.openai or candidate.serve:
        return _catalog_context(candidate.model)
    return None


def fit_prompts(
    study: EvalStudy,
    tokens: Tokens | None,
    items: list[Item],
    prompts: dict[str, str],
    chat: Any,
    file: str,
) -> Fitted:
    """The prompts to send, each fitted to the context as the study's policy says.

    `chat` wraps a prompt as the model sees it when the task is a chat (or None)."""
    task = study.task
    sent = {i.id: prompts[i.id] for i in items}
    if tokens is None or task.kind == "perplexity" or not items:
        return Fitted(sent, {})
    reserved = _reserved(study, tokens, items)
    seen = [chat(sent[i.id]) if chat else sent[i.id] for i in items]
    counts = dict(zip(sent, tokens.count(seen), strict=True))
    long = [i for i in items if counts[i.id] + reserved[i.id] > tokens.context]
    if not long:
        return Fitted(sent, {})
    # Room the study's own settings take whole (max_tokens over the context) is an error too.
    hopeless = [i for i in long if reserved[i.id] >= tokens.context]
    if task.on_long_prompt == "error" or hopeless:
        first = (hopeless or long)[0]
        raise _too_long(study, tokens, first, counts[first.id], reserved[first.id], file, long)
    if task.on_long_prompt == "skip":
        for item in long:
            del sent[item.id]
        return Fitted(sent, {i.id: counts[i.id] for i in long})
    side = "left" if task.on_long_prompt == "truncate_left" else "right"
    for item in long:
        cut = _cut(tokens, sent[item.id], counts[item.id], reserved[item.id], side, chat)
        if cut is None:  # not even an empty prompt leaves the room
            raise _too_long(study, tokens, item, counts[item.id], reserved[item.id], file, [item])
        sent[item.id] = cut
    return Fitted(sent, {})


def _too_long(
    study: EvalStudy,
    tokens: Tokens,
    item: Item,
    count: int,
    reserved: int,
    file: str,
    long: list[Item],
) -> LLMSelectError:
    more = f" (and {len(long) - 1} more items)" if len(long) > 1 else ""
    room = "max_tokens is" if study.task.kind == "generate" else "its longest choice takes"
    return LLMSelectError(
        f"item {item.id!r}: the prompt is {count:,} tokens and {room} {reserved:,}; the "
        f"model's context is {tokens.context:,} ({tokens.source}){more}",
        file=item.file or file,
        line=item.line,
        field="task.on_long_prompt",
        hint=HINT,
    )


def _reserved(study: EvalStudy, tokens: Tokens, items: list[Item]) -> dict[str, int]:
    """Tokens each item must leave room for after its prompt."""
    task = study.task
    if task.kind == "generate":
        return {i.id: task.max_tokens for i in items}
    choices = [[task.choice_prefix + c for c in i.choices or []] for i in items]
    counts = tokens.count([c for group in choices for c in group])
    reserved: dict[str, int] = {}
    for item, group in zip(items, choices, strict=True):
        reserved[item.id] = max(counts[: len(group)], default=0)
        counts = counts[len(group) :]
    return reserved


def _cut(
    tokens: Tokens, prompt: str, count: int, reserved: int, side: str, chat: Any
) -> str | None:
    """Cut the prompt until, as the model sees it, it fits: a tokenizer does not always split a
    cut text where it split the whole, so the count is checked again."""
    keep = tokens.count([prompt])[0] - (count + reserved - tokens.context)
    for _ in range(8):
        if keep < 1:
            return None
        cut = tokens.cut(prompt, keep, side)
        now = tokens.count([chat(cut) if chat else cut])[0]
        if now + reserved <= tokens.context:
            return cut
        keep -= now + reserved - tokens.context
    return None
