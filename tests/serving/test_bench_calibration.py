"""A bench calibrates `fit`: `calibrate bench` records each concurrency level as a measured run
(decode tokens/s per user and TTFT at that batch), and `fit` then says it is calibrated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import serving_servers
from serving_servers import Loopback
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()
loopback = serving_servers.loopback

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def _json(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_a_bench_calibrates_fit_for_that_engine_and_hardware(
    loopback: Loopback, tmp_path: Path
) -> None:
    url = loopback(ttft=0.05, token_delay=0.01, usage=True)
    out = tmp_path / "bench"
    _json(
        "bench", url, "--concurrency", "1,2", "--requests", "6",
        "--prompt-tokens", "40", "--output-tokens", "8", "--out", str(out),
    )  # fmt: skip
    before = _json("fit", MODEL, "--gpu", "H100-80GB", "--quant", "bf16", "--engine", "vllm")

    recorded = _json(
        "calibrate", "bench", str(out / "summary.json"), "--model", MODEL,
        "--gpu", "H100-80GB", "--engine", "vllm", "--quant", "bf16",
    )  # fmt: skip
    runs = recorded["recorded"]
    assert [r["batch"] for r in runs] == [1, 2]
    for run in runs:
        assert (run["model"], run["device"], run["engine"], run["quant"]) == (
            MODEL,
            "H100-SXM-80GB",  # the profile `H100-80GB` names
            "vllm",
            "bf16",
        )
        assert run["prompt_tokens"] == 40 and run["context"] == 48  # per request, from usage
        assert 0.05 <= run["ttft_s"] < 0.08
        assert 50 < run["decode_tokens_per_s"] <= 100  # 1 / TPOT of 10 ms a token
    assert Path(recorded["file"]).is_file()

    shown = _json("calibrate", "show")
    vllm = [c for c in shown if c["engine"] == "vllm" and c["device"] == "H100-SXM-80GB"]
    assert len(vllm) == 1 and vllm[0]["decode_samples"] == 2 and not vllm[0]["shipped"]
    after = _json("fit", MODEL, "--gpu", "H100-80GB", "--quant", "bf16", "--engine", "vllm")
    assert "vllm on H100-SXM-80GB calibrated from 2 run(s)" in after["warnings"]
    # The loopback answers far slower than an H100 with vLLM would: calibrated, fit follows it.
    assert after["estimates"]["decode_tokens_per_s"] < before["estimates"]["decode_tokens_per_s"]


def test_a_file_that_is_not_a_bench_summary_is_named(tmp_path: Path) -> None:
    wrong = tmp_path / "summary.json"
    wrong.write_text(json.dumps({"levels": "none"}))
    error = _json(
        "calibrate", "bench", str(wrong), "--model", MODEL, "--gpu", "H100-80GB",
        "--engine", "vllm", "--quant", "bf16", code=1,
    )["error"]  # fmt: skip
    assert error["file"] == str(wrong)
    assert "not a bench summary" in error["message"]


def test_a_bench_of_rates_only_has_no_batch_to_calibrate(
    loopback: Loopback, tmp_path: Path
) -> None:
    url = loopback(ttft=0.01, usage=True)
    out = tmp_path / "rates"
    _json("bench", url, "--rate", "20", "--requests", "4", "--out", str(out))
    error = _json(
        "calibrate", "bench", str(out / "summary.json"), "--model", MODEL,
        "--gpu", "H100-80GB", "--engine", "vllm", "--quant", "bf16", code=1,
    )["error"]  # fmt: skip
    assert "no concurrency level" in error["message"]
    assert all(c["shipped"] for c in _json("calibrate", "show"))  # nothing of yours recorded
