"""Options a user can get wrong are refused with the option named, never quietly replaced."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.licensing.profile import FIELDS_OF_USE

runner = CliRunner()
FIT = ["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "H100-80GB"]


def flat(text: str) -> str:
    """Typer draws usage errors in a box: join its lines back into one text."""
    return " ".join(line.strip("│╭╮╰╯─ ") for line in text.splitlines() if line.strip("│╭╮╰╯─ "))


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--context", "0"], "--context"),
        (["--context", "0.0001k"], "--context"),
        (["--context", "200M"], "--context"),
        (["--price", "-5"], "--price"),
        (["--price", "nan"], "--price"),
        (["--price", "inf"], "--price"),
        (["--prompt", "0"], "--prompt"),
        (["--prompt", "99999999"], "--prompt"),
        (["--context", "2k", "--prompt", "3k"], "--prompt"),
    ],
)
def test_fit_refuses_a_value_that_makes_no_sense(args: list[str], option: str) -> None:
    result = runner.invoke(app, [*FIT, *args, "--json"])
    assert result.exit_code == 2, result.output
    assert option in flat(result.output)
    assert "ttft" not in result.output  # nothing estimated from it


def test_fit_says_which_limit_a_prompt_passes() -> None:
    result = runner.invoke(app, [*FIT, "--prompt", "99999999"])
    message = flat(result.output)
    assert "99,999,999" in message and "4,096" in message, message


def test_fit_accepts_sane_values_and_warns_beyond_the_models_context() -> None:
    result = runner.invoke(
        app, [*FIT, "--context", "8k", "--prompt", "8k", "--price", "0", "--json"]
    )
    assert result.exit_code == 0, result.output
    fit = json.loads(result.stdout)
    assert fit["context"] == 8000
    assert fit["estimates"]["cost_per_million_tokens"] == 0
    assert any("beyond the model's 4,096" in w for w in fit["warnings"])


def test_calibrate_add_refuses_a_zero_context() -> None:
    result = runner.invoke(
        app,
        [
            *["calibrate", "add", "--model", "meta-llama/Llama-2-7b-hf", "--gpu", "H100-80GB"],
            *["--engine", "vllm", "--quant", "bf16", "--tps", "50", "--context", "0"],
        ],
    )
    assert result.exit_code == 2, result.output
    assert "--context" in flat(result.output)


def test_license_check_lists_the_fields_of_use() -> None:
    result = runner.invoke(
        app, ["license", "check", "mistralai/Mistral-7B-v0.1", "--field", "banana"]
    )
    assert result.exit_code == 2
    message = flat(result.output)
    assert "banana" in message and "--field" in message
    assert all(field in message for field in FIELDS_OF_USE), message
    assert "errors.pydantic.dev" not in message
