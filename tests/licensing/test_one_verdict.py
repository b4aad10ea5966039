"""One verdict everywhere: `license check` and `select` agree; profiles and ids as users write
them (a single field of use, a Hub alias of a catalog id)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from license_cards import WriteCards, card, check, reasons, runner

from llmselect.cli import app

USE = {"commercial": True, "monthly_active_users": 1_000_000, "field_of_use": "medical"}
"""A product with a million users in medicine; `field_of_use` as one value, not a list."""
USE_FLAGS = ("--users", "1M", "--field", "medical")

SFT_UNKNOWN = {
    "disclosure": "full",
    "datasets": [{"name": "scraped chats", "stage": "finetuning"}],  # license not recorded
}
PRETRAIN_UNKNOWN = {
    "disclosure": "full",
    "datasets": [{"name": "a web crawl", "stage": "pretraining"}],
}
OPEN_DATA = {
    "disclosure": "full",
    "datasets": [{"name": "an open corpus", "license": "odc-by", "stage": "pretraining"}],
}

EXPECTED = {
    "test/open-data": "allowed",
    "test/open-undisclosed": "conditional",
    "test/pretrain-unknown": "conditional",
    "test/sft-unknown": "unknown",
    "test/custom-weights": "unknown",
    "test/non-commercial": "blocked",
    "test/llama-tune": "conditional",
}


def pool(write_cards: WriteCards) -> None:
    write_cards(
        "verdicts",
        card("test/open-data", "apache-2.0", data=OPEN_DATA),
        card("test/open-undisclosed", "apache-2.0"),
        card("test/pretrain-unknown", "apache-2.0", data=PRETRAIN_UNKNOWN),
        card("test/sft-unknown", "apache-2.0", data=SFT_UNKNOWN),
        card("test/custom-weights", "other", data=OPEN_DATA),
        card("test/non-commercial", "cc-by-nc-4.0", data=OPEN_DATA),
        card("test/llama-base", "llama3.1"),
        card(
            "test/llama-tune",
            "llama3.1",
            base_model="test/llama-base",
            base_model_relation="finetune",
            data=OPEN_DATA,
        ),
    )


def select(folder: Path, ids: list[str], **policy: Any) -> dict[str, dict[str, Any]]:
    study = {
        "name": "one-verdict",
        "hardware": "H100-80GB",
        "targets": {"context": 2048, "concurrent_users": 1},
        "license": {"use": USE, **policy},
        "candidates": {"ids": ids},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    result = runner.invoke(app, ["select", str(path), "--json", "--no-report", "--no-measure"])
    assert result.exit_code in (0, 5), result.output
    selection = json.loads(result.stdout)
    return {e["id"]: e for e in selection["entries"]}


def test_license_check_and_select_give_the_same_overall_verdict(
    write_cards: WriteCards, tmp_path: Path
) -> None:
    pool(write_cards)
    entries = select(tmp_path, list(EXPECTED))
    for model, expected in EXPECTED.items():
        report = check(model, *USE_FLAGS)
        entry = entries[model]
        assert (model, report["overall"]) == (model, expected)
        assert (model, entry["verdict"]) == (model, expected)
        assert entry["license"]["overall"] == expected
        assert report["profile"]["field_of_use"] == entry["license"]["profile"]["field_of_use"]


def test_undisclosed_data_is_a_duty_to_review_and_a_flag_not_unknown(
    write_cards: WriteCards, tmp_path: Path
) -> None:
    pool(write_cards)
    report = check("test/open-undisclosed", *USE_FLAGS)
    (review,) = reasons(report, "data")
    assert review["verdict"] == "conditional" and review["review"] is True
    assert "not disclosed" in review["message"]
    (flag,) = [f for f in report["flags"] if f["kind"] == "data-undisclosed"]
    assert "test/open-undisclosed (undisclosed)" in flag["message"]
    assert report["openness"]["osaid"] == "does-not-meet"
    # Pretraining data whose license is unknown: the same duty; fine-tuning data: unknown.
    assert reasons(check("test/pretrain-unknown"), "data")[0]["review"] is True
    (binding,) = reasons(check("test/sft-unknown"), "data")
    assert binding["verdict"] == "unknown" and binding["review"] is False

    entries = select(tmp_path, ["test/open-undisclosed", "test/sft-unknown"])
    kept = entries["test/open-undisclosed"]
    assert kept["exclusions"] == [] and any("not disclosed" in d for d in kept["duties"])
    # The study accepts unknown training data by default: kept, still called unknown.
    assert not [x for x in entries["test/sft-unknown"]["exclusions"] if x["stage"] == "license"]


def test_a_study_that_refuses_unknown_data_excludes_without_changing_the_verdict(
    write_cards: WriteCards, tmp_path: Path
) -> None:
    pool(write_cards)
    entries = select(
        tmp_path, ["test/open-undisclosed", "test/open-data"], accept_unknown_data=False
    )
    refused = entries["test/open-undisclosed"]
    assert refused["verdict"] == check("test/open-undisclosed", *USE_FLAGS)["overall"]
    assert [x["key"] for x in refused["exclusions"]] == ["license.review"]
    assert entries["test/open-data"]["exclusions"] == []


def test_a_single_field_of_use_is_a_list_of_one(write_cards: WriteCards, tmp_path: Path) -> None:
    pool(write_cards)
    profile = tmp_path / "profile.yaml"
    profile.write_text("commercial: true\nfield_of_use: military\njurisdictions: EU\n")
    report = check("test/llama-tune", "--profile", str(profile))
    assert report["profile"]["field_of_use"] == ["military"]
    assert report["profile"]["jurisdictions"] == ["EU"]
    assert report["overall"] == "blocked"
    profile.write_text("field_of_use: astrology\n")  # still checked against the vocabulary
    result = runner.invoke(app, ["license", "check", "test/llama-tune", "--profile", str(profile)])
    assert result.exit_code == 1 and "astrology" in result.output


# -- Hub aliases ----------------------------------------------------------------------------


def test_a_repo_and_its_hf_conversion_are_one_entry(write_cards: WriteCards) -> None:
    write_cards(
        "aliases",
        card("test/Foo-7b-hf", "apache-2.0"),
        card(
            "test/foo-tune", "apache-2.0", base_model="test/Foo-7b", base_model_relation="finetune"
        ),
    )
    report = check("test/Foo-7b")
    assert report["model"] == "test/Foo-7b-hf"
    (note,) = [f for f in report["flags"] if f["kind"] == "alias"]
    assert "test/Foo-7b" in note["message"] and "-hf" in note["message"]
    # A base_model written as the original repo reaches the converted card.
    tune = check("test/foo-tune")
    assert [s["id"] for s in tune["lineage"]] == ["test/foo-tune", "test/Foo-7b-hf"]
    assert all(s["in_catalog"] for s in tune["lineage"])
    assert not [f for f in tune["flags"] if f["kind"] == "missing-ancestor"]
    assert [f["kind"] for f in tune["flags"]].count("alias") == 1
    # The built-in catalog's Llama 2 too: the Hub repo and its -hf conversion.
    assert check("meta-llama/Llama-2-7b")["model"] == "meta-llama/Llama-2-7b-hf"


def test_aliases_listed_on_a_card_resolve_and_a_shared_alias_does_not(
    write_cards: WriteCards, tmp_path: Path
) -> None:
    write_cards(
        "renamed",
        card("test/Bar-3.1-8B", "llama3.1", aliases=["test/Meta-Bar-3.1-8B", "test/Shared"]),
        card("test/Baz", "apache-2.0", aliases=["test/Shared"]),
    )
    report = check("test/Meta-Bar-3.1-8B")
    assert report["model"] == "test/Bar-3.1-8B"
    assert any(f["kind"] == "alias" for f in report["flags"])
    shown = runner.invoke(app, ["catalog", "show", "test/meta-bar-3.1-8b", "--json"])
    assert json.loads(shown.stdout)["id"] == "test/Bar-3.1-8B"
    ambiguous = runner.invoke(app, ["license", "check", "test/Shared", "--json"])
    assert ambiguous.exit_code == 2
    entries = select(tmp_path, ["test/Meta-Bar-3.1-8B"])
    (entry,) = entries.values()
    assert entry["id"] == "test/Bar-3.1-8B"
    assert any(f["kind"] == "alias" for f in entry["license"]["flags"])


@pytest.mark.parametrize(
    "expression", ["apache-2.0 and gpt-oss-usage-policy", "apache-2.0 AND gpt-oss-usage-policy"]
)
def test_an_and_expression_owes_both_licenses(expression: str) -> None:
    from llmselect.licensing.profile import UseProfile
    from llmselect.licensing.verdicts import judge_license

    found = judge_license(expression, UseProfile(redistribute_weights=True), "test/model")
    assert {r.license for r in found} == {"apache-2.0", "gpt-oss-usage-policy"}
    assert {r.verdict for r in found} == {"conditional"}
