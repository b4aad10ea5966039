"""`llmselect init` and `llmselect select` end to end, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()


def write_study(folder: Path, **overrides: Any) -> Path:
    study: dict[str, Any] = {
        "name": "test-study",
        "hardware": "H100-80GB",
        "targets": {"context": 4096, "concurrent_users": 4},
        "license": {"use": {"commercial": True}},
        "candidates": {"filter": {"max_params": "15B"}},
    }
    study.update(overrides)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def select_json(path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["select", str(path), "--json", "--no-report", *args])
    assert result.stdout.strip(), result.output
    return result.exit_code, json.loads(result.stdout)


def entry(selection: dict[str, Any], model_id: str) -> dict[str, Any]:
    return next(e for e in selection["entries"] if e["id"] == model_id)


def test_init_writes_a_study_that_select_runs(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "my-study")])
    assert result.exit_code == 0, result.output
    study = tmp_path / "my-study" / "study.yaml"
    assert "name: my-study" in study.read_text()
    assert (tmp_path / "my-study" / "data" / "eval.jsonl").read_text().count("\n") >= 10
    # A second init does not overwrite the user's work.
    again = runner.invoke(app, ["init", str(tmp_path / "my-study")])
    assert again.exit_code == 2 and "--force" in again.output
    code, selection = select_json(study, "--no-measure")
    assert code in (0, 5)
    assert selection["study"] == "my-study"
    ids = [e["id"] for e in selection["entries"]]
    assert "mistralai/Mistral-7B-Instruct-v0.2" in ids  # named in candidates.ids


def test_ranked_shortlist_on_named_hardware(tmp_path: Path) -> None:
    code, selection = select_json(write_study(tmp_path))
    assert code == 0
    assert selection["hardware"] == "H100-SXM-80GB"
    ranked = [e for e in selection["entries"] if e["rank"] is not None]
    assert [e["rank"] for e in ranked] == list(range(1, len(ranked) + 1))
    assert selection["recommendation"]["model"] == ranked[0]["id"]
    for e in ranked:
        assert e["exclusions"] == []
        assert e["fit"]["fits"] and e["params"] <= 15e9
        assert 0 <= e["score"] <= 1
    # Published scores only: ranked by score, and the report says so.
    published = [e for e in ranked if e["quality"] and e["quality"]["source"] == "published"]
    assert published and all(
        e["quality"]["source"] == "published" for e in ranked[: len(published)]
    )
    assert any("published benchmarks" in w for w in selection["warnings"])
    assert any(e["pareto"] for e in ranked)
    for e in selection["entries"]:
        if e["rank"] is None:
            assert e["exclusions"] and all(x["reason"] and x["key"] for x in e["exclusions"])


def test_non_commercial_models_leave_with_the_reason_and_what_would_change(
    tmp_path: Path,
) -> None:
    _, commercial = select_json(write_study(tmp_path / "a"))
    llama1 = entry(commercial, "huggyllama/llama-7b")
    license_out = [x for x in llama1["exclusions"] if x["stage"] == "license"]
    assert license_out and license_out[0]["key"] == "license.use"
    assert license_out[0]["relax"] == "if your use were non-commercial"
    _, research = select_json(write_study(tmp_path / "b", license={"use": {"commercial": False}}))
    assert not [
        x for x in entry(research, "huggyllama/llama-7b")["exclusions"] if x["stage"] == "license"
    ]


def test_conditional_licenses_can_be_refused(tmp_path: Path) -> None:
    study = write_study(
        tmp_path,
        license={"use": {"commercial": True}, "accept_conditional": False},
        candidates={
            "ids": ["meta-llama/Llama-2-13b-chat-hf", "mistralai/Mistral-7B-Instruct-v0.2"]
        },
    )
    code, selection = select_json(study)
    assert code == 0
    llama = entry(selection, "meta-llama/Llama-2-13b-chat-hf")
    assert llama["rank"] is None
    assert llama["exclusions"][0]["key"] == "license.accept_conditional"
    assert selection["recommendation"]["model"] == "mistralai/Mistral-7B-Instruct-v0.2"
    # Llama 2 13B Chat has the higher published average: the decision says what would change.
    change = " ".join(selection["recommendation"]["what_would_change"])
    assert "accept its license duties" in change and "Llama 2 13B Chat" in change


def test_impossible_constraint_explains_what_to_relax(tmp_path: Path) -> None:
    study = write_study(tmp_path, targets={"context": 4096, "tokens_per_s": 100000})
    result = runner.invoke(app, ["select", str(study), "--no-report"])
    assert result.exit_code == 5
    assert "No model meets every constraint" in result.output
    code, selection = select_json(study)
    assert code == 5 and selection["recommendation"]["model"] is None
    changes = selection["recommendation"]["what_would_change"]
    assert changes and "targets.tokens_per_s" in changes[0]
    assert all(e["rank"] is None for e in selection["entries"])


def test_models_that_do_not_fit_say_how_much_memory_they_need(tmp_path: Path) -> None:
    study = write_study(
        tmp_path,
        hardware="RTX-4090",
        targets={"context": 4096, "quant": ["bf16"]},
        candidates={"ids": ["meta-llama/Llama-2-70b-hf"]},
    )
    code, selection = select_json(study)
    assert code == 5
    out = entry(selection, "meta-llama/Llama-2-70b-hf")["exclusions"][0]
    assert out["stage"] == "sizing" and out["key"] == "hardware"
    assert "does not fit even at bf16" in out["reason"] and "GiB" in out["relax"]


@pytest.mark.parametrize(
    ("change", "bad", "field", "message"),
    [
        ({"hardware": "H10"}, "H10", "hardware", "did you mean H100-SXM-80GB"),
        (
            {"candidates": {"ids": ["meta-llama/Llama-2-7b-hg"]}},
            "Llama-2-7b-hg",
            "candidates.ids.0",
            "did you mean meta-llama/Llama-2-7b-hf",
        ),
        ({"targets": {"context": "lots"}}, "lots", "targets.context", "not a count"),
    ],
)
def test_invalid_study_names_file_line_and_key(
    tmp_path: Path, change: dict[str, Any], bad: str, field: str, message: str
) -> None:
    study = write_study(tmp_path, **change)
    line = next(n for n, text in enumerate(study.read_text().splitlines(), 1) if bad in text)
    result = runner.invoke(app, ["select", str(study), "--no-report"])
    assert result.exit_code != 0
    assert f"study.yaml:{line}: {field}: " in result.output
    assert message in result.output


def test_measured_candidates_are_scored_with_intervals(
    tmp_path: Path, local_models: dict[str, Path]
) -> None:
    rows = [
        {"id": f"q{i}", "question": f"capital of France {i}?", "answer": "Paris"} for i in range(8)
    ]
    (tmp_path / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    study = write_study(
        tmp_path,
        dataset={"path": "eval.jsonl", "fields": {"input": "question", "reference": "answer"}},
        task={"template": "Q: {{ input }} A:", "max_tokens": 4},
        targets={"context": 128},
        metrics=[{"name": "exact_match", "weight": 2}, "token_f1"],
        candidates={
            "ids": ["mistralai/Mistral-7B-Instruct-v0.2"],
            "run": [
                {"id": "acme/tiny-open", "transformers": str(local_models["open"]), "demo": True},
                {"id": "acme/tiny-nc", "transformers": str(local_models["nc"])},
            ],
        },
    )
    code, selection = select_json(study)
    assert code == 0
    tiny = entry(selection, "acme/tiny-open")
    assert tiny["demo"] and tiny["quality"]["source"] == "measured"
    assert {m["name"]: m["weight"] for m in tiny["metrics"]} == {
        "exact_match": 2.0,
        "token_f1": 1.0,
    }
    assert tiny["quality"]["low"] <= tiny["quality"]["value"] <= tiny["quality"]["high"]
    assert tiny["latency"]["p50_s"] > 0
    # Measured models rank before those with published scores only.
    assert tiny["rank"] == 1
    nc = entry(selection, "acme/tiny-nc")
    assert nc["rank"] is None and nc["exclusions"][0]["stage"] == "license"
    assert nc["metrics"], "excluded models are measured too, to say what would change"
    assert selection["comparisons"]
    samples = (tmp_path / "selection" / "evaluation" / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 16
    assert selection["reproducibility"]["dataset_sha256"]
    assert "acme/tiny-open" in selection["reproducibility"]["study_text"]


def test_a_gguf_file_is_sized_at_its_own_quantization(tmp_path: Path) -> None:
    """A GGUF candidate outside the catalog describes itself, and is sized as measured."""
    pytest.importorskip("gguf")
    from tiny_gguf import write_tiny_gguf

    write_tiny_gguf(tmp_path / "tiny.gguf", seed=0, license="apache-2.0")
    rows = [
        {"id": f"q{i}", "question": f"Q{i}: capital of France?", "answer": "Paris"}
        for i in range(4)
    ]
    (tmp_path / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    common: dict[str, Any] = {
        "dataset": {"path": "eval.jsonl", "fields": {"input": "question", "reference": "answer"}},
        "task": {"template": "{{ input }} A:", "max_tokens": 4},
        "metrics": ["exact_match"],
        "license": {"use": {"commercial": True}, "accept_unknown_data": True},
    }
    run = [{"id": "acme/tiny-gguf", "gguf": "tiny.gguf"}]
    study = write_study(tmp_path, candidates={"run": run}, targets={"context": 128}, **common)
    code, selection = select_json(study, "--no-measure")
    assert code == 0, selection
    tiny = entry(selection, "acme/tiny-gguf")
    # The header's shape (2 layers of 64) and its F32 weights; llama.cpp runs the file.
    assert tiny["fit"]["quant"] == "fp32" and tiny["tried"] == ["fp32"]
    assert tiny["fit"]["engine"] == "llama.cpp"
    assert tiny["fit"]["memory"]["weights_bytes"] == 4 * tiny["params"]

    # A precision the study does not allow excludes it, and says how to let it in.
    allowed = {"context": 128, "quant": ["Q4_K_M"]}
    study = write_study(tmp_path, candidates={"run": run}, targets=allowed, **common)
    code, selection = select_json(study, "--no-measure")
    tiny = entry(selection, "acme/tiny-gguf")
    assert tiny["rank"] is None
    assert [(x["stage"], x["key"]) for x in tiny["exclusions"]] == [("sizing", "targets.quant")]
    assert "fp32" in tiny["exclusions"][0]["relax"]

    # A missing file is named with the study's line.
    (tmp_path / "tiny.gguf").unlink()
    result = runner.invoke(app, ["select", str(study), "--no-report", "--no-measure"])
    assert result.exit_code != 0
    assert "study.yaml:" in result.output and "candidates.run.0.gguf" in result.output


def test_a_gguf_candidate_is_measured_through_llama_cpp(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from tiny_gguf import write_tiny_gguf

    write_tiny_gguf(tmp_path / "tiny.gguf", seed=0, license="apache-2.0")
    (tmp_path / "eval.jsonl").write_text(
        "".join(
            json.dumps({"question": f"Q{i}: capital?", "answer": "Paris"}) + "\n" for i in range(3)
        )
    )
    study = write_study(
        tmp_path,
        dataset={"path": "eval.jsonl", "fields": {"input": "question", "reference": "answer"}},
        task={"template": "{{ input }} A:", "max_tokens": 4},
        metrics=["exact_match"],
        targets={"context": 128},
        candidates={"run": [{"id": "acme/tiny-gguf", "gguf": "tiny.gguf"}]},
    )
    code, selection = select_json(study)
    assert code == 0, selection
    tiny = entry(selection, "acme/tiny-gguf")
    assert tiny["quality"]["source"] == "measured" and tiny["rank"] == 1
    assert tiny["latency"]["ttft_p50_s"] > 0  # streamed by llama.cpp
    assert [m["n"] for m in tiny["metrics"]] == [3]
