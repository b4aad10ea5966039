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
    # Beside the calibrations llmselect ships (transformers-eager on H100-SXM-80GB).
    [calibration] = [c for c in json.loads(shown.stdout) if not c["shipped"]]
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


# -- the sweep (`--device`): a dry run on this CPU, and shipping GPU runs ---------------------


def test_sweep_measures_each_batch_and_checks_calibration_on_held_out_runs(
    bench: ModuleType, capsys: Any
) -> None:
    from llmselect.catalog import load_builtin
    from llmselect.sizing.estimate import kv_bytes_per_token
    from llmselect.sizing.quant import weight_bytes

    runs = bench.run_sweep(bench.BENCH_MODEL, ["transformers-eager"], [1, 2], 8, 4, "cpu")
    arch = load_builtin().get(bench.BENCH_MODEL).architecture
    assert [r.batch for r in runs] == [1, 2]
    for run in runs:
        assert run.device == "this-machine-cpu" and run.engine == "transformers-eager"
        assert run.weights_bytes == weight_bytes(arch, "bf16")
        # The dynamic cache holds every token but the last generated one, for each sequence.
        assert run.kv_cache_bytes == kv_bytes_per_token(arch, "bf16") * (8 + 4 - 1) * run.batch
        assert run.ttft_s > 0 and run.decode_tokens_per_s > 0
        assert run.peak_memory_bytes is None  # device memory is read on CUDA only
        assert bench.as_measurement(run).engine == "cpu"  # what `fit` uses on a CPU

    errors = bench.report_sweep(runs)
    out = capsys.readouterr().out
    assert "memory (GB, predicted / measured)" in out and "decode tok/s" in out
    # Each run predicted from the other alone: the calibrated estimate is the other's speed
    # scaled by the model's ratio between the two batch sizes.
    one, two = runs
    _, tuned = bench.sweep_predictions(one, [bench.as_measurement(two)])
    assert errors[0] == pytest.approx(
        tuned.estimates.decode_tokens_per_s / one.decode_tokens_per_s - 1
    )
    with pytest.raises(SystemExit, match="--ship takes GPU runs"):
        bench.ship(runs)


def test_shipped_gpu_runs_calibrate_fit_for_that_gpu(
    bench: ModuleType, isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmselect.sizing import calibration

    run = bench.SweepRun(
        model="meta-llama/Llama-3.1-8B",
        device="H200-SXM-141GB",
        device_name="NVIDIA H200",
        engine="transformers-compiled",
        batch=1,
        prompt_tokens=512,
        new_tokens=128,
        ttft_s=0.05,
        decode_tokens_per_s=140.0,
        weights_bytes=16_060_522_496,
        kv_cache_bytes=83_886_080,
        peak_torch_bytes=16_500_000_000,
        runtime_bytes=600_000_000,
    )
    shipped = tmp_path / "measurements.jsonl"
    assert bench.ship([run], shipped) == shipped
    monkeypatch.setattr(calibration, "BUILTIN_MEASUREMENTS", shipped)
    [stored] = calibration.builtin_measurements()
    assert (stored.device, stored.engine, stored.context) == (run.device, run.engine, 640)
    assert stored.peak_memory_bytes == 17_100_000_000
    assert stored.source == "benchmarks/sizing_accuracy.py on NVIDIA H200"

    args = ["fit", run.model, "--gpu", "H200", "--quant", "bf16", "--context", "640"]
    args += ["--prompt", "512", "--engine", "transformers-compiled", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    fitted = json.loads(result.stdout)
    assert fitted["estimates"]["decode_tokens_per_s"] == pytest.approx(140.0, rel=1e-6)
    assert any("shipped with llmselect" in w for w in fitted["warnings"])
