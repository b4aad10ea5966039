"""The catalog: built-in family files plus the user's imported models, looked up by id."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from llmselect.catalog.expressions import expression_ids
from llmselect.catalog.families import read_family_file
from llmselect.catalog.schema import Kind, ModelCard
from llmselect.errors import LLMSelectError, UsageError
from llmselect.paths import user_catalog_dir


class UnknownModel(UsageError):
    pass


class Criteria(BaseModel):
    """Filters for `Catalog.search`; every field left at None matches everything."""

    min_params: int | None = None
    max_params: int | None = None
    max_active_params: int | None = None
    """Parameters used per token (the total for a dense model)."""
    min_context: int | None = None
    licenses: set[str] | None = Field(default=None)
    """Weight license ids to keep (lower case)."""
    family: str | None = None
    organization: str | None = None
    kind: Kind | None = None
    finetuned_from: str | None = None
    """Keep models whose lineage reaches this id (directly or through ancestors)."""
    released_after: date | None = None
    text: str | None = None
    """A case-insensitive substring of the id or name."""


class Catalog:
    def __init__(self, cards: Iterable[ModelCard]) -> None:
        self._cards: dict[str, ModelCard] = {}
        self._by_lower: dict[str, str] = {}
        self._aliases: dict[str, set[str]] = {}
        """Lower-cased alias -> the ids of the cards that list it."""
        self._notes: dict[str, str] = {}
        """Lower-cased card id -> how an alias was resolved to it, for the user to read."""
        for card in cards:
            self.add(card)

    def add(self, card: ModelCard, *, replace: bool = False) -> None:
        key = card.id.lower()
        if key in self._by_lower and not replace:
            existing = self._cards[self._by_lower[key]]
            raise LLMSelectError(
                f"model id {card.id!r} is defined twice ({existing.origin} and {card.origin})",
                file=card.origin if card.origin != "builtin" else None,
                hint="remove one of the two entries",
            )
        old = self._cards.pop(self._by_lower.get(key, ""), None)
        if old is not None:
            for alias in old.aliases:
                self._aliases.get(alias.lower(), set()).discard(old.id)
        self._cards[card.id] = card
        self._by_lower[key] = card.id
        for alias in card.aliases:
            self._aliases.setdefault(alias.lower(), set()).add(card.id)

    def __len__(self) -> int:
        return len(self._cards)

    def __iter__(self) -> Iterator[ModelCard]:
        return iter(self._cards.values())

    def __contains__(self, model_id: object) -> bool:
        return isinstance(model_id, str) and model_id.lower() in self._by_lower

    def find(self, model_id: str) -> ModelCard | None:
        """The card for an id (case-insensitive), or for a Hub alias of one (see `resolve`)."""
        found = self.resolve(model_id)
        return found[0] if found else None

    def get(self, model_id: str) -> ModelCard:
        card = self.find(model_id)
        if card is None:
            raise UnknownModel(
                f"unknown model id {model_id!r}",
                hint=self._suggestion(model_id),
            )
        return card

    def resolve(self, model_id: str) -> tuple[ModelCard, str | None] | None:
        """The card for an id and, when it was found through an alias, a note saying so.

        Ids match without regard to case. A Hub alias is an id listed in a card's `aliases`
        (a renamed repository), or the `-hf` twin of a catalog id: `meta-llama/Llama-2-7b` and
        `meta-llama/Llama-2-7b-hf` are the same weights, the original release and its
        conversion for Hugging Face transformers. An alias two cards claim resolves to neither.
        The note is kept: `alias_note(card.id)` gives it to whoever reports on the card.
        """
        real = self._by_lower.get(model_id.lower())
        if real:
            return self._cards[real], None
        reason = self.alias_reason(model_id)
        target = self._alias_target(model_id)
        if target is None or reason is None:
            return None
        card = self._cards[target]
        note = f"{model_id} is not a catalog id; using {card.id}: {reason}"
        self._notes.setdefault(card.id.lower(), note)
        return card, note

    def _alias_target(self, model_id: str) -> str | None:
        listed = self._aliases.get(model_id.lower(), set())
        if listed:
            return next(iter(listed)) if len(listed) == 1 else None
        twin = self._by_lower.get(_hf_twin(model_id).lower())
        return twin

    def alias_reason(self, model_id: str) -> str | None:
        """Why an id that is not a catalog id names a card (None when it names none)."""
        listed = self._aliases.get(model_id.lower(), set())
        if len(listed) == 1:
            return "a Hub alias its card lists (the same weights under another repository name)"
        if listed:
            return None
        if _hf_twin(model_id).lower() in self._by_lower:
            return (
                "the same weights, one the original release and the other its `-hf` conversion "
                "for Hugging Face transformers"
            )
        return None

    def alias_note(self, card_id: str) -> str | None:
        """The note of an alias lookup that led to this card, if one did."""
        return self._notes.get(card_id.lower())

    def _suggestion(self, model_id: str) -> str:
        ids = list(self._cards)
        lower = {i.lower(): i for i in ids}
        query = model_id.lower()
        close = difflib.get_close_matches(query, lower, n=5, cutoff=0.5)
        # A short query ("llama-2-7b") is better matched against the repo's own name.
        names = {i.split("/")[-1].lower(): i for i in ids}
        close += difflib.get_close_matches(query.split("/")[-1], names, n=5, cutoff=0.6)
        picks = list(dict.fromkeys([lower.get(c) or names[c] for c in close]))[:5]
        if not picks:
            return "run `llmselect catalog list` to see the known ids"
        return "did you mean " + ", ".join(picks) + "?"

    def lineage(self, model_id: str) -> list[str]:
        """Ids from the model up to its root; stops at a missing ancestor or a cycle."""
        chain = [model_id]
        seen = {model_id.lower()}
        card = self.find(model_id)
        while card and card.base_model:
            seen.add(card.id.lower())
            base = card.base_model
            if base.lower() in seen:
                break
            chain.append(base)
            seen.add(base.lower())
            card = self.find(base)
            if card is not None and card.id.lower() != base.lower() and card.id.lower() in seen:
                break  # an alias that leads back into the chain
        return chain

    def search(self, criteria: Criteria) -> list[ModelCard]:
        return [card for card in self if _matches(self, card, criteria)]


def _hf_twin(model_id: str) -> str:
    """`org/name` <-> `org/name-hf`."""
    return model_id[:-3] if model_id.lower().endswith("-hf") else model_id + "-hf"


def _matches(catalog: Catalog, card: ModelCard, c: Criteria) -> bool:
    if c.min_params is not None and (card.params or 0) < c.min_params:
        return False
    if c.max_params is not None and (card.params is None or card.params > c.max_params):
        return False
    active = card.active_params or card.params
    if c.max_active_params is not None and (active is None or active > c.max_active_params):
        return False
    ctx = card.architecture.context_length
    if c.min_context is not None and (ctx is None or ctx < c.min_context):
        return False
    # `apache-2.0 and gpt-oss-usage-policy` matches when every license it names is wanted.
    if c.licenses is not None and not set(expression_ids(card.licenses.weights)) <= c.licenses:
        return False
    if c.family is not None and card.family.lower() != c.family.lower():
        return False
    if c.organization is not None and (card.organization or "").lower() != c.organization.lower():
        return False
    if c.kind is not None and c.kind not in card.kind:
        return False
    if c.released_after is not None and (
        card.release_date is None or card.release_date <= c.released_after
    ):
        return False
    if c.finetuned_from is not None:
        ancestors = [a.lower() for a in catalog.lineage(card.id)[1:]]
        if c.finetuned_from.lower() not in ancestors:
            return False
    if c.text is not None:
        needle = c.text.lower()
        if needle not in card.id.lower() and needle not in card.display_name.lower():
            return False
    return True


@dataclass(frozen=True)
class CardList:
    """A listing: the cards in order, and the size of the catalog they were searched in (None:
    they are the whole catalog)."""

    cards: list[ModelCard]
    searched: int | None = None

    def to_json(self) -> list[dict[str, Any]]:
        return [card.to_public_dict() for card in self.cards]


SORT_KEYS = ("family", "params", "date", "name")


def sort_cards(cards: list[ModelCard], key: str) -> list[ModelCard]:
    """The cards in the order a listing asks for (`--sort`)."""
    if key == "family":
        return sorted(cards, key=lambda c: (c.family, c.params or 0, c.id))
    if key == "params":
        return sorted(cards, key=lambda c: (c.params or 0, c.id))
    if key == "date":
        return sorted(cards, key=lambda c: (c.release_date is None, c.release_date, c.id))
    if key == "name":
        return sorted(cards, key=lambda c: c.id.lower())
    raise UsageError(f"cannot sort by {key!r}", hint=f"choose one of {', '.join(SORT_KEYS)}")


def builtin_files() -> list[Path]:
    folder = resources.files("llmselect.catalog") / "data"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith((".yaml", ".yml")))


def load_builtin() -> Catalog:
    from llmselect.catalog.builtin import builtin_cards

    return Catalog(builtin_cards(builtin_files()))


def load_catalog(user_dir: Path | None = None) -> Catalog:
    """Built-in models plus the user's catalog (imported models replace built-in ones)."""
    catalog = load_builtin()
    folder = user_dir if user_dir is not None else user_catalog_dir()
    if folder.is_dir():
        for path in sorted(folder.glob("*.yaml")):
            for card in read_family_file(path, origin=str(path)):
                catalog.add(card, replace=True)
    return catalog
