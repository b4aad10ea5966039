"""The license gate: may this base model be fine-tuned for this use, and what does it owe?

Fine-tuning makes a derivative. The gate judges the base model with the licensing stage's own
verdicts (`license_report`) under the study's use profile, and also as if the fine-tune were
distributed, so the user learns before training what sharing the result would add. It stops when
a license blocks the use (a non-commercial license under a commercial profile, a no-derivatives
license when the derivative is shared), when nobody can tell (unknown code or weights license),
or when the planned name breaks a naming duty (Llama 3's "Llama" prefix); it warns on duties.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from llmselect.catalog import Catalog, ModelCard
from llmselect.errors import LLMSelectError
from llmselect.licensing.knowledge import load_licenses
from llmselect.licensing.profile import UseProfile
from llmselect.licensing.verdicts import Reason, Verdict, license_report

Decision = Literal["pass", "warn", "stop"]
When = Literal["always", "when distributed"]

_NAME_PREFIX = re.compile(r'include\s+"([^"]+)"\s+at the beginning', re.IGNORECASE)
"""How the Llama licenses' naming clause states the required prefix."""


class Obligation(BaseModel):
    """A duty the fine-tune inherits from its base model, for its model card."""

    duty: str
    detail: str | None
    license: str | None
    clause: str | None
    origin: str
    when: When


class GateResult(BaseModel):
    model: str
    decision: Decision
    forced: bool = False
    """The user passed --force over a stop; the model card records it."""
    verdict: Verdict
    """The licensing stage's overall verdict for the base model under the profile."""
    stops: list[Reason] = Field(default_factory=list)
    obligations: list[Obligation] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    profile: UseProfile

    @property
    def proceeds(self) -> bool:
        return self.decision != "stop" or self.forced


class LicenseGateStop(LLMSelectError):
    """The base model's license does not allow this fine-tune (exit code 3, as `license check`)."""

    exit_code = 3


def license_gate(
    card: ModelCard,
    catalog: Catalog,
    profile: UseProfile,
    *,
    derivative_name: str,
    accept_unknown_data: bool = True,
    force: bool = False,
) -> GateResult:
    """Judge `card` as the base of a fine-tune named `derivative_name` under `profile`."""
    report = license_report(card, catalog, profile)
    stops: list[Reason] = []
    notes: list[str] = []
    for component, verdict in report.components.items():
        for reason in verdict.reasons:
            if reason.verdict == "blocked":
                stops.append(reason)
            elif reason.verdict == "unknown":
                if component == "data" and accept_unknown_data:
                    notes.append(f"{reason.origin}: {reason.message}")
                else:
                    stops.append(reason)
    obligations = _duties(report.components["weights"].reasons, "always")
    obligations += _duties(
        report.components["code"].reasons + report.components["data"].reasons, "always"
    )
    if profile.distribute_derivative:
        stops += _naming_breaches(report.components["weights"].reasons, derivative_name)
    else:
        # The profile keeps the fine-tune in house; say what sharing it would change.
        shared = license_report(
            card, catalog, profile.model_copy(update={"distribute_derivative": True})
        )
        seen = {_key(r) for c in report.components.values() for r in c.reasons}
        for judged in shared.components.values():
            for reason in judged.reasons:
                if _key(reason) in seen:
                    continue
                if reason.verdict == "blocked":
                    notes.append(
                        f"distributing this fine-tune would be blocked: {reason.message} "
                        f"({reason.license}, from {reason.origin})"
                    )
                elif reason.verdict == "conditional":
                    obligations += _duties([reason], "when distributed")
    obligations = list({_duty_key(o): o for o in obligations}.values())
    # Duties owed only if the fine-tune is shared are told, but do not make a warning.
    owed_now = any(o.when == "always" for o in obligations)
    decision: Decision = "stop" if stops else ("warn" if owed_now or notes else "pass")
    return GateResult(
        model=card.id,
        decision=decision,
        forced=force and decision == "stop",
        verdict=report.overall,
        stops=stops,
        obligations=obligations,
        notes=notes,
        profile=profile,
    )


def stop_error(gate: GateResult) -> LicenseGateStop:
    first = gate.stops[0]
    more = f" (and {len(gate.stops) - 1} more)" if len(gate.stops) > 1 else ""
    return LicenseGateStop(
        f"the license gate stops fine-tuning {gate.model}: {first.message} "
        f"({first.license or 'license'}, from {first.origin}){more}",
        field="license",
        hint="change the use profile if it is wrong, or pass --force to train anyway "
        "(the model card records the override)",
    )


def _key(reason: Reason) -> tuple[str, str, str | None, str | None, str]:
    return (reason.verdict, reason.message, reason.license, reason.clause, reason.origin)


def _duty_key(duty: Obligation) -> tuple[str, str | None, str | None, str]:
    return (duty.duty, duty.license, duty.clause, duty.origin)


def _duties(reasons: list[Reason], when: When) -> list[Obligation]:
    return [
        Obligation(
            duty=r.message,
            detail=r.detail,
            license=r.license,
            clause=r.clause,
            origin=r.origin,
            when=when,
        )
        for r in reasons
        if r.verdict == "conditional"
    ]


def _naming_breaches(reasons: list[Reason], name: str) -> list[Reason]:
    """Naming duties whose required prefix the derivative's planned name does not start with."""
    licenses = load_licenses()
    breaches = []
    for reason in reasons:
        lic = licenses.get((reason.license or "").lower())
        if reason.verdict != "conditional" or lic is None:
            continue
        for term in lic.terms:
            match = _NAME_PREFIX.search(term.clause)
            if term.kind != "naming" or term.clause != reason.clause or not match:
                continue
            prefix = match.group(1)
            if not _normal(name).startswith(_normal(prefix)):
                breaches.append(
                    reason.model_copy(
                        update={
                            "verdict": "blocked",
                            "message": f"a distributed fine-tune's name must begin with "
                            f"{prefix!r}, and {name!r} does not (choose it with --out)",
                        }
                    )
                )
    return breaches


def _normal(name: str) -> str:
    """`Llama-3_support` and `llama 3 support` compare equal."""
    return re.sub(r"[\s_\-]+", " ", name).strip().lower()
