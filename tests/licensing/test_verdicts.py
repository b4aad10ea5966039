"""The verdict engine's internals: license expressions, ordering, terms without a trigger."""

from __future__ import annotations

from llmselect.licensing import license_ids
from llmselect.licensing.profile import UseProfile
from llmselect.licensing.verdicts import judge_license, worst


def verdict(expression: str, **profile: object) -> str:
    reasons = judge_license(expression, UseProfile.model_validate(profile), "test/model")
    return worst([r.verdict for r in reasons])


def test_order_of_verdicts() -> None:
    assert worst(["allowed", "conditional"]) == "conditional"
    assert worst(["conditional", "unknown"]) == "unknown"
    assert worst(["unknown", "blocked", "allowed"]) == "blocked"
    assert worst([]) == "allowed"


def test_or_takes_the_most_permissive_and_and_takes_all() -> None:
    assert verdict("cc-by-nc-4.0") == "blocked"
    assert verdict("cc-by-nc-4.0 OR mit") == "allowed"
    assert verdict("mit AND cc-by-nc-4.0") == "blocked"
    assert verdict("MIT") == "allowed"  # ids are matched without regard to case


def test_unknown_and_other_licenses_are_unknown_not_allowed() -> None:
    assert verdict("other") == "unknown"
    assert verdict("unknown") == "unknown"
    assert verdict("some-custom-license") == "unknown"


def test_duties_follow_the_declared_uses() -> None:
    assert verdict("apache-2.0") == "allowed"
    assert verdict("apache-2.0", redistribute_weights=True) == "conditional"
    assert verdict("cc-by-sa-4.0", distribute_derivative=True) == "conditional"
    assert verdict("cc-by-nc-nd-4.0", commercial=False) == "allowed"
    assert verdict("cc-by-nc-nd-4.0", commercial=False, distribute_derivative=True) == "blocked"


def test_ceilings_without_numbers_stay_conditional() -> None:
    assert verdict("stabilityai-community") == "conditional"
    assert verdict("stabilityai-community", annual_revenue_usd=5_000_000) == "blocked"
    assert verdict("qwen", monthly_active_users=200_000_000) == "blocked"


def test_ids_named_by_an_expression() -> None:
    assert license_ids("apache-2.0 and gpt-oss-usage-policy") == [
        "apache-2.0",
        "gpt-oss-usage-policy",
    ]
    assert license_ids("Apache-2.0 OR MIT") == ["apache-2.0", "mit"]
    assert license_ids("llama3.1") == ["llama3.1"]


def test_duties_above_a_threshold_and_terms_that_never_trigger() -> None:
    # Kimi K2's display duty is owed above 100M users or 20M USD a month (240M a year).
    assert verdict("modified-mit", monthly_active_users=10, annual_revenue_usd=10) == "allowed"
    assert verdict("modified-mit", monthly_active_users=200_000_000) == "conditional"
    # A license whose only untriggered terms are itemized is allowed, not "not itemized".
    assert verdict("mit") == "allowed"
    # Non-production: blocked commercially, a duty (not allowed) even when non-commercial.
    assert verdict("mnpl") == "blocked"
    assert verdict("mnpl", commercial=False) == "conditional"
    assert verdict("mrl", commercial=False) == "allowed"
