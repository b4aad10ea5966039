"""`benchmarks/sizing_accuracy.py --record`: a CPU run lands in the calibration store and `fit`
on this machine is calibrated from it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.sizing import detect
from llmselect.sizing.calibration import load_measurements
from llmselect.sizing.engines import get_engine

runner = CliRunner()
BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "sizing_accuracy.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sizing_accuracy", BENCHMARK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """`fit` without --gpu sizes for this machine: make it a machine without a GPU."""
    machine = detect.LocalMachine(cpu="Test CPU", cores=2, ram_bytes=8 * 2**30, gpus=[], notes=[])
    monkeypatch.setattr(detect, "detect", lambda: machine)


def fake_run(bench: ModuleType, tps: float = 3.5, ttft: float = 0.8) -> Any:
    return bench.CpuRun(
        model=bench.BENCH_MODEL,
        prompt_tokens=128,
        new_tokens=32,
        ttft_s=ttft,
        decode_tokens_per_s=tps,
        peak_memory_bytes=900_000_000,
        baseline_memory_bytes=500_000_000,
        weights_bytes=269_030_016,
        kv_cache_bytes=0,
        tokens_in_cache=159,
    )


def fit_json() -> dict[str, Any]:
    result = runner.invoke(
        app,
        [
            "fit",
            "HuggingFaceTB/SmolLM-135M",
            "--quant",
            "bf16",
            "--context",
            "160",
            "--prompt",
            "128",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.mark.usefixtures("cpu_only")
def test_a_recorded_run_calibrates_fit_on_this_machine(
    bench: ModuleType, isolated_home: Path
) -> None:
    before = fit_json()
    assert before["hardware"] == "this-machine-cpu" and before["engine"] == "cpu"
    assert not any("calibrated" in w for w in before["warnings"])

    path = bench.record_run(fake_run(bench))
    assert path == isolated_home / "measurements.jsonl"
    [stored] = load_measurements()
    assert stored.source == "benchmarks/sizing_accuracy.py"
    assert (stored.device, stored.engine, stored.quant) == ("this-machine-cpu", "cpu", "bf16")
    assert (stored.context, stored.prompt_tokens, stored.peak_memory_bytes) == (160, 128, 9e8)

    shown = runner.invoke(app, ["calibrate", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    [calibration] = json.loads(shown.stdout)
    assert calibration["engine"] == "cpu" and calibration["device"] == "this-machine-cpu"
    assert calibration["decode_samples"] == 1 and calibration["prefill_samples"] == 1
    ratio = 3.5 / before["estimates"]["decode_tokens_per_s"]
    default = get_engine("cpu").bandwidth_efficiency
    assert calibration["bandwidth_efficiency"] == pytest.approx(default * ratio, rel=1e-6)

    after = fit_json()
    assert after["estimates"]["decode_tokens_per_s"] == pytest.approx(3.5, rel=1e-6)
    assert after["estimates"]["ttft_s"] == pytest.approx(0.8, rel=1e-6)
    assert any("calibrated from 1 run(s)" in w for w in after["warnings"])


def test_record_flag_says_where(
    bench: ModuleType, isolated_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(bench, "run_cpu", lambda prompt, new: fake_run(bench))
    bench.main(["--skip-gguf", "--record"])
    out = capsys.readouterr().out
    assert f"recorded in {isolated_home / 'measurements.jsonl'}:" in out
    assert len(load_measurements()) == 1
    # Without --record nothing is stored.
    bench.main(["--skip-gguf"])
    assert len(load_measurements()) == 1
