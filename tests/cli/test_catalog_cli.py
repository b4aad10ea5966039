"""`llmselect catalog ...` as a user runs it: tables, --json contract, filters, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from config_folders import config_folder
from llmselect.catalog import load_builtin
from llmselect.cli import app

runner = CliRunner()
CONTRACT_ARCH = {
    "num_hidden_layers",
    "hidden_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "context_length",
    "num_local_experts",
    "num_experts_per_tok",
}


def invoke_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["catalog", "--help"])
    assert result.exit_code == 0
    for command in ("list", "show", "search", "import", "remove"):
        assert command in result.output


def test_list_json_is_every_card_with_the_contract_fields() -> None:
    models = invoke_json("catalog", "list")
    assert len(models) == len(load_builtin())
    for model in models:
        assert isinstance(model["id"], str)
        assert isinstance(model["params"], int)
        assert set(model["architecture"]) >= CONTRACT_ARCH
        assert set(model["licenses"]) >= {"code", "weights", "data"}
        assert "base_model" in model and "base_model_relation" in model


def test_table_rows_hold_the_facts() -> None:
    args = ["catalog", "search", "--family", "llama-2", "--sort", "params"]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0
    rows = [line for line in result.output.splitlines() if "meta-llama/Llama-2" in line]
    assert len(rows) == 6
    seven, seventy = rows[0].split("│"), rows[-1].split("│")
    assert "6.74B" in seven[2] and "69B" in seventy[2]
    assert "active" not in result.output  # no mixture-of-experts model: no active column
    assert "llama2" in seventy[5] and "conditional" in seventy[6]


def test_show_json_contract() -> None:
    model = invoke_json("catalog", "show", "meta-llama/Llama-2-70b-chat-hf")
    assert model["id"] == "meta-llama/Llama-2-70b-chat-hf"
    assert model["params"] == 68_976_648_192
    assert model["active_params"] is None
    arch = model["architecture"]
    assert (arch["num_hidden_layers"], arch["num_key_value_heads"], arch["head_dim"]) == (
        80,
        8,
        128,
    )
    assert model["licenses"]["weights"] == "llama2"
    assert model["base_model"] == "meta-llama/Llama-2-70b-hf"
    assert model["base_model_relation"] == "finetune"


def test_show_table_has_breakdown_and_sources() -> None:
    result = runner.invoke(app, ["catalog", "show", "meta-llama/llama-2-7B-HF"])  # any case
    assert result.exit_code == 0
    for text in ("6,738,415,616", "from architecture", "licenses", "lineage", "sources"):
        assert text in result.output


def test_unknown_id_exits_2_and_suggests_close_ids() -> None:
    # (`meta-llama/Llama-2-7b` itself now resolves: it is the `-hf` card's Hub twin.)
    result = runner.invoke(app, ["catalog", "show", "meta-llama/Llama-2-7b-base"])
    assert result.exit_code == 2
    assert "did you mean" in result.stderr
    assert "meta-llama/Llama-2-7b-hf" in result.stderr
    result = runner.invoke(app, ["catalog", "show", "meta-llama/Llama-2-7b-base", "--json"])
    assert result.exit_code == 2
    assert "Llama-2-7b-hf" in json.loads(result.stdout)["error"]["hint"]


def ids(models: list[dict[str, Any]]) -> set[str]:
    return {m["id"] for m in models}


def test_search_by_size_range() -> None:
    found = invoke_json("catalog", "search", "--min-params", "10B", "--max-params", "14B")
    assert found and all(10e9 <= m["params"] <= 14e9 for m in found)
    assert "meta-llama/Llama-2-13b-hf" in ids(found)


def test_search_by_lineage_and_kind() -> None:
    found = invoke_json("catalog", "search", "--finetuned-from", "meta-llama/Llama-2-70b-hf")
    assert "meta-llama/Llama-2-70b-chat-hf" in ids(found)
    assert "meta-llama/Llama-2-70b-hf" not in ids(found)
    chats = invoke_json("catalog", "search", "--kind", "chat", "--family", "llama-2")
    assert ids(chats) == {f"meta-llama/Llama-2-{s}-chat-hf" for s in ("7b", "13b", "70b")}


def test_search_by_license_commercial_context_and_date() -> None:
    every = invoke_json("catalog", "list")
    found = invoke_json("catalog", "search", "--license", "llama2")
    assert ids(found) == {m["id"] for m in every if m["licenses"]["weights"] == "llama2"}
    commercial = invoke_json("catalog", "search", "--commercial")
    forbidden = {
        "cc-by-nc-4.0",
        "cc-by-nc-sa-4.0",
        "llama1",
        "microsoft-research-license",
        "qwen-research",
        "stabilityai-non-commercial",
        "unknown",
        "other",
    }
    assert commercial and not any(m["licenses"]["weights"] in forbidden for m in commercial)
    long_ctx = invoke_json("catalog", "search", "--min-context", "4k")
    assert all(m["architecture"]["context_length"] >= 4000 for m in long_ctx)
    recent = invoke_json("catalog", "search", "--released-after", "2023-07-17")
    assert all(m["release_date"] > "2023-07-17" for m in recent)
    assert "meta-llama/Llama-2-7b-hf" in ids(recent)


def test_search_by_active_parameters_and_license_expressions() -> None:
    found = invoke_json("catalog", "search", "--max-active", "6B", "--min-params", "20B")
    # Mixture-of-experts models large in total but small per token: gpt-oss-120b uses 5.7B.
    assert "openai/gpt-oss-120b" in ids(found)
    assert all((m["active_params"] or m["params"]) <= 6e9 for m in found)
    assert all(m["active_params"] for m in found)  # a dense model of 20B+ is above 6B active
    # `apache-2.0 and gpt-oss-usage-policy`: both allow commercial use, so the model is listed;
    # `cc-by-nc-4.0 and c4ai-aup` (Command A): the stricter one decides.
    commercial = ids(invoke_json("catalog", "search", "--commercial"))
    assert "openai/gpt-oss-20b" in commercial
    assert "CohereLabs/c4ai-command-a-03-2025" not in commercial
    both = invoke_json(
        "catalog", "search", "--license", "apache-2.0", "--license", "gpt-oss-usage-policy"
    )
    assert {"openai/gpt-oss-20b", "openai/gpt-oss-120b"} <= ids(both)
    assert "openai/gpt-oss-20b" not in ids(invoke_json("catalog", "search", "--license", "mit"))


def test_search_rejects_bad_values_clearly() -> None:
    result = runner.invoke(app, ["catalog", "search", "--min-params", "seven"])
    assert result.exit_code == 2
    assert "--min-params" in result.output
    result = runner.invoke(app, ["catalog", "search", "--released-after", "July"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["catalog", "search", "--kind", "poem"])
    assert result.exit_code == 2


def test_import_folder_then_list_show_remove(tmp_path: Path) -> None:
    folder = config_folder(
        tmp_path / "my-model",
        "---\nlicense: mit\nbase_model: meta-llama/Llama-2-7b-hf\n---\n[bold red]shout[/]\n",
    )
    imported = invoke_json("catalog", "import", str(folder), "--id", "acme/my-model")
    assert imported["model"]["id"] == "acme/my-model"
    assert Path(imported["saved"]).is_file()

    shown = invoke_json("catalog", "show", "acme/my-model")
    # embeddings + LM head 2*100*64, per layer 4*64*64 + 3*64*128 + 2*64, final norm 64
    assert shown["params"] == 2 * 100 * 64 + 2 * (4 * 64 * 64 + 3 * 64 * 128 + 2 * 64) + 64
    found = invoke_json("catalog", "search", "--finetuned-from", "meta-llama/Llama-2-7b-hf")
    assert "acme/my-model" in ids(found)

    removed = runner.invoke(app, ["catalog", "remove", "acme/my-model"])
    assert removed.exit_code == 0
    assert runner.invoke(app, ["catalog", "show", "acme/my-model"]).exit_code == 2


def test_import_broken_folder_reports_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "config.json").write_text('{\n  "hidden_size": 64,\n  oops\n}')
    result = runner.invoke(app, ["catalog", "import", str(folder)])
    assert result.exit_code == 1
    assert f"{folder / 'config.json'}:3" in result.stderr
    assert "Traceback" not in result.output


def test_markup_in_a_card_is_printed_literally(tmp_path: Path, isolated_home: Path) -> None:
    catalog_dir = isolated_home / "catalog"
    catalog_dir.mkdir(parents=True)
    (catalog_dir / "x.yaml").write_text(
        "family: x\nmodels:\n  - id: acme/x\n    params: 1000\n"
        "    notes: '[link=https://evil.example]click[/link] [red]alarm[/red]'\n"
        "    licenses: {code: mit, weights: mit}\n"
    )
    result = runner.invoke(app, ["catalog", "show", "acme/x"])
    assert result.exit_code == 0
    assert "[red]alarm[/red]" in result.output


def test_broken_user_catalog_file_names_file_line_and_field(isolated_home: Path) -> None:
    catalog_dir = isolated_home / "catalog"
    catalog_dir.mkdir(parents=True)
    bad = catalog_dir / "bad.yaml"
    bad.write_text(
        "family: x\nmodels:\n  - id: acme/x\n    params: 1000\n"
        "    architecture: {hidden_size: -5}\n    licenses: {code: mit, weights: mit}\n"
    )
    result = runner.invoke(app, ["catalog", "list"])
    assert result.exit_code == 1
    assert f"{bad}:5: models[0].architecture.hidden_size" in result.stderr


FAMILY = """family: acme
defaults:
  release_date: 2024-01-01
  licenses: {code: apache-2.0, weights: apache-2.0}
  sources:
    params: [model card]
    licenses: [model card]
    release_date: [blog]
    architecture: [config.json, paper]
models:
  - id: acme/tiny
    params: 95040
    architecture: {num_hidden_layers: 2, hidden_size: HIDDEN, num_attention_heads: 4,
                   intermediate_size: 128, vocab_size: 100}
"""


def test_check_accepts_a_consistent_file(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(FAMILY.replace("HIDDEN", "64"))
    result = invoke_json("catalog", "check", str(path))
    assert result == {"checked": 1, "findings": []}


def test_check_catches_a_typo_in_the_architecture(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(FAMILY.replace("HIDDEN", "640"))
    result = runner.invoke(app, ["catalog", "check", str(path), "--json"])
    assert result.exit_code == 1
    (finding,) = json.loads(result.stdout)["findings"]
    assert finding["model"] == "acme/tiny" and finding["level"] == "error"
    assert "95,040" in finding["message"]


def test_check_of_the_builtin_catalog_finds_no_errors() -> None:
    result = runner.invoke(app, ["catalog", "check", "--json"])
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["checked"] == len(load_builtin())
    assert not [f for f in report["findings"] if f["level"] == "error"]
