"""Verdicts: what the licenses of a model's code, weights and training data let a profile do.

The walk goes up the lineage: weights owe every ancestor's weight-license terms (a fine-tune's
own tag cannot remove them), and the training data of every step counts.

One rule decides the overall verdict (`overall_verdict`), and every caller gets it from here:
`license check`, `select` and the fine-tune gate all read `LicenseReport.overall`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Literal

from license_expression import AND, OR, ExpressionError, LicenseSymbol, Licensing
from pydantic import BaseModel, Field

from llmselect.catalog import Catalog, ModelCard
from llmselect.licensing.knowledge import License, Term, load_licenses
from llmselect.licensing.openness import Openness, openness
from llmselect.licensing.profile import UseProfile

Verdict = Literal["allowed", "conditional", "blocked", "unknown"]
Component = Literal["code", "weights", "data"]
_RANK: dict[Verdict, int] = {"allowed": 0, "conditional": 1, "unknown": 2, "blocked": 3}
_LICENSING = Licensing()
_IMPLIED_WHEN: dict[str, list[str]] = {
    "output_training": ["train_other_models_on_outputs"],
    "hosting": ["hosted_service"],
    "no_derivatives": ["distribute_derivative"],
}
"""The use a restriction is about, when its term does not name one."""


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """`blocked` beats `unknown` beats `conditional` beats `allowed`."""
    return max(verdicts, key=_RANK.__getitem__, default="allowed")


class Reason(BaseModel):
    verdict: Verdict
    message: str
    """What applies, in one short line."""
    detail: str | None = None
    """The term's plain-words summary, when there is one."""
    license: str | None = None
    clause: str | None = None
    origin: str
    """The model (or `model: dataset`) the obligation comes from."""
    review: bool = False
    """A duty to review terms nobody can read that do not bind the use by themselves: training
    data not (fully) disclosed, pretraining data whose license is not known. Never more than
    `conditional` (see `overall_verdict`)."""


def overall_verdict(reasons: Iterable[Reason]) -> Verdict:
    """The one rule for a verdict, over all the reasons of a model (or of one component):

    - `blocked` when a term forbids the use;
    - `unknown` only when a term that binds the use is unknown: the code or weights license of
      the model or of an ancestor (including an ancestor missing from the catalog), or the
      license of a fine-tuning or alignment dataset, whose terms can reach the model's outputs
      and derivatives (another vendor's outputs, a non-commercial instruction set);
    - `conditional` when duties apply. Training data that is not disclosed, or pretraining data
      whose license is not known, is such a duty (review what is known of it) and never makes
      the verdict `unknown` by itself: almost no model discloses its pretraining data, and the
      question is whether the use is allowed;
    - `allowed` otherwise.
    """
    return worst(
        "conditional" if r.review and r.verdict != "blocked" else r.verdict for r in reasons
    )


class ComponentVerdict(BaseModel):
    verdict: Verdict
    reasons: list[Reason]


class LineageStep(BaseModel):
    id: str
    relation: str | None
    """How this step derives from the next one up (None at the root)."""
    weights_license: str | None
    in_catalog: bool


class Flag(BaseModel):
    kind: Literal[
        "tag-disagrees",
        "missing-ancestor",
        "cycle",
        "license-changed",
        "adapter",
        "alias",
        "data-undisclosed",
    ]
    message: str


class LicenseReport(BaseModel):
    model: str
    overall: Verdict
    components: dict[Component, ComponentVerdict]
    lineage: list[LineageStep]
    flags: list[Flag] = Field(default_factory=list)
    profile: UseProfile


class LicenseCheck(LicenseReport):
    """`license check`: the verdicts, and how open the model is."""

    openness: Openness


def check_license(card: ModelCard, catalog: Catalog, profile: UseProfile) -> LicenseCheck:
    report = license_report(card, catalog, profile)
    return LicenseCheck(**dict(report), openness=openness(card, catalog))


def judge_license(
    expression: str, profile: UseProfile, origin: str, *, multimodal: bool = False
) -> list[Reason]:
    """Reasons one license (or an SPDX-style `a OR b` / `a AND b` expression) gives;
    `multimodal`: the model reads more than text (some terms apply only then)."""
    operator, args = _parse(expression)
    if operator == "or":
        # The user may pick any alternative: the most permissive one decides.
        options = [judge_license(a, profile, origin, multimodal=multimodal) for a in args]
        return min(options, key=lambda reasons: _RANK[worst([r.verdict for r in reasons])])
    if operator == "and":
        return [
            r for arg in args for r in judge_license(arg, profile, origin, multimodal=multimodal)
        ]
    (key,) = args
    lic = load_licenses().get(key.lower())
    if lic is None or key.lower() in ("other", "unknown"):
        what = "has no license information" if key.lower() == "unknown" else "is not in the base"
        return [
            Reason(
                verdict="unknown",
                message=f"license {key!r} {what}: a person must read its terms",
                license=key,
                origin=origin,
            )
        ]
    return _judge_terms(lic, profile, origin, multimodal)


@cache  # the text alone decides the parse: the catalog's few dozen expressions, judged ~1,600 times
def _parse(expression: str) -> tuple[Literal["or", "and", "license"], tuple[str, ...]]:
    """`a OR b` -> ("or", its alternatives), `a AND b` -> ("and", its parts), else ("license",
    the license id); text that does not parse is taken as one id."""
    try:
        parsed = _LICENSING.parse(expression)
    except ExpressionError:
        parsed = None
    if isinstance(parsed, OR | AND):
        return "or" if isinstance(parsed, OR) else "and", tuple(str(a) for a in parsed.args)
    return "license", (parsed.key if isinstance(parsed, LicenseSymbol) else expression,)


def _whole_license(lic: License, verdict: Verdict, message: str, origin: str) -> Reason:
    """A reason that comes from the license as a whole, not from one of its terms."""
    return Reason(
        verdict=verdict, message=message, detail=lic.summary, license=lic.id, origin=origin
    )


def _judge_terms(
    lic: License, profile: UseProfile, origin: str, multimodal: bool = False
) -> list[Reason]:
    reasons = [
        r for term in lic.terms if (r := _judge_term(lic, term, profile, origin, multimodal))
    ]
    blocked = any(r.verdict == "blocked" for r in reasons)
    if profile.commercial and lic.commercial_use == "forbidden" and not blocked:
        # A license known to exclude commercial use blocks it even if no term says how.
        reasons.append(
            _whole_license(lic, "blocked", "the license does not grant commercial use", origin)
        )
    if not reasons and not lic.terms and lic.commercial_use == "conditional":
        # Terms not itemized yet: the summary is the duty.
        reasons.append(
            _whole_license(lic, "conditional", "duties apply (terms not itemized)", origin)
        )
    if not reasons:
        reasons.append(
            Reason(
                verdict="allowed",
                message=f"{lic.name}: no term restricts this use",
                license=lic.id,
                origin=origin,
            )
        )
    return reasons


_DUTY = {
    "attribution": "attribution and notice duty",
    "guardrail": "keep the model's safety guardrails (or equivalent ones): removing them ends "
    "the license",
    "naming": "naming duty for derived models",
    "share_alike": "share-alike duty: pass the same terms on",
    "copyleft": "copyleft: distribute the source under the same license",
    "vendor_outputs": "trained on another vendor's model outputs, under that vendor's terms",
    "output_training": "outputs may not be used to train or improve other models",
    "hosting": "offering it as a hosted service needs a separate license",
    "no_derivatives": "adapted versions may not be shared",
}


def _judge_term(
    lic: License, term: Term, profile: UseProfile, origin: str, multimodal: bool = False
) -> Reason | None:
    when = term.when or _IMPLIED_WHEN.get(term.kind, [])
    triggered = not when or any(getattr(profile, action) for action in when)

    def reason(verdict: Verdict, message: str) -> Reason:
        return Reason(
            verdict=verdict,
            message=message,
            detail=term.summary,
            license=lic.id,
            clause=term.clause,
            origin=origin,
        )

    kind = term.kind
    if kind in ("non_commercial", "research_only"):
        if profile.commercial:
            return reason("blocked", "commercial use is not granted")
        return reason("allowed", "non-commercial use is granted")
    if kind == "non_production":
        if profile.commercial:
            return reason("blocked", "commercial and production use are not granted")
        return reason(
            "conditional", "only testing, research, personal or evaluation use outside production"
        )
    if kind == "termination":
        return None  # no declared use triggers it; `license explain` shows it
    if kind == "regional_exclusion":
        return _regional(term, profile, multimodal, reason)
    if kind == "guardrail":
        return reason("conditional", _DUTY[kind])
    if kind in ("user_ceiling", "revenue_ceiling"):
        users = kind == "user_ceiling"
        value = profile.monthly_active_users if users else profile.annual_revenue_usd
        unit = "monthly active users" if users else "USD of annual revenue"
        limit = f"{term.limit:,}" if term.limit is not None else "a ceiling"
        if value is None:
            return reason("conditional", f"granted below {limit} {unit}; the profile gives none")
        if term.limit is not None and value > term.limit:
            return reason("blocked", f"{value:,} {unit} is above the {limit} ceiling")
        return reason("allowed", f"{value:,} {unit} is below the {limit} ceiling")
    if kind == "acceptable_use":
        banned = sorted(set(profile.field_of_use) & set(term.fields))
        if banned:
            return reason("blocked", f"the use policy forbids {', '.join(banned)}")
        where = f" ({term.policy})" if term.policy else ""
        return reason("conditional", f"comply with the use policy{where}")
    if kind == "output_training":
        # A standing restriction: a duty even when no such training is planned.
        return reason("blocked" if triggered else "conditional", _DUTY[kind])
    if kind in ("hosting", "no_derivatives"):
        return reason("blocked", _DUTY[kind]) if triggered else None
    if kind == "vendor_outputs":
        return reason("conditional", _DUTY[kind])
    # attribution, naming, share_alike, copyleft: duties owed only when their use happens.
    if not triggered:
        return None
    if term.threshold is not None and term.limit is not None:
        value = getattr(profile, term.threshold)
        unit = _UNITS[term.threshold]
        if value is None:
            return reason(
                "conditional", f"{_DUTY[kind]} above {term.limit:,} {unit}; the profile gives none"
            )
        if value <= term.limit:
            return None
        return reason("conditional", f"{_DUTY[kind]}: {value:,} {unit} is above {term.limit:,}")
    return reason("conditional", _DUTY[kind])


_UNITS = {"monthly_active_users": "monthly active users", "annual_revenue_usd": "USD a year"}

EU_MEMBERS = frozenset(
    {
        "at",
        "be",
        "bg",
        "hr",
        "cy",
        "cz",
        "dk",
        "ee",
        "fi",
        "fr",
        "de",
        "gr",
        "hu",
        "ie",
        "it",
        "lv",
        "lt",
        "lu",
        "mt",
        "nl",
        "pl",
        "pt",
        "ro",
        "sk",
        "si",
        "es",
        "se",
    }
)
"""ISO 3166 codes of the European Union's member states (2026), for `eu` in a term."""


def _regions(names: list[str]) -> set[str]:
    """Jurisdictions as lower-case codes, with `eu` standing for every member state too."""
    found = {n.strip().lower() for n in names}
    if found & EU_MEMBERS or {"eu", "european union"} & found:
        found |= {"eu"} | EU_MEMBERS
    return found


def _regional(
    term: Term, profile: UseProfile, multimodal: bool, reason: Callable[[Verdict, str], Reason]
) -> Reason | None:
    if term.multimodal_only and not multimodal:
        return None  # it names multimodal models; this one reads text only
    where = ", ".join(term.jurisdictions).upper()
    if not profile.jurisdictions:
        return reason(
            "conditional",
            f"no rights for a licensee based in {where}; the profile names no "
            "jurisdiction (set `jurisdictions`)",
        )
    if _regions(profile.jurisdictions) & _regions(term.jurisdictions):
        return reason("blocked", f"no rights are granted to a licensee based in {where}")
    return None


def _reads_more_than_text(card: ModelCard) -> bool:
    return any(m != "text" for m in card.input_modalities)


def license_report(card: ModelCard, catalog: Catalog, profile: UseProfile) -> LicenseReport:
    lineage, flags = _walk(card, catalog)
    steps = [catalog.get(s.id) for s in lineage if s.in_catalog]

    code = judge_license(card.licenses.code, profile, card.id)
    weights: list[Reason] = []
    for step in steps:
        # A term on multimodal models binds a derivative of one too (text-only or not).
        multimodal = _reads_more_than_text(step) or _reads_more_than_text(card)
        weights += judge_license(step.licenses.weights, profile, step.id, multimodal=multimodal)
    for missing in (s for s in lineage if not s.in_catalog):
        weights.append(
            Reason(
                verdict="unknown",
                message=f"ancestor {missing.id} is not in the catalog: its license is unknown "
                "(import it with `llmselect catalog import`)",
                origin=missing.id,
            )
        )
    data: list[Reason] = []
    for step in steps:
        data += _judge_data(step, profile)

    parts: dict[Component, list[Reason]] = {"code": code, "weights": weights, "data": data}
    components = {
        name: ComponentVerdict(verdict=overall_verdict(reasons), reasons=reasons)
        for name, reasons in parts.items()
    }
    note = catalog.alias_note(card.id)
    if note:
        flags.insert(0, Flag(kind="alias", message=note))
    flags += _tag_flags(card, steps, profile)
    flags += _disclosure_flags(steps)
    return LicenseReport(
        model=card.id,
        overall=overall_verdict(r for reasons in parts.values() for r in reasons),
        components=components,
        lineage=lineage,
        flags=flags,
        profile=profile,
    )


def _walk(card: ModelCard, catalog: Catalog) -> tuple[list[LineageStep], list[Flag]]:
    steps: list[LineageStep] = []
    flags: list[Flag] = []
    seen: set[str] = set()
    current: ModelCard | None = card
    model_id = card.id
    while True:
        if model_id.lower() in seen:
            flags.append(Flag(kind="cycle", message=f"lineage loops back to {model_id}"))
            break
        seen.add(model_id.lower())
        if current is None:
            steps.append(
                LineageStep(id=model_id, relation=None, weights_license=None, in_catalog=False)
            )
            flags.append(Flag(kind="missing-ancestor", message=f"{model_id} is not in the catalog"))
            break
        relation = current.base_model_relation.value if current.base_model_relation else None
        steps.append(
            LineageStep(
                id=current.id,
                relation=relation,
                weights_license=current.licenses.weights,
                in_catalog=True,
            )
        )
        for change in current.licenses.history:
            until = f"until {change.until}" if change.until else "until an unrecorded date"
            flags.append(
                Flag(
                    kind="license-changed",
                    message=f"{current.id}: {change.component} were under {change.license} "
                    f"{until}; copies obtained then may remain under it ({change.source})",
                )
            )
        if relation == "adapter":
            flags.append(
                Flag(
                    kind="adapter",
                    message=f"{current.id} is an adapter: using it means using the weights of "
                    f"{current.base_model} under their own license",
                )
            )
        if not current.base_model:
            break
        model_id = current.base_model
        current = catalog.find(model_id)
        if current is not None and current.id.lower() != model_id.lower():
            flags.append(
                Flag(
                    kind="alias",
                    message=f"base model {model_id} is {current.id} in the catalog "
                    f"({catalog.alias_reason(model_id)})",
                )
            )
            if current.id.lower() in seen:
                flags.append(Flag(kind="cycle", message=f"lineage loops back to {current.id}"))
                break
            seen.add(current.id.lower())
    return steps, flags


def _judge_data(step: ModelCard, profile: UseProfile) -> list[Reason]:
    """Training data: a dataset's terms bind the use when they can reach the model (fine-tuning
    and alignment data); undisclosed data and pretraining data of unknown terms are a duty to
    review, not an unknown verdict (see `overall_verdict`)."""
    data = step.licenses.data
    reasons: list[Reason] = []
    if data.disclosure != "full":
        what = "not disclosed" if data.disclosure == "undisclosed" else "only partly disclosed"
        reasons.append(
            Reason(
                verdict="conditional",
                message=f"training data {what}: review what is known of it "
                "(not disclosed is not the same as allowed)",
                origin=step.id,
                review=True,
            )
        )
    for dataset in data.datasets:
        origin = f"{step.id}: {dataset.name}"
        if dataset.license is None:
            found = [
                Reason(verdict="unknown", message="dataset license not recorded", origin=origin)
            ]
        else:
            found = judge_license(dataset.license, profile, origin)
        if dataset.stage == "pretraining":
            found = [_review(r) if r.verdict == "unknown" else r for r in found]
        reasons += found
    return reasons


def _review(reason: Reason) -> Reason:
    """An unknown pretraining-data license: a duty to review it, not an unknown verdict."""
    return reason.model_copy(
        update={
            "verdict": "conditional",
            "review": True,
            "message": f"{reason.message} (pretraining data: review its terms)",
        }
    )


def _disclosure_flags(steps: list[ModelCard]) -> list[Flag]:
    hidden = [
        f"{s.id} ({s.licenses.data.disclosure})"
        for s in steps
        if s.licenses.data.disclosure != "full"
    ]
    if not hidden:
        return []
    return [
        Flag(
            kind="data-undisclosed",
            message="training data not fully disclosed: " + ", ".join(hidden) + "; the model "
            "cannot be open science (MOF Class I) nor meet the OSI Open Source AI Definition, "
            "and a person should review what is known of its data",
        )
    ]


def _tag_flags(card: ModelCard, steps: list[ModelCard], profile: UseProfile) -> list[Flag]:
    """A fine-tune's own tag that reads more permissive than an ancestor's license."""
    own = worst([r.verdict for r in judge_license(card.licenses.weights, profile, card.id)])
    flags = []
    for ancestor in steps[1:]:
        if ancestor.licenses.weights == card.licenses.weights:
            continue
        theirs = judge_license(ancestor.licenses.weights, profile, ancestor.id)
        if _RANK[worst([r.verdict for r in theirs])] > _RANK[own]:
            flags.append(
                Flag(
                    kind="tag-disagrees",
                    message=f"{card.id} is tagged {card.licenses.weights}, but it derives from "
                    f"{ancestor.id} under {ancestor.licenses.weights}, whose terms still apply",
                )
            )
    return flags
