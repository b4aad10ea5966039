"""`llmselect license ...`: each case of the licensing issue, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()


def check(model: str, *flags: str, exit_code: int | None = None) -> dict[str, Any]:
    result = runner.invoke(app, ["license", "check", model, *flags, "--json"])
    if exit_code is not None:
        assert result.exit_code == exit_code, result.output
    report = json.loads(result.stdout)
    blocked = report.get("overall") == "blocked"
    assert result.exit_code == (3 if blocked else 0), result.output
    return report


def reasons(report: dict[str, Any], component: str, verdict: str) -> list[dict[str, Any]]:
    return [r for r in report["components"][component]["reasons"] if r["verdict"] == verdict]


def test_contract_shape() -> None:
    report = check("meta-llama/Llama-2-7b-chat-hf", "--users", "1M")
    assert set(report) >= {"model", "overall", "components", "lineage", "flags"}
    assert set(report["components"]) == {"code", "weights", "data"}
    for component in report["components"].values():
        assert component["verdict"] in {"allowed", "conditional", "blocked", "unknown"}
        for reason in component["reasons"]:
            assert {"verdict", "license", "clause", "origin", "message"} <= set(reason)
    assert [s["id"] for s in report["lineage"]] == [
        "meta-llama/Llama-2-7b-chat-hf",
        "meta-llama/Llama-2-7b-hf",
    ]


def test_llama2_is_conditional_below_700m_users_and_blocked_above() -> None:
    small = check("meta-llama/Llama-2-7b-chat-hf", "--users", "1M")
    assert small["components"]["weights"]["verdict"] == "conditional"
    assert not reasons(small, "weights", "blocked")
    big = check("meta-llama/Llama-2-7b-chat-hf", "--users", "1B")
    assert big["overall"] == "blocked"
    (ceiling,) = {r["clause"] for r in reasons(big, "weights", "blocked")}
    assert "700" in ceiling
    # The ceiling is owed to the base model too, not only the chat model's own tag.
    assert {r["origin"] for r in reasons(big, "weights", "blocked")} == {
        "meta-llama/Llama-2-7b-chat-hf",
        "meta-llama/Llama-2-7b-hf",
    }


def test_llama2_outputs_may_not_improve_other_llms() -> None:
    plain = check("meta-llama/Llama-2-13b-hf")
    assert any("1.b.v" in (r["clause"] or "") for r in reasons(plain, "weights", "conditional"))
    training = check("meta-llama/Llama-2-13b-hf", "--train-on-outputs")
    assert training["overall"] == "blocked"
    assert any("1.b.v" in (r["clause"] or "") for r in reasons(training, "weights", "blocked"))


@pytest.mark.parametrize(
    "model",
    [
        "huggyllama/llama-7b",
        "tatsu-lab/alpaca-7b-wdiff",
        "lmsys/vicuna-13b-v1.3",
        "TheBloke/koala-13B-HF",
    ],
)
def test_llama1_and_its_derivatives_are_non_commercial(model: str) -> None:
    report = check(model)
    assert report["components"]["weights"]["verdict"] == "blocked"
    assert "huggyllama/" in " ".join(r["origin"] for r in reasons(report, "weights", "blocked"))
    research = check(model, "--non-commercial")
    assert research["components"]["weights"]["verdict"] != "blocked"


def test_mpt_chat_is_non_commercial_while_its_base_is_not() -> None:
    chat = check("mosaicml/mpt-7b-chat")
    blocked = reasons(chat, "weights", "blocked")
    assert blocked and {r["license"] for r in blocked} == {"cc-by-nc-sa-4.0"}
    base = check("mosaicml/mpt-7b")
    assert base["components"]["weights"]["verdict"] == "allowed"


def test_data_licenses_carry_over() -> None:
    # Alpaca's 52K instructions are CC BY-NC 4.0 and were generated with OpenAI's models.
    alpaca = check("tatsu-lab/alpaca-7b-wdiff")
    data_blocked = reasons(alpaca, "data", "blocked")
    assert any(r["license"] == "cc-by-nc-4.0" for r in data_blocked)
    vicuna = check("lmsys/vicuna-7b-v1.5", "--users", "1M")
    vendor = [r for r in vicuna["components"]["data"]["reasons"] if r["license"] == "openai-terms"]
    assert vendor and all(r["verdict"] == "conditional" for r in vendor)
    # Llama 2's pretraining data is not disclosed: not allowed outright, a duty to review it
    # (conditional), flagged; it binds no term of the use, so the verdict is not `unknown`.
    undisclosed = [r for r in reasons(vicuna, "data", "conditional") if r["review"]]
    assert any("not disclosed" in r["message"] for r in undisclosed)
    assert not reasons(vicuna, "data", "unknown")
    assert vicuna["overall"] == "conditional"
    assert any(f["kind"] == "data-undisclosed" for f in vicuna["flags"])


def test_phi_1_5_is_mit_now_and_says_it_was_not() -> None:
    report = check("microsoft/phi-1_5")
    assert report["components"]["weights"]["verdict"] == "allowed"
    changed = [f for f in report["flags"] if f["kind"] == "license-changed"]
    assert changed and "microsoft-research-license" in changed[0]["message"]


def test_field_of_use_against_acceptable_use_policy() -> None:
    report = check("meta-llama/Llama-2-7b-hf", "--field", "military")
    assert report["overall"] == "blocked"
    assert any("military" in r["message"] for r in reasons(report, "weights", "blocked"))
    result = runner.invoke(app, ["license", "check", "meta-llama/Llama-2-7b-hf", "--field", "x"])
    assert result.exit_code == 2


def test_falcon_180b_hosting_needs_another_license() -> None:
    own = check("tiiuae/falcon-180B")
    assert own["components"]["weights"]["verdict"] != "blocked"
    hosted = check("tiiuae/falcon-180B", "--hosted")
    assert any(r["license"] == "falcon-180b-tii" for r in reasons(hosted, "weights", "blocked"))


def write_card(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)


def test_imported_finetune_whose_tag_disagrees_with_its_base(tmp_path: Path) -> None:
    folder = tmp_path / "tune"
    folder.mkdir()
    config = {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 100,
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "README.md").write_text(
        "---\nlicense: Apache-2.0 OR MIT\nbase_model: meta-llama/Llama-2-7b-hf\n---\n"
    )
    imported = runner.invoke(app, ["catalog", "import", str(folder), "--id", "acme/llama-tune"])
    assert imported.exit_code == 0, imported.output
    report = check("acme/llama-tune", "--users", "1B")
    assert report["overall"] == "blocked"
    assert {r["origin"] for r in reasons(report, "weights", "blocked")} == {
        "meta-llama/Llama-2-7b-hf"
    }
    (flag,) = [f for f in report["flags"] if f["kind"] == "tag-disagrees"]
    assert "apache-2.0 or mit" in flag["message"] and "llama2" in flag["message"]


def test_cycles_and_missing_ancestors_are_reported(isolated_home: Path) -> None:
    write_card(
        isolated_home / "catalog",
        "loop",
        "family: loop\nmodels:\n"
        "  - {id: acme/a, params: 10, base_model: acme/b, base_model_relation: finetune,"
        " licenses: {code: mit, weights: mit}}\n"
        "  - {id: acme/b, params: 10, base_model: acme/a, base_model_relation: merge,"
        " licenses: {code: mit, weights: mit}}\n"
        "  - {id: acme/orphan, params: 10, base_model: gone/base, base_model_relation: finetune,"
        " licenses: {code: mit, weights: mit}}\n",
    )
    looped = check("acme/a")
    assert [f["kind"] for f in looped["flags"]].count("cycle") == 1
    orphan = check("acme/orphan")
    assert any(f["kind"] == "missing-ancestor" for f in orphan["flags"])
    assert any(r["origin"] == "gone/base" for r in reasons(orphan, "weights", "unknown"))


def test_profile_file_and_its_errors(tmp_path: Path) -> None:
    profile = tmp_path / "profile.yaml"
    profile.write_text("commercial: true\nmonthly_active_users: 800000000\n")
    report = check("meta-llama/Llama-2-7b-hf", "--profile", str(profile))
    assert report["overall"] == "blocked"
    assert report["profile"]["monthly_active_users"] == 800_000_000
    # A flag overrides the file.
    lower = check("meta-llama/Llama-2-7b-hf", "--profile", str(profile), "--users", "5M")
    assert not reasons(lower, "weights", "blocked")

    profile.write_text("commercial: true\nmonthly_users: 5\n")
    result = runner.invoke(
        app, ["license", "check", "meta-llama/Llama-2-7b-hf", "--profile", str(profile)]
    )
    assert result.exit_code == 1
    assert f"{profile}:2: monthly_users" in result.stderr


def test_explain_lists_terms_with_clauses() -> None:
    result = runner.invoke(app, ["license", "explain", "llama2", "--json"])
    assert result.exit_code == 0
    lic = json.loads(result.stdout)
    kinds = {t["kind"] for t in lic["terms"]}
    assert {"user_ceiling", "acceptable_use", "output_training"} <= kinds
    assert all(t["clause"] for t in lic["terms"])
    table = runner.invoke(app, ["license", "explain", "llama2"], env={"COLUMNS": "200"})
    assert "700,000,000" in table.output
    assert runner.invoke(app, ["license", "explain", "no-such-license"]).exit_code == 2


def test_every_license_cites_its_source_and_clauses() -> None:
    result = runner.invoke(app, ["license", "list", "--json"])
    licenses = json.loads(result.stdout)
    assert len(licenses) >= 30
    for lic in licenses:
        assert lic["source"], lic["id"]
        for term in lic["terms"]:
            assert term["clause"] and term["summary"], lic["id"]


def test_openness_classes() -> None:
    pythia = check("EleutherAI/pythia-6.9b")["openness"]
    assert pythia["mof_class"] == "III"
    llama = check("meta-llama/Llama-2-7b-hf")["openness"]
    assert llama["mof_class"] is None and llama["osaid"] == "does-not-meet"
    olmo = check("allenai/OLMo-7B-hf")["openness"]
    assert olmo["mof_class"] == "III" and olmo["osaid"] == "meets"


def test_bom_is_valid_cyclonedx_with_ancestors_and_datasets(tmp_path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    out = tmp_path / "bom.json"
    result = runner.invoke(app, ["license", "bom", "lmsys/vicuna-7b-v1.5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    assert bom["metadata"]["component"]["name"] == "lmsys/vicuna-7b-v1.5"
    names = {c["name"]: c for c in bom["components"]}
    assert names["meta-llama/Llama-2-7b-hf"]["type"] == "machine-learning-model"
    assert any(c["type"] == "data" for c in bom["components"])
    llama_license = names["meta-llama/Llama-2-7b-hf"]["licenses"][0]["license"]
    assert "Llama 2" in llama_license["name"]
