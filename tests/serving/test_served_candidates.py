"""Candidates with `serve:`: `eval`, `select` and `bench` start the candidate's engine, measure
it through its OpenAI-compatible API, stop it and keep its log; an engine that never comes up
or dies on the way is an error with the tail of its log, and what it answered is kept."""

from __future__ import annotations

import json
import shlex
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
import serving_servers
import yaml
from typer.testing import CliRunner

from llmselect.cli import app

LOOPBACK = serving_servers.LOOPBACK
tiny_gguf = serving_servers.tiny_gguf  # the fixture, imported for the tests below

runner = CliRunner()
PYTHON = shlex.quote(sys.executable)


def loopback_serve(*options: str) -> str:
    return f"{PYTHON} {shlex.quote(str(LOOPBACK))} --port {{port}} --usage " + " ".join(options)


TASK: dict[str, Any] = {
    "dataset": {
        "path": "data.jsonl",
        "fields": {"input": "question", "reference": "answer", "id": "id"},
    },
    "task": {"kind": "generate", "template": "{{ input }} A:", "max_tokens": 3},
    "metrics": ["token_f1"],
}
"""The data, task and metric of every study here (data.jsonl, written by `write_study`)."""


def write_study(folder: Path, n: int = 6, **candidate: Any) -> Path:
    """An evaluation study of `n` questions for one candidate, `served`."""
    rows = [{"id": f"q{i}", "question": f"Question {i}?", "answer": "w0"} for i in range(n)]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    study = {
        **TASK,
        "candidates": [
            {"name": "served", "concurrency": 1, "retries": 1, "retry_backoff_s": 0.01, **candidate}
        ],
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def stored_items(out: Path) -> int:
    with sqlite3.connect(out / "store.sqlite") as db:
        return int(db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])


def engine_logs(out: Path) -> list[Path]:
    return sorted((out / "engines").glob("served-*.log"))


def test_eval_starts_the_engine_measures_it_and_stops_it(tmp_path: Path) -> None:
    study = write_study(tmp_path, serve=loopback_serve())
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    model = json.loads(result.stdout)["models"]["served"]
    assert model["metrics"]["token_f1"]["n"] == 6
    assert model["metrics"]["token_f1"]["mean"] > 0  # " w0 w1 w2" holds the reference w0
    # The first model the engine lists is the one asked for; the identity names the command.
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert {s["output"] for s in samples} == {" w0 w1 w2"}
    assert engines_running() == []  # stopped once the candidate was done
    (log,) = engine_logs(out)
    assert log.is_file()
    # The outputs are keyed on the engine's command and model, not on the port it got.
    backend = json.loads((out / "results.json").read_text())["models"]["served"]["backend"]
    assert backend.startswith("serve:") and "{port}" in backend and ":loopback" not in backend

    # A rerun starts the engine on another port, and finds every answer stored all the same.
    again = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert again.exit_code == 0, again.output
    assert stored_items(out) == 6
    assert json.loads(again.stdout)["models"]["served"] == model


def engines_running() -> list[int]:
    """Loopback engines still running (the tests run one at a time)."""
    import psutil

    running = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if str(LOOPBACK) in " ".join(process.info["cmdline"] or []):
            running.append(process.info["pid"])
    return running


def test_an_engine_that_exits_at_start_is_an_error_with_its_log(tmp_path: Path) -> None:
    command = f"{PYTHON} -c \"print('CUDA out of memory loading weights'); raise SystemExit(3)\""
    study = write_study(tmp_path, serve=command)
    result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "exited before it answered" in result.stderr
    assert "exit code 3" in result.stderr
    assert "CUDA out of memory loading weights" in result.stderr  # the log's tail


def test_an_engine_that_never_answers_times_out_with_its_log(tmp_path: Path) -> None:
    command = f"{PYTHON} -c \"import time; print('loading shards', flush=True); time.sleep(60)\""
    study = write_study(tmp_path, serve=command, startup_timeout_s=1.5)
    result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "did not answer within 1.5 s" in result.stderr
    assert "loading shards" in result.stderr


def test_an_engine_that_dies_keeps_what_it_answered_and_a_rerun_goes_on(tmp_path: Path) -> None:
    # The engine exits (as a crash) when its 4th request arrives: 3 answers per run.
    study = write_study(tmp_path, n=7, serve=loopback_serve("--die-after", "4"))
    out = tmp_path / "out"
    first = runner.invoke(app, ["eval", str(study), "--out", str(out)])
    assert first.exit_code == 1
    assert "stopped while it was evaluated" in first.stderr
    assert "exit code 1" in first.stderr
    assert stored_items(out) == 3
    second = runner.invoke(app, ["eval", str(study), "--out", str(out)])
    assert second.exit_code == 1 and stored_items(out) == 6
    third = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert third.exit_code == 0, third.output
    assert json.loads(third.stdout)["models"]["served"]["metrics"]["token_f1"]["n"] == 7
    assert len(engine_logs(out)) == 3  # each start kept its own log


def test_a_serve_command_is_checked_before_anything_starts(tmp_path: Path) -> None:
    study = write_study(tmp_path, serve=loopback_serve("--ttft", "{delay}"))
    result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "unknown placeholder {delay}" in result.stderr
    both = write_study(tmp_path, serve=loopback_serve(), openai="http://127.0.0.1:9")
    result = runner.invoke(app, ["eval", str(both), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "exactly one of transformers, gguf, openai or serve" in result.stderr
    stray = write_study(tmp_path, openai="http://127.0.0.1:9", model="m", file="model.gguf")
    result = runner.invoke(app, ["eval", str(stray), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "file applies to serve candidates only" in result.stderr


def test_bench_a_study_candidate_by_name(tmp_path: Path) -> None:
    study = write_study(tmp_path, serve=loopback_serve("--ttft", "0.01"))
    out = tmp_path / "bench"
    result = runner.invoke(
        app,
        [
            "bench",
            "served",
            "--study",
            str(study),
            "--concurrency",
            "1,2",
            "--requests",
            "4",
            "--output-tokens",
            "3",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [level["concurrency"] for level in summary["levels"]] == [1, 2]
    assert all(level["requests"] == 4 and level["errors"] == 0 for level in summary["levels"])
    assert summary["model"] == "loopback"  # the first the engine lists
    assert str(LOOPBACK) in summary["engine"]["command"]
    # The prompts are the study's questions through its template.
    assert summary["prompt_source"].endswith("data.jsonl")
    assert (out / "engine.log").is_file()


def test_bench_names_what_a_candidate_cannot_be(tmp_path: Path) -> None:
    study = write_study(tmp_path, serve=loopback_serve())
    missing = runner.invoke(app, ["bench", "nobody", "--study", str(study)])
    assert missing.exit_code == 1
    assert "no candidate named 'nobody'" in missing.stderr and "served" in missing.stderr
    local = write_study(tmp_path, gguf="model.gguf")
    result = runner.invoke(app, ["bench", "served", "--study", str(local)])
    assert result.exit_code == 1
    assert "a bench measures a server" in result.stderr and "serve:" in result.stderr
    bare = runner.invoke(app, ["bench", "localhost:8000"])
    assert bare.exit_code == 1 and "is not a URL" in bare.stderr


def test_a_real_engine_started_by_eval_and_by_select(tiny_gguf: Path, tmp_path: Path) -> None:
    """llama-cpp-python's server on a tiny GGUF, started from the study, as a user's would be."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    command = (
        f"{PYTHON} -m llama_cpp.server --model {{file}} --port {{port}} --n_ctx 256 "
        "--interrupt_requests false"
    )
    study = write_study(tmp_path, n=3, serve=command, file=str(tiny_gguf))
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    model = json.loads(result.stdout)["models"]["served"]
    assert model["metrics"]["token_f1"]["n"] == 3 and model["latency"]["ttft_p50_s"] > 0
    (log,) = engine_logs(out)
    assert "llama" in log.read_text(errors="replace").lower()

    # The same engine as a selection candidate: measured, its card read from the GGUF header.
    select_study = {
        **TASK,
        "hardware": "detect",
        "candidates": {
            "run": [{"id": "local/tiny-served", "serve": command, "file": str(tiny_gguf)}]
        },
    }
    path = tmp_path / "select.yaml"
    path.write_text(yaml.safe_dump(select_study))
    chosen = runner.invoke(app, ["select", str(path), "--out", str(tmp_path / "sel"), "--json"])
    # Exit 5, nothing recommended: the tiny model's weights license is unknown.
    assert chosen.exit_code == 5, chosen.output
    (entry,) = json.loads(chosen.stdout)["entries"]
    assert entry["id"] == "local/tiny-served" and entry["quality"]["source"] == "measured"
    assert entry["backend"].startswith("serve:")
    measured = json.loads((tmp_path / "sel" / "evaluation" / "results.json").read_text())
    assert measured["models"]["local/tiny-served"]["metrics"]["token_f1"]["n"] == 3
    assert list((tmp_path / "sel" / "evaluation" / "engines").glob("local_tiny-served-*.log"))


def test_a_served_engine_asks_a_cluster_for_its_gpus(tmp_path: Path) -> None:
    """On Ray, a serve unit holds the GPUs its engine gets (Ray sets CUDA_VISIBLE_DEVICES), and
    a candidate whose engine needs more than any node has is refused before anything runs."""
    from llmselect.errors import LLMSelectError
    from llmselect.evaluation.executors import ExecutorSpec
    from llmselect.evaluation.executors.needs import Node, check_capacity, needs_of
    from llmselect.evaluation.study import Candidate

    gpu_node = Node(node_id="n1", ip="10.0.0.1", cpus=16, gpus=4, gpu_type="H100")
    cpu_node = Node(node_id="n2", ip="10.0.0.2", cpus=8, gpus=0, gpu_type=None)
    spec = ExecutorSpec(ray="auto", cpus=2)
    tp4 = Candidate(name="tp4", serve="vllm serve {model} --port {port} -tp 4", model="m", gpus=4)
    one = Candidate(name="one", serve="llama-server -m {file} --port {port}", file="m.gguf")
    assert needs_of(tp4, tmp_path, spec, [gpu_node, cpu_node]).gpus == 4
    assert needs_of(one, tmp_path, spec, [gpu_node]).gpus == 1  # the default
    on_cpus = needs_of(one, tmp_path, spec, [cpu_node])
    assert (on_cpus.gpus, on_cpus.cpus) == (0, 2)  # a cluster without GPUs: `cpus`
    too_big = tp4.model_copy(update={"gpus": 8})
    with pytest.raises(LLMSelectError, match="needs 8 GPUs"):
        check_capacity({"tp4": needs_of(too_big, tmp_path, spec, [gpu_node])}, [gpu_node])
