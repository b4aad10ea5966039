"""Consistency checks on catalog entries: the numbers agree, every fact has a source.

`llmselect catalog check` runs these on the built-in catalog, the user's, or a file being written.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from llmselect.catalog.catalog import Catalog
from llmselect.catalog.expressions import expression_ids
from llmselect.catalog.params import count_params
from llmselect.catalog.schema import ModelCard

TOLERANCE = 0.01
"""Stated and computed parameter counts may differ by 1% (buffers, rounding in the source)."""


def is_rounded(count: int) -> bool:
    """A published round figure (46,700,000,000) rather than a count of stored weights."""
    digits = len(str(count))
    return digits > 6 and count % 10 ** (digits - 4) == 0


class Finding(BaseModel):
    model: str
    level: Literal["error", "warning"]
    message: str


class CatalogCheck(BaseModel):
    """`catalog check`: how many cards were checked and what was found."""

    checked: int
    findings: list[Finding]

    @property
    def errors(self) -> int:
        return sum(f.level == "error" for f in self.findings)


def check_cards(
    cards: list[ModelCard], catalog: Catalog, known_licenses: Collection[str]
) -> CatalogCheck:
    return CatalogCheck(checked=len(cards), findings=check_catalog(cards, catalog, known_licenses))


def check_files(files: list[Path], known_licenses: Collection[str]) -> CatalogCheck:
    """Check the cards of these family files against the catalog (the whole catalog when no
    file is given)."""
    from llmselect.catalog.catalog import load_catalog
    from llmselect.catalog.families import read_family_file

    catalog = load_catalog()
    if not files:
        return check_cards(list(catalog), catalog, known_licenses)
    cards = [card for path in files for card in read_family_file(path)]
    for card in cards:
        catalog.add(card, replace=True)  # so that lineage inside the files resolves
    return check_cards(cards, catalog, known_licenses)


def check_card(
    card: ModelCard, catalog: Catalog, known_licenses: Collection[str] | None = None
) -> list[Finding]:
    found: list[Finding] = []

    def add(level: Literal["error", "warning"], message: str) -> None:
        found.append(Finding(model=card.id, level=level, message=message))

    arch = card.architecture
    if card.params is None:
        add("error", "no parameter count")
    elif arch.is_complete:
        counted = count_params(arch)
        off = (counted.total - card.params) / card.params
        if abs(off) > TOLERANCE:
            add(
                "error",
                f"architecture gives {counted.total:,} parameters, the card states "
                f"{card.params:,} ({off:+.2%}): beyond rounding, a field is probably wrong",
            )
        elif is_rounded(card.params) and counted.total != card.params:
            add(
                "warning",
                f"params {card.params:,} is a rounded figure; the architecture gives "
                f"{counted.total:,}: record the exact count (the Hub's safetensors total)",
            )
        if arch.is_moe:
            # Vendors differ on whether the embedding lookup counts as active (Mixtral's 12.9B
            # does, gpt-oss's 5.1B does not): either reading is accepted.
            readings = {counted.active}
            if not arch.tie_word_embeddings:
                readings.add(counted.active - counted.embedding)
            if card.active_params is None:
                add("warning", "mixture-of-experts model without active_params")
            elif all(
                abs(r - card.active_params) / card.active_params > TOLERANCE for r in readings
            ):
                add(
                    "error",
                    f"architecture gives {counted.active:,} active parameters "
                    f"({counted.active - counted.embedding:,} without the embedding lookup), "
                    f"the card states {card.active_params:,}",
                )
    else:
        add("warning", "architecture incomplete: the parameter count cannot be checked")

    sources = card.sources
    for group in ("params", "licenses", "release_date"):
        if not getattr(sources, group):
            add("warning", f"no source for {group}")
    if arch.is_complete and len(set(sources.architecture)) < 2:
        add("warning", "architecture has fewer than two independent sources")
    if card.base_model:
        if card.base_model not in catalog:
            add("warning", f"base_model {card.base_model} is not in the catalog")
        if not sources.lineage:
            add("warning", "no source for lineage")
    if known_licenses is not None:
        for component in ("code", "weights"):
            expression = getattr(card.licenses, component)
            for license_id in expression_ids(expression):
                if license_id not in known_licenses:
                    add("warning", f"{component} license {license_id!r} is not in the license base")
    return found


def check_catalog(
    cards: Iterable[ModelCard], catalog: Catalog, known_licenses: Collection[str] | None = None
) -> list[Finding]:
    return [f for card in cards for f in check_card(card, catalog, known_licenses)]
