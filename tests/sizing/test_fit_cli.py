"""`llmselect fit` and `llmselect hardware` as a user runs them."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()


def fit_json(*args: str, code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, ["fit", *args, "--json"])
    assert result.exit_code == code, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_fit_contract() -> None:
    data = fit_json(
        "meta-llama/Llama-2-7b-hf",
        "--gpu",
        "H100-80GB",
        "--dtype",
        "bf16",
        "--context",
        "8192",
        "--batch",
        "8",
    )
    assert data["model"] == "meta-llama/Llama-2-7b-hf"
    assert data["hardware"] == "H100-SXM-80GB"
    mem = data["memory"]
    assert set(mem) >= {
        "weights_bytes",
        "kv_cache_bytes",
        "activations_bytes",
        "overhead_bytes",
        "total_bytes",
    }
    assert mem["kv_cache_bytes"] == 512 * 1024 * 8192 * 8
    assert mem["total_bytes"] == sum(
        mem[k] for k in ("weights_bytes", "kv_cache_bytes", "activations_bytes", "overhead_bytes")
    )
    assert data["fits"] is True
    assert set(data["estimates"]) >= {"ttft_s", "decode_tokens_per_s", "total_tokens_per_s"}


def test_70b_on_one_80gb_gpu() -> None:
    bf16 = fit_json("meta-llama/Llama-2-70b-hf", "--gpu", "H100-80GB", "--quant", "bf16", code=4)
    assert bf16["fits"] is False and bf16["margin_bytes"] < 0
    q4 = fit_json("meta-llama/Llama-2-70b-hf", "--gpu", "H100-80GB", "--quant", "q4_k_m")
    assert q4["fits"] is True and q4["engine"] == "llama.cpp"
    two = fit_json("meta-llama/Llama-2-70b-hf", "--gpu", "2x H100-80GB", "--quant", "bf16")
    assert two["fits"] is True and two["hardware"] == "2x H100-SXM-80GB"


def test_without_a_quant_the_best_that_fits_is_chosen() -> None:
    data = fit_json("meta-llama/Llama-2-70b-hf", "--gpu", "H100-80GB", "--context", "4096")
    assert data["fits"] is True
    assert data["tried"] == ["bf16", "fp8"] and data["quant"] == "fp8"
    # An RTX 3060 (12 GB, no fp8 path): a 13B model lands on a GGUF quantization, and says
    # what it trades.
    small = fit_json("meta-llama/Llama-2-13b-hf", "--gpu", "RTX-3060")
    assert small["tried"][0] == "bf16" and "fp8" not in small["tried"]
    assert small["quant"] == small["tried"][-1] and small["quant"].startswith("Q")
    assert small["ppl_increase_7b"] > 0


def test_price_gives_cost_per_million_tokens() -> None:
    data = fit_json(
        "meta-llama/Llama-2-7b-hf", "--gpu", "A100-80GB", "--quant", "bf16", "--price", "2.0"
    )
    cost = data["estimates"]["cost_per_million_tokens"]
    assert cost == 2.0 / 3600 / data["estimates"]["total_tokens_per_s"] * 1e6


def test_table_across_precisions_and_contexts() -> None:
    result = runner.invoke(
        app,
        ["fit", "meta-llama/Llama-3.1-8B", "--gpu", "RTX-4090", "--table"],
        env={"COLUMNS": "160"},
    )
    assert result.exit_code == 0, result.output
    assert "131,072 tok" in result.output and "Q4_K_M" in result.output and "✗" in result.output


def test_bad_inputs_are_clear() -> None:
    result = runner.invoke(app, ["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "H1OO"])
    assert result.exit_code == 2 and "did you mean" in result.stderr
    result = runner.invoke(
        app, ["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "H100-80GB", "--quant", "q9"]
    )
    assert result.exit_code == 2 and "q4_k_m" in result.stderr


def test_hardware_commands() -> None:
    listed = runner.invoke(app, ["hardware", "--list", "--json"])
    assert listed.exit_code == 0 and len(json.loads(listed.stdout)) >= 40
    named = json.loads(runner.invoke(app, ["hardware", "--gpu", "4x A100-80GB", "--json"]).stdout)
    assert named[0]["id"] == "A100-SXM-80GB" and named[0]["count"] == 4
    local = json.loads(runner.invoke(app, ["hardware", "--json"]).stdout)
    assert local["ram_bytes"] > 0 and local["cores"] >= 1


def test_fit_on_this_machine_without_gpu() -> None:
    data = fit_json("HuggingFaceTB/SmolLM-135M", "--quant", "q8_0")
    assert data["hardware"] == "this-machine-cpu" and data["engine"] == "cpu"


def test_a_card_whose_architecture_is_incomplete_is_refused_with_what_it_lacks() -> None:
    # Command A's layer and head counts were not read from two sources: no architecture to size.
    for extra in ([], ["--table"], ["--finetune", "lora"]):
        result = runner.invoke(
            app, ["fit", "CohereLabs/c4ai-command-a-03-2025", "--gpu", "H100-80GB", *extra]
        )
        assert result.exit_code == 2, result.output
        assert "cannot size CohereLabs/c4ai-command-a-03-2025" in result.output
        assert "num_hidden_layers" in result.output and "catalog import" in result.output
