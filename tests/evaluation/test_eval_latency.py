"""The latency summary in results.json, peak memory, and calibration recorded after `eval`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openai_server import FakeServer
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.evaluation.store import RunInfo, Store

runner = CliRunner()
QUESTIONS = ["capital of France", "capital of England", "capital of Italy", "two plus two"]
ANSWERS = ["Paris", "London", "Rome", "four"]
OLD_KEYS = {
    "p50_s",
    "p90_s",
    "p95_s",
    "p99_s",
    "mean_s",
    "tokens_per_s",
    "ttft_p50_s",
    "ttft_p90_s",
    "ttft_p95_s",
    "ttft_p99_s",
}
"""The latency keys results.json had before: a public contract, kept as they are."""


def write_study(tmp_path: Path, candidates: list[str], n: int = 6, max_tokens: int = 6) -> Path:
    rows = [
        {
            "id": f"q{i}",
            "question": f"What is the {QUESTIONS[i % 4]}? ({i})",
            "answer": ANSWERS[i % 4],
        }
        for i in range(n)
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = "".join(f"  - {c}\n" for c in candidates)
    (tmp_path / "study.yaml").write_text(f"""
dataset: {{path: data.jsonl, fields: {{input: question, reference: answer, id: id}}}}
task: {{kind: generate, template: "Q: {{{{ input }}}} A:", max_tokens: {max_tokens}}}
metrics: [exact_match]
candidates:
{lines}""")
    return tmp_path / "study.yaml"


def nearest(values: list[float], q: float) -> float:
    return float(np.percentile(values, q, method="nearest"))


def eval_json(study: Path, out: Path, *extra: str) -> dict[str, Any]:
    result = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json", *extra])
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_local_latency_summary_is_computed_from_the_stored_timings(
    tmp_path: Path, tiny_models: tuple[Path, Path]
) -> None:
    torch = pytest.importorskip("torch")
    study = write_study(tmp_path, [f"{{name: a, transformers: {tiny_models[0]}, batch_size: 2}}"])
    out = tmp_path / "out"
    latency = eval_json(study, out, "--no-record")["models"]["a"]["latency"]
    assert set(latency) >= OLD_KEYS
    with sqlite3.connect(out / "store.sqlite") as db:
        rows = list(
            db.execute("SELECT seconds, output_tokens, prompt_tokens, batch_rows FROM samples")
        )
    seconds = [r[0] for r in rows]
    # Each item waited for its whole batch of two: the pairs share one time, a batch's.
    assert [r[3] for r in rows] == [2] * 6 and len(set(seconds)) <= 3
    for q in (50, 90, 95, 99):
        assert latency[f"p{q}_s"] == pytest.approx(nearest(seconds, q))
    assert latency["ttft_p50_s"] <= latency["p50_s"]
    per_token = [s / t for s, t, _, _ in rows if t]
    assert latency["s_per_output_token_p50"] == pytest.approx(nearest(per_token, 50))
    # Throughput counts each batch's time once.
    busy = sum(seconds) / 2
    assert latency["tokens_per_s"] == pytest.approx(sum(r[1] for r in rows) / busy)
    assert latency["items_per_s"] == pytest.approx(6 / busy)
    assert latency["batch_p50"] == 2
    assert latency["output_tokens"] == sum(r[1] for r in rows) and latency["n"] == 6
    assert latency["prompt_tokens_p50"] == nearest([r[2] for r in rows], 50)
    model = json.loads((out / "results.json").read_text())["models"]["a"]
    if torch.cuda.is_available():
        assert model["device"].startswith("cuda") and latency["peak_memory_bytes"] > 0
    else:
        assert (model["device"], model["dtype"], latency["peak_memory_bytes"]) == (
            "cpu",
            "fp32",
            None,
        )


def test_streamed_latency_has_time_to_first_token(tmp_path: Path) -> None:
    with FakeServer() as server:
        study = write_study(tmp_path, [f'{{name: api, openai: "{server.url}", model: m}}'])
        results = eval_json(study, tmp_path / "out")
    model = results["models"]["api"]
    latency = model["latency"]
    assert latency["ttft_p50_s"] <= latency["ttft_p95_s"] <= latency["p99_s"]
    assert latency["ttft_p50_s"] <= latency["p50_s"]
    assert latency["s_per_output_token_p50"] > 0
    assert latency["peak_memory_bytes"] is None and model["device"] is None
    assert "calibration" not in results  # a server's hardware is not this machine's


def test_the_store_keeps_the_peak_over_runs(tmp_path: Path) -> None:
    settings = {"kind": "generate", "max_tokens": 8}
    store = Store(tmp_path / "s.sqlite")
    assert store.run_info("m", settings) is None
    store.put_run("m", settings, RunInfo(device="cuda", dtype="bf16", peak_memory_bytes=500))
    store.put_run("m", settings, RunInfo(device="cuda", dtype="bf16", peak_memory_bytes=300))
    compiled = RunInfo(device="cuda", dtype="bf16", engine="transformers-compiled")
    store.put_run("m", settings, compiled)
    store.put_run("m", {"kind": "perplexity"}, RunInfo(device="cpu", engine="cpu"))
    store.close()
    again = Store(tmp_path / "s.sqlite")
    # The peak is the highest of all runs; where and how it ran, the latest run's.
    assert again.run_info("m", settings) == compiled.model_copy(update={"peak_memory_bytes": 500})
    assert again.run_info("m", {"kind": "perplexity"}) == RunInfo(device="cpu", engine="cpu")


OLD_RUNS_SCHEMA = """
CREATE TABLE runs (
    backend TEXT NOT NULL,
    settings TEXT NOT NULL,
    device TEXT,
    dtype TEXT,
    peak_memory_bytes INTEGER,
    updated TEXT DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (backend, settings)
)
"""
"""The `runs` table as stores written before `engine` have it."""


def test_a_store_written_before_engine_keeps_its_rows_and_resumes(
    tmp_path: Path, tiny_models: tuple[Path, Path]
) -> None:
    candidate = f"{{name: a, transformers: {tiny_models[1]}, batch_size: 2}}"
    out = tmp_path / "out"
    eval_json(write_study(tmp_path, [candidate], n=2, max_tokens=4), out, "--no-record")
    # Take the store back to the old schema, rows and all.
    with sqlite3.connect(out / "store.sqlite") as db:
        db.execute("ALTER TABLE runs RENAME TO runs_new")
        db.execute(OLD_RUNS_SCHEMA)
        old_columns = "backend, settings, device, dtype, peak_memory_bytes, updated"
        db.execute(f"INSERT INTO runs SELECT {old_columns} FROM runs_new")
        db.execute("DROP TABLE runs_new")
        # Samples had no batch_rows: their seconds were already a share of their batch's.
        db.execute("UPDATE samples SET seconds = seconds / batch_rows")
        db.execute("ALTER TABLE samples DROP COLUMN batch_rows")
        before = dict(db.execute("SELECT cache_key, output FROM samples"))
        shares = [row[0] for row in db.execute("SELECT seconds FROM samples")]
    db.close()

    # Nothing new to run: the old rows are read as they are, with no engine recorded.
    model = eval_json(write_study(tmp_path, [candidate], n=2, max_tokens=4), out)["models"]["a"]
    assert (model["device"], model["engine"]) == ("cpu", None)
    assert model["metrics"]["exact_match"]["n"] == 2
    assert model["latency"]["items_per_s"] == pytest.approx(2 / sum(shares))
    # Two more items: only they run, and this run says which engine it measured.
    results = eval_json(write_study(tmp_path, [candidate], n=4, max_tokens=4), out, "--no-record")
    assert results["models"]["a"]["engine"] == "cpu"
    with sqlite3.connect(out / "store.sqlite") as db:
        after = dict(db.execute("SELECT cache_key, output FROM samples"))
        columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
        batches = [row[0] for row in db.execute("SELECT batch_rows FROM samples")]
    db.close()
    assert len(after) == 4 and before.items() <= after.items()
    assert "engine" in columns and sorted(batches, key=str) == [2, 2, None, None]


def test_multiple_choice_runs_in_batches_and_records_its_latency(
    tmp_path: Path, tiny_models: tuple[Path, Path]
) -> None:
    rows = [
        {
            "id": f"q{i}",
            "question": f"{QUESTIONS[i % 4]} ({i})",
            "options": ANSWERS,
            "answer": i % 4,
        }
        for i in range(5)
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "study.yaml").write_text(f"""
dataset: {{path: data.jsonl, fields: {{input: question, reference: answer, choices: options}}}}
task: {{kind: multiple_choice, template: "Q: {{{{ input }}}} A:"}}
candidates: [{{name: a, transformers: {tiny_models[0]}, batch_size: 2}}]
""")
    out = tmp_path / "out"
    latency = eval_json(tmp_path / "study.yaml", out, "--no-record")["models"]["a"]["latency"]
    with sqlite3.connect(out / "store.sqlite") as db:
        stored = list(db.execute("SELECT seconds, batch_rows FROM samples"))
    db.close()
    # Five items, two at a time: batches of 2, 2 and 1, each item waiting for its batch.
    assert sorted(b for _, b in stored) == [1, 2, 2, 2, 2]
    busy = sum(s / b for s, b in stored)
    assert latency["n"] == 5 and latency["items_per_s"] == pytest.approx(5 / busy)
    assert latency["p50_s"] == pytest.approx(nearest([s for s, _ in stored], 50))
    # Scores, not tokens: no token speed and no calibration to record.
    assert latency["tokens_per_s"] is None and latency["output_tokens"] == 0


@pytest.mark.gpu
def test_peak_memory_is_measured_on_cuda(tmp_path: Path, tiny_models: tuple[Path, Path]) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    study = write_study(tmp_path, [f"{{name: a, transformers: {tiny_models[0]}}}"])
    model = eval_json(study, tmp_path / "out", "--no-record")["models"]["a"]
    assert model["device"].startswith("cuda") and model["dtype"] == "bf16"
    # At least the weights: 2 bytes for each of the tiny model's parameters.
    transformers = pytest.importorskip("transformers")
    tiny = transformers.AutoModelForCausalLM.from_pretrained(tiny_models[0])
    weights = 2 * sum(p.numel() for p in tiny.parameters())
    assert model["latency"]["peak_memory_bytes"] >= weights


# -- calibration ------------------------------------------------------------------------------


def measurements(home: Path) -> list[dict[str, Any]]:
    path = home / "measurements.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def reference_desktop(monkeypatch: pytest.MonkeyPatch) -> str:
    """This machine, as far as the CLI can tell, is the listed reference desktop CPU."""
    from llmselect.sizing import detect
    from llmselect.sizing.hardware import find_device

    device = find_device("CPU-DDR4-DUAL")
    monkeypatch.setattr(detect, "target_hardware", lambda spec: (device, 1))
    return device.id


def test_eval_records_local_speed_for_fit_calibration(
    tmp_path: Path, tiny_models: tuple[Path, Path], isolated_home: Path, reference_desktop: str
) -> None:
    imported = runner.invoke(app, ["catalog", "import", str(tiny_models[1]), "--id", "acme/tiny"])
    assert imported.exit_code == 0, imported.output
    study = write_study(
        tmp_path,
        [
            f"{{name: acme/tiny, transformers: {tiny_models[1]}, batch_size: 2}}",
            f"{{name: unlisted, transformers: {tiny_models[0]}, batch_size: 2}}",
        ],
        n=4,
        max_tokens=4,
    )
    out = tmp_path / "out"
    results = eval_json(study, out)
    (entry,) = results["calibration"]["recorded"]
    model = results["models"]["acme/tiny"]
    latency = model["latency"]
    assert entry["model"] == "acme/tiny" and entry["device"] == reference_desktop
    # A CPU run calibrates the `cpu` profile: the one `fit` uses on a CPU, whatever ran it.
    assert model["engine"] == "cpu"
    assert (entry["engine"], entry["quant"], entry["batch"]) == ("cpu", "fp32", 2)
    assert entry["decode_tokens_per_s"] == pytest.approx(latency["tokens_per_s"] / 2)
    assert entry["prompt_tokens"] == round(latency["prompt_tokens_p50"])
    assert [s["candidate"] for s in results["calibration"]["skipped"]] == ["unlisted"]
    assert measurements(isolated_home) == [entry]

    shown = runner.invoke(app, ["calibrate", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    # The H100 runs llmselect ships calibrate transformers-eager there; this run is the user's own.
    (calibration,) = [c for c in json.loads(shown.stdout) if not c["shipped"]]
    assert (calibration["engine"], calibration["device"]) == ("cpu", reference_desktop)
    assert calibration["decode_samples"] == 1
    fitted = runner.invoke(app, ["fit", "acme/tiny", "--json"])
    assert fitted.exit_code in (0, 4), fitted.output
    fit = json.loads(fitted.stdout)
    assert fit["engine"] == "cpu"
    assert any("calibrated from 1 run(s)" in w for w in fit["warnings"]), fit["warnings"]

    # Reused outputs are not measured again, and --no-record records nothing.
    assert "calibration" not in eval_json(study, out)
    assert "calibration" not in eval_json(study, out, "--fresh", "--no-record")
    assert len(measurements(isolated_home)) == 1
    eval_json(study, out, "--fresh")
    assert len(measurements(isolated_home)) == 2


def test_no_record_without_a_matching_card_or_hardware_profile(
    tmp_path: Path,
    tiny_models: tuple[Path, Path],
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Named after a catalog model whose shape is not this folder's: not that model.
    study = write_study(
        tmp_path, [f"{{name: meta-llama/Llama-2-7b-hf, transformers: {tiny_models[0]}}}"], n=2
    )
    from llmselect.sizing import detect
    from llmselect.sizing.hardware import find_device

    cpu, real = find_device("CPU-DDR4-DUAL"), detect.target_hardware
    monkeypatch.setattr(detect, "target_hardware", lambda spec: (cpu, 1))
    skipped = eval_json(study, tmp_path / "out")["calibration"]["skipped"]
    assert skipped[0]["candidate"] == "meta-llama/Llama-2-7b-hf"
    assert "no catalog card with this id and shape" in skipped[0]["reason"]

    # A CPU without a listed profile is `this-machine-cpu`, the device `fit` sizes for here:
    # the run calibrates `fit` on this machine.
    monkeypatch.setattr(detect, "target_hardware", real)
    monkeypatch.setattr(
        detect,
        "detect",
        lambda: detect.LocalMachine(cpu="Test CPU", cores=2, ram_bytes=2**33, gpus=[], notes=[]),
    )
    runner.invoke(app, ["catalog", "import", str(tiny_models[0]), "--id", "acme/tiny"])
    study = write_study(tmp_path, [f"{{name: acme/tiny, transformers: {tiny_models[0]}}}"], n=2)
    (entry,) = eval_json(study, tmp_path / "o2", "--fresh")["calibration"]["recorded"]
    assert (entry["device"], entry["engine"]) == ("this-machine-cpu", "cpu")
    assert measurements(isolated_home) == [entry]
    fitted = json.loads(runner.invoke(app, ["fit", "acme/tiny", "--json"]).stdout)
    assert fitted["hardware"] == "this-machine-cpu"
    assert any("calibrated from 1 run(s)" in w for w in fitted["warnings"]), fitted["warnings"]

    # A GPU no profile matches: `fit` could not use the measurement, so none is kept.
    gpu = detect.LocalGPU(index=0, name="Mystery Accelerator", memory_bytes=2**34, profile=None)
    monkeypatch.setattr(
        detect,
        "detect",
        lambda: detect.LocalMachine(cpu="Test CPU", cores=2, ram_bytes=2**33, gpus=[gpu], notes=[]),
    )
    result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "o3"), "--fresh"])
    assert result.exit_code == 0, result.output
    assert "not recorded for calibration (acme/tiny): this machine has no hardware profile" in (
        result.stderr.replace("\n", " ")
    )
    assert len(measurements(isolated_home)) == 1


def test_eval_records_a_gguf_run_at_its_file_type(
    tmp_path: Path, isolated_home: Path, reference_desktop: str
) -> None:
    pytest.importorskip("llama_cpp")
    from tiny_gguf import write_tiny_gguf

    gguf = write_tiny_gguf(tmp_path / "tiny.gguf", seed=2)
    unlisted = write_tiny_gguf(tmp_path / "unlisted.gguf", seed=3)
    imported = runner.invoke(app, ["catalog", "import", str(gguf), "--id", "acme/tiny-gguf"])
    assert imported.exit_code == 0, imported.output
    study = write_study(
        tmp_path,
        [f"{{name: acme/tiny-gguf, gguf: {gguf}}}", f"{{name: other, gguf: {unlisted}}}"],
        n=3,
        max_tokens=4,
    )
    results = eval_json(study, tmp_path / "out")
    (entry,) = results["calibration"]["recorded"]
    latency = results["models"]["acme/tiny-gguf"]["latency"]
    # llama.cpp on a CPU is what the `cpu` profile describes; the file is ALL_F32.
    assert (entry["model"], entry["device"]) == ("acme/tiny-gguf", reference_desktop)
    assert (entry["engine"], entry["quant"], entry["batch"]) == ("cpu", "fp32", 1)
    assert entry["decode_tokens_per_s"] == pytest.approx(latency["tokens_per_s"])
    (skipped,) = results["calibration"]["skipped"]
    assert skipped["candidate"] == "other" and "no catalog card" in skipped["reason"]
    assert measurements(isolated_home) == [entry]
