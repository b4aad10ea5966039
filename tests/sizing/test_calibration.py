"""Calibration: recorded measurements correct the engine profile used by `fit`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.errors import LLMSelectError
from llmselect.sizing.calibration import load_measurements
from llmselect.sizing.engines import get_engine

runner = CliRunner()
ADD = [
    "calibrate",
    "add",
    "--model",
    "meta-llama/Llama-2-7b-hf",
    "--gpu",
    "H100-80GB",
    "--engine",
    "vllm",
    "--quant",
    "bf16",
]
FIT = [
    "fit",
    "meta-llama/Llama-2-7b-hf",
    "--gpu",
    "H100-80GB",
    "--quant",
    "bf16",
    "--context",
    "2048",
    "--prompt",
    "1024",
    "--engine",
    "vllm",
    "--json",
]


def fit() -> dict[str, Any]:
    result = runner.invoke(app, FIT)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_measured_speed_calibrates_the_estimate() -> None:
    before = fit()["estimates"]["decode_tokens_per_s"]
    measured = before * 0.8
    result = runner.invoke(
        app,
        [
            *ADD,
            "--context",
            "2048",
            "--prompt",
            "1024",
            "--tps",
            str(measured),
            "--ttft",
            "0.05",
            "--source",
            "test",
        ],
    )
    assert result.exit_code == 0, result.output
    after = fit()
    assert after["estimates"]["decode_tokens_per_s"] == pytest.approx(measured, rel=1e-6)
    assert after["estimates"]["ttft_s"] == pytest.approx(0.05, rel=1e-6)
    assert any("calibrated from 1 run(s)" in w for w in after["warnings"])

    shown = json.loads(runner.invoke(app, ["calibrate", "show", "--json"]).stdout)
    shown = [c for c in shown if not c["shipped"]]  # beside transformers-eager's shipped runs
    assert shown[0]["engine"] == "vllm" and shown[0]["device"] == "H100-SXM-80GB"
    default = get_engine("vllm").bandwidth_efficiency
    assert shown[0]["bandwidth_efficiency"] == pytest.approx(default * 0.8, rel=1e-6)
    # Another engine, or another device, keeps its defaults.
    other = runner.invoke(app, [*FIT[:3], "RTX-4090", *FIT[4:]])
    assert not any("calibrated" in w for w in json.loads(other.stdout)["warnings"])


def test_a_broken_line_is_reported_and_nothing_is_lost(isolated_home: Path) -> None:
    runner.invoke(
        app,
        [
            *ADD,
            "--tps",
            "100",
        ],
    )
    path = isolated_home / "measurements.jsonl"
    good = path.read_text()
    path.write_text(good + "{not json\n")
    with pytest.raises(LLMSelectError) as err:
        load_measurements(path)
    assert err.value.line == 2 and err.value.file == str(path)
    assert path.read_text().startswith(good)
    result = runner.invoke(app, FIT)
    assert result.exit_code == 1 and "measurements.jsonl:2" in result.stderr


def test_add_needs_a_measurement() -> None:
    result = runner.invoke(
        app,
        [
            *ADD,
        ],
    )
    assert result.exit_code == 2


def test_shipped_measurements_calibrate_until_the_user_records_their_own(
    isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmselect.sizing import calibration

    before = fit()["estimates"]["decode_tokens_per_s"]
    # What `benchmarks/sizing_accuracy.py --ship` writes: one run at 1.5x the default estimate.
    runner.invoke(app, [*ADD, "--context", "2048", "--prompt", "1024", "--tps", str(before * 1.5)])
    shipped_file = tmp_path / "shipped.jsonl"
    (isolated_home / "measurements.jsonl").rename(shipped_file)
    monkeypatch.setattr(calibration, "BUILTIN_MEASUREMENTS", shipped_file)

    shipped = fit()
    assert shipped["estimates"]["decode_tokens_per_s"] == pytest.approx(before * 1.5, rel=1e-6)
    assert any("from 1 run(s) shipped with llmselect" in w for w in shipped["warnings"])
    [row] = json.loads(runner.invoke(app, ["calibrate", "show", "--json"]).stdout)
    assert row["shipped"] is True

    # The user's own run on that engine and device replaces the shipped one entirely.
    runner.invoke(app, [*ADD, "--context", "2048", "--prompt", "1024", "--tps", str(before * 0.5)])
    yours = fit()
    assert yours["estimates"]["decode_tokens_per_s"] == pytest.approx(before * 0.5, rel=1e-6)
    assert any(w.endswith("calibrated from 1 run(s)") for w in yours["warnings"])
    [row] = json.loads(runner.invoke(app, ["calibrate", "show", "--json"]).stdout)
    assert row["shipped"] is False
    table = runner.invoke(app, ["calibrate", "show"]).stdout
    assert "1 of your measurements and 1 shipped with llmselect" in table


def test_the_shipped_measurements_load() -> None:
    from llmselect.catalog import load_builtin
    from llmselect.sizing.calibration import BUILTIN_MEASUREMENTS, builtin_measurements
    from llmselect.sizing.hardware import find_device

    # The file ships with the package (empty until a GPU run is shipped: no device yet).
    assert BUILTIN_MEASUREMENTS.is_file()
    catalog = load_builtin()
    for m in builtin_measurements():  # every line names a catalog model, a profile, an engine
        assert catalog.find(m.model) is not None, m.model
        find_device(m.device)
        get_engine(m.engine)
