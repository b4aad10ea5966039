"""The license knowledge base: one YAML file per license, keyed by SPDX or Hub id.

Each license lists its terms: what it forbids or requires, the clause it says so in, and which
uses trigger it. The verdict engine (`verdicts.py`) reads these terms against a use profile.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmselect.errors import UsageError
from llmselect.yamlfile import load_yaml, validate

CommercialUse = Literal["allowed", "conditional", "forbidden", "unknown"]

Action = Literal[
    "commercial",
    "redistribute_weights",
    "hosted_service",
    "distribute_derivative",
    "train_other_models_on_outputs",
]
"""Uses a profile can declare; a term names the ones that trigger it."""

TermKind = Literal[
    "non_commercial",
    "user_ceiling",
    "revenue_ceiling",
    "attribution",
    "naming",
    "share_alike",
    "copyleft",
    "acceptable_use",
    "output_training",
    "hosting",
    "no_derivatives",
    "research_only",
    "non_production",
    "vendor_outputs",
    "guardrail",
    "termination",
    "regional_exclusion",
]
"""
- non_commercial / research_only: commercial use is not granted.
- non_production: only testing, research, personal or evaluation use outside production; commercial
  use is not granted and even non-commercial use is a duty to stay out of production.
- user_ceiling / revenue_ceiling: granted only below `limit` monthly active users / USD a year.
- attribution, naming, share_alike, copyleft: duties owed when the triggering use happens (and,
  with a `threshold`, only above `limit` of that measure).
- acceptable_use: a use policy applies (always a duty); uses in `fields` are forbidden.
- output_training: the model's outputs may not be used to train or improve other models.
- hosting: offering the model as a hosted service to third parties needs another license.
- no_derivatives: adapted versions may not be shared.
- vendor_outputs: the data are another vendor's model outputs, under that vendor's terms.
- guardrail: the model's safety guardrails must be kept (or replaced by equivalent ones); removing
  them ends the license. Always a duty.
- termination: an event that ends the rights (suing the licensor over the model, say). Recorded for
  `license explain`; no use a profile declares triggers it, so it never changes a verdict.
- regional_exclusion: no rights for a licensee domiciled (or with its principal place of business)
  in one of `jurisdictions`; with `multimodal_only`, only for models that read more than text
  (Llama 3.2, 3.3 and 4 withhold their multimodal models from the EU).
"""

Measure = Literal["monthly_active_users", "annual_revenue_usd"]
"""A quantity of the use profile that a term's `limit` is counted in."""


class Term(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: TermKind
    clause: str
    """Where the license says it: section number and a short quote or paraphrase."""
    summary: str
    """What it means for a user, in plain words."""
    when: list[Action] = Field(default_factory=list)
    """Uses that trigger the term; empty means it always applies."""
    limit: int | None = None
    """The ceiling of a user_ceiling or revenue_ceiling term, or the threshold of a duty."""
    threshold: Measure | None = None
    """For a duty (attribution, naming...): it is owed only above `limit` of this measure
    (Kimi K2's display duty above 100 million monthly active users)."""
    fields: list[str] = Field(default_factory=list)
    """Fields of use an acceptable_use term forbids (lower case: military, medical, ...)."""
    policy: str | None = None
    """Where the full use policy lives."""
    jurisdictions: list[str] = Field(default_factory=list)
    """Where a regional_exclusion withholds the rights (`eu`, or ISO 3166 country codes)."""
    multimodal_only: bool = False
    """A regional_exclusion that applies only to models that read images, audio or video."""


class Revision(BaseModel):
    """An earlier text of the license, and what differed from the current one."""

    model_config = ConfigDict(extra="forbid")

    version: str
    """How that text names itself (`Last modified: February 21, 2024`)."""
    since: datetime.date | None = None
    until: datetime.date | None = None
    """The last day it was the current text; None when not known."""
    summary: str
    """What differs from the current text, in plain words."""
    source: str


class License(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    url: str | None = None
    spdx: bool
    """True when `id` is an SPDX license id (lower-cased)."""
    osi_approved: bool
    open: bool = False
    """Counts as an open license for the Model Openness Framework (OSI-approved, or an open
    content/data license such as CC-BY or ODC-By); no use restrictions."""
    commercial_use: CommercialUse
    """`conditional`: allowed while the license's duties and ceilings are met."""
    summary: str
    source: str
    """Where the license text was read."""
    version: str | None = None
    """The text the terms were read from (`Version 1.0, 23 October 2023`)."""
    terms: list[Term] = Field(default_factory=list)
    history: list[Revision] = Field(default_factory=list)
    """Earlier texts under the same id, newest first: copies obtained then may remain under
    them."""

    @model_validator(mode="after")
    def _thresholds_have_limits(self) -> License:
        for term in self.terms:
            if term.threshold is not None and term.limit is None:
                raise ValueError(f"a {term.kind} term with a threshold needs a limit")
        return self


class UnknownLicense(UsageError):
    pass


@dataclass(frozen=True)
class LicenseList:
    """`license list`: every license in the knowledge base, by id."""

    licenses: list[License]

    def to_json(self) -> list[dict[str, Any]]:
        return [lic.model_dump(mode="json") for lic in self.licenses]


def license_list() -> LicenseList:
    return LicenseList(sorted(load_licenses().values(), key=lambda lic: lic.id))


@cache
def load_licenses() -> dict[str, License]:
    folder = resources.files("llmselect.licensing") / "data"
    licenses = {}
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            path = Path(str(entry))
            lic = validate(License, load_yaml(path), file=path)
            licenses[lic.id] = lic
    return licenses


def get_license(license_id: str) -> License:
    licenses = load_licenses()
    try:
        return licenses[license_id.lower()]
    except KeyError:
        raise UnknownLicense(
            f"unknown license id {license_id!r}",
            hint="known ids: " + ", ".join(sorted(licenses)),
        ) from None


def license_ids(expression: str) -> list[str]:
    """The ids an SPDX-style expression names, lower-cased: `apache-2.0 and
    gpt-oss-usage-policy` -> [`apache-2.0`, `gpt-oss-usage-policy`]. A catalog check should test
    each of them against the base, not the whole expression."""
    from license_expression import ExpressionError, Licensing

    licensing = Licensing()
    try:
        parsed = licensing.parse(expression)
    except ExpressionError:
        return [expression.strip().lower()]
    if parsed is None:
        return []
    return [str(symbol.key).lower() for symbol in licensing.license_symbols(parsed, unique=True)]


def commercial_use(license_id: str) -> CommercialUse:
    """What a license tag (or an expression of several) says about commercial use; `unknown`
    for ids not in the base. Under `a and b` both apply, so the stricter one decides; under
    `a or b` the user may pick, so the more permissive one does."""
    licenses = load_licenses()
    order = ["forbidden", "unknown", "conditional", "allowed"]
    found: list[str] = []
    for part in license_ids(license_id):
        lic = licenses.get(part)
        found.append(lic.commercial_use if lic else "unknown")
    if not found:
        return "unknown"
    ranked = sorted(found, key=lambda v: order.index(v) if v in order else 1)
    pick = ranked[-1] if " or " in license_id.lower() else ranked[0]
    return pick  # type: ignore[return-value]


def commercially_usable() -> set[str]:
    """License ids whose tag allows commercial use, outright or with conditions."""
    return {
        i for i, lic in load_licenses().items() if lic.commercial_use in ("allowed", "conditional")
    }
