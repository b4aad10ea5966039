"""Local generation with transformers: time to first token, stopping early at a stop string,
and the static-cache compiled path (CPU and CUDA) giving the same greedy text as the dynamic one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.evaluation.backends.base import GenerationSettings, apply_stop

runner = CliRunner()
PROMPTS = [f"Q: What is the capital of {place}? A:" for place in ("France", "England", "Italy")]
PROMPTS += ["Q: What is two plus two? A:", "Q: Name a city. A:"]


def backend(model: Path, **options: Any) -> Any:
    pytest.importorskip("torch")
    from llmselect.evaluation.backends.transformers_backend import TransformersBackend

    return TransformersBackend(model, name=str(model), **options)


def first_word(text: str) -> tuple[str, int] | None:
    """The first run of two ASCII letters or more (the tiny model writes mostly byte noise)."""
    found = re.search(r"[A-Za-z]{2,}", text)
    return (found.group(), found.end()) if found else None


def test_time_to_first_token_is_measured_per_batch(tiny_models: tuple[Path, Path]) -> None:
    local = backend(tiny_models[1], batch_size=1, device="cpu")
    outputs = local.generate(PROMPTS[:2], GenerationSettings(max_tokens=16))
    for out in outputs:
        assert out.output_tokens > 1
        # The first token comes strictly before the whole answer.
        assert out.ttft_s is not None and 0 < out.ttft_s < out.seconds


def test_batch_shares_its_time_to_first_token(tiny_models: tuple[Path, Path]) -> None:
    local = backend(tiny_models[1], batch_size=5, device="cpu")
    outputs = local.generate(PROMPTS, GenerationSettings(max_tokens=8))
    assert len({out.ttft_s for out in outputs}) == 1
    ttft = outputs[0].ttft_s
    # `seconds` is the batch's time over its prompts; the first token came before the batch ended.
    assert ttft is not None and 0 < ttft < outputs[0].seconds * len(outputs)


def test_eval_reports_time_to_first_token(tmp_path: Path, tiny_models: tuple[Path, Path]) -> None:
    rows = [{"id": f"q{i}", "question": p, "answer": "Paris"} for i, p in enumerate(PROMPTS)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    study = {
        "name": "ttft",
        "dataset": {"path": "data.jsonl", "fields": {"input": "question", "reference": "answer"}},
        "task": {"kind": "generate", "max_tokens": 6},
        "metrics": ["exact_match"],
        "candidates": [{"name": "tiny", "transformers": str(tiny_models[1]), "batch_size": 2}],
    }
    (tmp_path / "study.yaml").write_text(json.dumps(study))
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", str(tmp_path / "study.yaml"), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    latency = json.loads((out / "results.json").read_text())["models"]["tiny"]["latency"]
    assert latency["ttft_p50_s"] is not None
    assert 0 < latency["ttft_p50_s"] <= latency["ttft_p99_s"]


def test_stop_string_ends_generation_early_with_the_same_text(
    tiny_models: tuple[Path, Path],
) -> None:
    max_tokens = 32
    local = backend(tiny_models[1], batch_size=1, device="cpu")
    full = local.generate(PROMPTS, GenerationSettings(max_tokens=max_tokens))
    # A stop string the model does produce, early in one of its answers.
    words = [(*found, i) for i, out in enumerate(full) if (found := first_word(out.text))]
    assert words, [out.text for out in full]
    stop, _, index = min(words, key=lambda found: found[1])
    stopped = local.generate(PROMPTS, GenerationSettings(max_tokens=max_tokens, stop=[stop]))
    for before, after in zip(full, stopped, strict=True):
        assert after.text == apply_stop(before.text, [stop])
    assert stopped[index].text == full[index].text[: full[index].text.index(stop)]
    assert stopped[index].output_tokens < full[index].output_tokens
    # Answers without the stop string still run as long as before.
    for before, after in zip(full, stopped, strict=True):
        if stop not in before.text:
            assert after.output_tokens == before.output_tokens


def test_stop_string_in_a_batch_stops_only_its_own_row(tiny_models: tuple[Path, Path]) -> None:
    max_tokens = 24
    local = backend(tiny_models[1], batch_size=len(PROMPTS), device="cpu")
    full = local.generate(PROMPTS, GenerationSettings(max_tokens=max_tokens))
    words = [(*found, i) for i, out in enumerate(full) if (found := first_word(out.text))]
    assert words, [out.text for out in full]
    stop, _, index = min(words, key=lambda found: found[1])
    stopped = local.generate(PROMPTS, GenerationSettings(max_tokens=max_tokens, stop=[stop]))
    assert [s.text for s in stopped] == [apply_stop(f.text, [stop]) for f in full]
    assert stopped[index].output_tokens < full[index].output_tokens


def test_stop_string_that_begins_in_the_prompt_does_not_stop(
    tiny_models: tuple[Path, Path],
) -> None:
    """apply_stop cuts the output alone, so a stop string that starts in the prompt must not end
    generation (transformers' own `stop_strings` looks at prompt and output together)."""
    torch = pytest.importorskip("torch")
    from transformers import AutoTokenizer, StopStringCriteria

    from llmselect.evaluation.backends.transformers_hooks import StopInOutput

    tokenizer = AutoTokenizer.from_pretrained(tiny_models[1])
    prompt = tokenizer("Q: What is the capital of France? A:")["input_ids"]
    answer = tokenizer(" Paris")["input_ids"]
    ids = torch.tensor([prompt + answer])
    across = ": Paris"
    assert bool(StopStringCriteria(tokenizer, [across])(ids, None)[0])
    assert not bool(StopInOutput(tokenizer, [across], len(prompt))(ids, None)[0])
    assert bool(StopInOutput(tokenizer, ["Par"], len(prompt))(ids, None)[0])
    # Row by row: only the row whose output holds the stop string is done.
    other = tokenizer(" Rome")["input_ids"]
    assert len(other) == len(answer) == 1
    both = torch.tensor([prompt + answer, prompt + other])
    assert StopInOutput(tokenizer, ["Paris"], len(prompt))(both, None).tolist() == [True, False]


# -- the compiled decode path: static cache and a compiled step -----------------------------


def test_compile_auto_keeps_the_dynamic_cache_on_the_cpu(tiny_models: tuple[Path, Path]) -> None:
    local = backend(tiny_models[1], device="cpu")
    local.generate(PROMPTS[:1], GenerationSettings(max_tokens=2))
    assert (local.compile, local.compiled, local._warm_shapes) == (False, False, set())
    assert local.engine == "cpu"


def test_compile_true_on_the_cpu_gives_the_dynamic_paths_greedy_text(
    tiny_models: tuple[Path, Path],
) -> None:
    pytest.importorskip("torch")
    from torch._dynamo.utils import counters

    settings = GenerationSettings(max_tokens=20)
    # One batch of all five prompts: one shape, so one compile (some 20 s on two cores).
    dynamic = backend(tiny_models[1], batch_size=len(PROMPTS), device="cpu", compile=False)
    expected = [out.text for out in dynamic.generate(PROMPTS, settings)]
    assert len(set(expected)) > 1 and not dynamic.compiled
    compiled = backend(tiny_models[1], batch_size=len(PROMPTS), device="cpu", compile=True)
    assert [out.text for out in compiled.generate(PROMPTS, settings)] == expected
    assert compiled.compiled and len(compiled._warm_shapes) == 1
    # The CPU has one sizing profile, whichever path decoded.
    assert dynamic.engine == compiled.engine == "cpu"

    # Another call of the same shape reuses the step: no warm-up, and dynamo compiles nothing.
    shapes, frames = set(compiled._warm_shapes), counters["frames"]["total"]
    again = compiled.generate(PROMPTS[::-1], settings)
    assert [out.text for out in again] == expected[::-1]
    assert compiled._warm_shapes == shapes and counters["frames"]["total"] == frames


def test_the_study_option_reaches_the_backend(tiny_models: tuple[Path, Path]) -> None:
    pytest.importorskip("torch")
    from llmselect.evaluation.backends import open_backend
    from llmselect.evaluation.study import Candidate

    folder = tiny_models[1]
    for option, expected in (("auto", False), (True, True), (False, False)):
        candidate = Candidate(name="t", transformers=folder.name, compile=option)
        local = open_backend(candidate, folder.parent)
        assert local.compile is expected, option
        local.close()


# -- CUDA -------------------------------------------------------------------------------------


def cuda_or_skip() -> Any:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch


@pytest.mark.gpu
def test_compile_auto_is_on_for_cuda(tiny_models: tuple[Path, Path]) -> None:
    cuda_or_skip()
    assert backend(tiny_models[1], device="cuda").compile is True
    assert backend(tiny_models[1], device="cpu").compile is False


@pytest.mark.gpu
@pytest.mark.parametrize("batch_size", [1, 3])
def test_compiled_step_gives_the_dynamic_paths_greedy_text(
    tiny_models: tuple[Path, Path], batch_size: int
) -> None:
    torch = cuda_or_skip()
    runs = {}
    for compile in (False, True):
        local = backend(tiny_models[1], batch_size=batch_size, device="cuda", compile=compile)
        # float32 on both paths: a random tiny model's logits are close, bf16 could flip ties.
        local.model.to(torch.float32)
        settings = GenerationSettings(max_tokens=20)
        runs[compile] = [out.text for out in local.generate(PROMPTS, settings)]
        # A second call reuses the compiled step; its outputs do not change.
        assert [out.text for out in local.generate(PROMPTS, settings)] == runs[compile]
        if compile:
            assert local._warm_shapes, "the static path did not run"
        assert local.compiled is compile
        assert local.engine == ("transformers-compiled" if compile else "transformers-eager")
    assert runs[True] == runs[False]


@pytest.mark.gpu
def test_a_model_is_spread_over_the_gpus_it_is_given(tiny_models: tuple[Path, Path]) -> None:
    """A Ray unit that sizing gave several GPUs (or CUDA_VISIBLE_DEVICES with several) loads
    the layers over all of them, and writes the greedy text of a one-device run."""
    torch = cuda_or_skip()
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA GPUs")
    settings = GenerationSettings(max_tokens=8)
    prompts = ["The capital of France is", "Once upon a time"]
    spread = backend(tiny_models[1], device="cuda")
    assert spread.spread and spread.compile is False
    devices = {str(p.device) for p in spread.model.parameters()}
    assert len(devices) >= 2, devices
    one = backend(tiny_models[1], device="cuda:0", compile=False)
    assert not one.spread
    assert [g.text for g in spread.generate(prompts, settings)] == [
        g.text for g in one.generate(prompts, settings)
    ]
