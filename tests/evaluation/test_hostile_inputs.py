"""Hostile and broken inputs: each ends in its own error, naming the file, the line and the
item, before anything runs where it can be known then; never a traceback, a hang or lost
results. Lengths: a line over the bound, a prompt over the model's context (with the study's
policy). Models: truncated weights, a malicious pickle, code in the folder, a chat template the
sandbox blocks. The rest: encodings, a failing metric, a damaged store, a bad --out, a runaway
template, a local path that does not exist; and the guard under every command."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openai_server import FakeServer
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()
COUNTRIES = [("France", "Paris"), ("England", "London"), ("Italy", "Rome")]


def rows(n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"q{i}", "question": f"What is the capital of {c}? ({i})", "answer": a}
        for i, (c, a) in enumerate(COUNTRIES[i % 3] for i in range(n))
    ]


def write_jsonl(path: Path, data: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in data))
    return path


def study(
    tmp_path: Path,
    candidate: dict[str, Any],
    *,
    task: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
    metrics: list[Any] | None = None,
) -> Path:
    spec = {
        "dataset": {
            "path": "data.jsonl",
            "fields": {"input": "question", "reference": "answer", "id": "id"},
            **(dataset or {}),
        },
        "task": {"template": "{{ input }} A:", "max_tokens": 8, **(task or {})},
        "metrics": metrics or ["exact_match"],
        "candidates": [{"name": "m", **candidate}],
    }
    path = tmp_path / "study.yaml"
    path.write_text(json.dumps(spec))
    return path


def api(url: str, model: str = "tiny") -> dict[str, Any]:
    return {"openai": url, "model": model, "retries": 0}


def evaluate(path: Path, out: Path, *extra: str) -> Any:
    return runner.invoke(app, ["eval", str(path), "--out", str(out), *extra])


def clean_error(result: Any) -> str:
    """The message of an error exit: code 1 or 2, no exception but the exit itself."""
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


def stored(out: Path) -> int:
    with sqlite3.connect(out / "store.sqlite") as db:
        return int(db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])


# -- 7: lengths -----------------------------------------------------------------------------


def test_a_line_over_the_bound_is_an_error_before_anything_runs(tmp_path: Path) -> None:
    data = rows(3)
    data[1]["question"] = "What is the capital of France? " + "x" * 1_200_000
    write_jsonl(tmp_path / "data.jsonl", data)
    with FakeServer() as server:
        message = clean_error(evaluate(study(tmp_path, api(server.url)), tmp_path / "out"))
        assert server.requests == 0
    assert "data.jsonl:2" in message and "1,200," in message and "max_line_bytes" in message

    # The bound is the study's to raise.
    with FakeServer() as server:
        raised = study(tmp_path, api(server.url), dataset={"max_line_bytes": 2_000_000})
        result = evaluate(raised, tmp_path / "out")
        assert result.exit_code == 0, result.output
        assert server.requests == 3

    # `data check` reads through the same loader.
    checked = clean_error(runner.invoke(app, ["data", "check", str(tmp_path / "data.jsonl")]))
    assert "data.jsonl:2" in checked and "max_line_bytes" in checked


LONG = "What is the capital of France? " * 60
"""About 600 tokens of the tiny models' tokenizer: over their 256 positions."""


def long_prompt_study(tmp_path: Path, model: Path, policy: str | None) -> Path:
    data = rows(3)
    data[1]["question"] = f"START {LONG} END"
    write_jsonl(tmp_path / "data.jsonl", data)
    task = {"on_long_prompt": policy} if policy else {}
    return study(tmp_path, {"transformers": str(model), "batch_size": 2}, task=task)


def test_a_prompt_over_a_local_models_context_stops_before_it_runs(
    tmp_path: Path, tiny_models: tuple[Path, Path]
) -> None:
    out = tmp_path / "out"
    message = clean_error(evaluate(long_prompt_study(tmp_path, tiny_models[0], None), out))
    assert "data.jsonl:2" in message and "item 'q1'" in message
    assert "max_tokens is 8" in message and "context is 256" in message
    assert "on_long_prompt" in message
    assert stored(out) == 0  # checked before the model ran on any item


def test_the_long_prompt_policy_skips_or_truncates(
    tmp_path: Path, tiny_models: tuple[Path, Path]
) -> None:
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_models[0])

    out = tmp_path / "skip"
    result = evaluate(long_prompt_study(tmp_path, tiny_models[0], "skip"), out, "--json")
    assert result.exit_code == 0, result.output
    model = json.loads((out / "results.json").read_text())["models"]["m"]
    assert model["skipped"] == ["q1"]
    assert model["metrics"]["exact_match"]["n"] == 2

    for policy, kept in (("truncate_left", " END A:"), ("truncate_right", "START What")):
        out = tmp_path / policy
        result = evaluate(long_prompt_study(tmp_path, tiny_models[0], policy), out, "--json")
        assert result.exit_code == 0, result.output
        model = json.loads((out / "results.json").read_text())["models"]["m"]
        assert model["metrics"]["exact_match"]["n"] == 3 and model["skipped"] == []
        lines = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
        prompt = next(x["prompt"] for x in lines if x["item_id"] == "q1")
        assert kept in prompt and len(prompt) < len(LONG)
        assert len(tokenizer(prompt)["input_ids"]) + 8 <= 256


def test_a_prompt_over_a_server_models_catalog_context_stops_before_any_request(
    tmp_path: Path,
) -> None:
    data = rows(3)
    data[2]["question"] = "What is the capital of Italy? " * 350  # ~10,500 characters
    write_jsonl(tmp_path / "data.jsonl", data)
    with FakeServer() as server:
        path = study(tmp_path, api(server.url, model="bigscience/bloom-560m"))
        message = clean_error(evaluate(path, tmp_path / "out"))
        assert server.requests == 0
    assert "data.jsonl:3" in message and "item 'q2'" in message
    assert "context is 2,048" in message and "bigscience/bloom-560m" in message


# -- 8: each case its own message -----------------------------------------------------------


def test_utf16_with_a_bom_is_read_and_other_encodings_are_named(tmp_path: Path) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows(3))
    (tmp_path / "data.jsonl").write_bytes(text.encode("utf-16"))  # with its byte-order mark
    with FakeServer() as server:
        result = evaluate(study(tmp_path, api(server.url)), tmp_path / "out", "--json")
        assert result.exit_code == 0, result.output
        assert server.requests == 3
    fields = ["--input-field", "question", "--reference-field", "answer"]
    checked = runner.invoke(app, ["data", "check", str(tmp_path / "data.jsonl"), *fields, "--json"])
    assert checked.exit_code in (0, 5), checked.output
    assert json.loads(checked.stdout)["rows"] == 3

    latin = text.replace("Italy", "Itàly")
    (tmp_path / "data.jsonl").write_bytes(latin.encode("latin-1"))
    with FakeServer() as server:
        message = clean_error(evaluate(study(tmp_path, api(server.url)), tmp_path / "out"))
        assert server.requests == 0
    assert "data.jsonl:3" in message and "UTF-8" in message and "0xe0" in message
    checked = clean_error(runner.invoke(app, ["data", "check", str(tmp_path / "data.jsonl")]))
    assert "data.jsonl:3" in checked and "UTF-8" in checked

    (tmp_path / "data.jsonl").write_bytes(text.encode("utf-16-le"))  # no byte-order mark
    message = clean_error(runner.invoke(app, ["data", "check", str(tmp_path / "data.jsonl")]))
    assert "data.jsonl:1" in message and "UTF-16" in message


def copy_model(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_truncated_weights_are_named(tmp_path: Path, tiny_models: tuple[Path, Path]) -> None:
    folder = copy_model(tiny_models[0], tmp_path / "cut")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    write_jsonl(tmp_path / "data.jsonl", rows(2))
    message = clean_error(evaluate(study(tmp_path, {"transformers": str(folder)}), tmp_path / "o"))
    assert "model.safetensors" in message and "truncated" in message


class Payload:
    """Unpickling this makes a folder: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def test_a_malicious_pickle_is_refused_with_a_clean_error(
    tmp_path: Path, tiny_models: tuple[Path, Path]
) -> None:
    folder = copy_model(tiny_models[0], tmp_path / "evil")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "code-ran"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Payload(marker)))
    write_jsonl(tmp_path / "data.jsonl", rows(2))
    path = study(tmp_path, {"transformers": str(folder), "allow_pickle": True})
    message = clean_error(evaluate(path, tmp_path / "out"))
    assert "pytorch_model.bin" in message and "refused" in message
    assert not marker.exists()


def test_code_in_the_folder_needs_the_flag_by_name(
    tmp_path: Path, tiny_models: tuple[Path, Path]
) -> None:
    folder = copy_model(tiny_models[0], tmp_path / "remote")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "acme-lm"
    config["auto_map"] = {"AutoConfig": "acme.Config", "AutoModelForCausalLM": "acme.Model"}
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "code-ran"
    (folder / "acme.py").write_text(f"import os\nos.mkdir({str(marker)!r})\n")
    write_jsonl(tmp_path / "data.jsonl", rows(2))
    message = clean_error(evaluate(study(tmp_path, {"transformers": str(folder)}), tmp_path / "o"))
    assert "config.json" in message and "trust_remote_code: true" in message
    assert not marker.exists()


def test_a_chat_template_the_sandbox_blocks_is_a_clear_error(
    tmp_path: Path, tiny_models: tuple[Path, Path]
) -> None:
    folder = copy_model(tiny_models[0], tmp_path / "chat")
    (folder / "chat_template.jinja").write_text(
        "{{ messages.__class__.__mro__[1].__subclasses__() }}"
    )
    write_jsonl(tmp_path / "data.jsonl", rows(2))
    path = study(tmp_path, {"transformers": str(folder)}, task={"chat": True})
    message = clean_error(evaluate(path, tmp_path / "out"))
    assert "chat template" in message and "chat_template.jinja" in message
    assert "chat: false" in message


def test_a_metric_that_raises_names_the_item_and_keeps_the_outputs(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", rows(6))
    metric = tmp_path / "mine.py"
    metric.write_text(
        "def score(output, reference):\n"
        "    if reference == 'Rome':\n"
        "        raise ValueError('no Rome here')\n"
        "    return 1.0\n"
    )
    metrics = [{"name": "mine", "python": "mine.py:score"}]
    out = tmp_path / "out"
    with FakeServer() as server:
        path = study(tmp_path, api(server.url), metrics=metrics)
        message = clean_error(evaluate(path, out))
        assert "metric 'mine' failed on item 'q2'" in message
        assert "ValueError: no Rome here" in message and "data.jsonl:3" in message
        assert stored(out) == 6

        metric.write_text("def score(output, reference):\n    return 1.0\n")
        fixed = evaluate(path, out, "--json")
        assert fixed.exit_code == 0, fixed.output
        assert server.requests == 6  # scored from the store, nothing sent again


def test_a_damaged_store_is_found_before_the_model_runs(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", rows(300))
    out = tmp_path / "out"
    with FakeServer() as server:
        path = study(tmp_path, api(server.url))
        assert evaluate(path, out).exit_code == 0
        sent = server.requests
        store = out / "store.sqlite"
        assert not Path(f"{store}-wal").exists() or Path(f"{store}-wal").stat().st_size == 0
        data = bytearray(store.read_bytes())
        page = 4096
        assert len(data) > 6 * page
        data[3 * page : 5 * page] = b"\x0d\xff" * page  # two pages of garbage mid-file
        store.write_bytes(bytes(data))
        write_jsonl(tmp_path / "data.jsonl", rows(310))
        message = clean_error(evaluate(path, out))
        assert server.requests == sent
    assert "store.sqlite" in message and "--fresh" in message


def test_an_out_that_is_a_file_or_unwritable_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    write_jsonl(tmp_path / "data.jsonl", rows(2))
    (tmp_path / "a-file").write_text("not a folder")
    with FakeServer() as server:
        path = study(tmp_path, api(server.url))
        message = clean_error(evaluate(path, tmp_path / "a-file"))
        assert "--out" in message and "a-file" in message and "names a file" in message
        message = clean_error(evaluate(path, tmp_path / "a-file" / "results"))
        assert "--out" in message and "cannot write" in message
        assert server.requests == 0
    assert (tmp_path / "a-file").read_text() == "not a folder"


def test_a_runaway_template_is_an_error_not_a_hang(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", rows(2))
    with FakeServer() as server:
        task = {"template": "{% for i in range(10**9) %}x{% endfor %}{{ input }}"}
        message = clean_error(evaluate(study(tmp_path, api(server.url), task=task), tmp_path / "o"))
        assert server.requests == 0
    assert "task.template" in message and "item 'q0'" in message and "data.jsonl:1" in message

    # Nested loops of allowed ranges: bounded too. In a process of its own, so that a hang is
    # a failed test, not a stuck suite.
    nested = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    path = study(tmp_path, api("http://127.0.0.1:9/v1"), task={"template": nested})
    done = subprocess.run(
        [sys.executable, "-m", "llmselect", "eval", str(path), "--out", str(tmp_path / "n")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "sandbox's bounds" in done.stderr and "Traceback" not in done.stderr


def test_a_local_looking_path_that_does_not_exist_is_not_a_hub_id(tmp_path: Path) -> None:
    for source in ("./nonexistent-folder", str(tmp_path / "missing"), "models/a/b"):
        message = clean_error(runner.invoke(app, ["catalog", "import", source]))
        assert "no such file or folder" in message and Path(source).name in message


# -- the floor: the guard at the CLI boundary -------------------------------------------------


def test_an_unexpected_exception_is_one_line_and_a_debug_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import llmselect.catalog.importers as importers

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("something nobody foresaw\nsecond line")

    monkeypatch.setattr(importers, "import_any", broken)
    result = runner.invoke(app, ["catalog", "import", "org/name"])
    message = clean_error(result)
    assert "unexpected RuntimeError: something nobody foresaw" in message
    assert "second line" not in message and "--debug" in message

    as_json = runner.invoke(app, ["catalog", "import", "org/name", "--json"])
    assert json.loads(as_json.stdout)["error"]["message"].startswith("unexpected RuntimeError")

    debug = runner.invoke(app, ["--debug", "catalog", "import", "org/name"])
    assert isinstance(debug.exception, RuntimeError)
