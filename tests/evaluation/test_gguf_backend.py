"""The GGUF backend (llama-cpp-python) on tiny Llama GGUF files written on the fly."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.errors import LLMSelectError
from llmselect.evaluation.backends import GenerationSettings, open_backend
from llmselect.evaluation.backends.gguf_backend import GGUFBackend
from llmselect.evaluation.study import Candidate
from tiny_gguf import write_tiny_gguf

llama_cpp = pytest.importorskip("llama_cpp")

runner = CliRunner()
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant]{% endif %}"
)
PROMPT = "Q: What is the capital of France? A:"
CHOICES = [" Paris", " London", " Rome", " four", " Berlin"]


@pytest.fixture(scope="module")
def gguf_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gguf")
    return {
        "chat": write_tiny_gguf(root / "chat.gguf", seed=1, chat_template=CHAT_TEMPLATE),
        "plain": write_tiny_gguf(root / "plain.gguf", seed=2),
        "ends": write_tiny_gguf(root / "ends.gguf", seed=3, ends_at_once=True),
        # A template that reaches for Python's internals, as a hostile file's might.
        "hostile": write_tiny_gguf(
            root / "hostile.gguf", seed=4, chat_template="{{ bos_token.__class__.__mro__ }}"
        ),
    }


@pytest.fixture(scope="module")
def backend(gguf_files: dict[str, Path]) -> Any:
    # One thread: a tiny model gains nothing from more, and waits for busy cores with them.
    opened = GGUFBackend(gguf_files["chat"], name="tiny", n_threads=1)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def reference(gguf_files: dict[str, Path]) -> Any:
    """llama.cpp used directly, every position's logits kept: the numbers to compare with."""
    llm = llama_cpp.Llama(
        model_path=str(gguf_files["chat"]),
        n_ctx=256,
        logits_all=True,
        n_threads=1,
        n_threads_batch=1,
        verbose=False,
    )
    yield llm
    llm.close()


def logprobs_of(llm: Any, tokens: list[int]) -> np.ndarray[Any, Any]:
    """Row i: the log-probabilities of the token after tokens[: i + 1]."""
    llm.reset()
    llm.eval(tokens)
    return np.asarray(llm.logits_to_logprobs(llm.scores[: len(tokens)]))


def direct_loglikelihood(llm: Any, context: str, continuation: str) -> float:
    whole = llm.tokenize((context + continuation).encode(), add_bos=True, special=True)
    n_context = len(llm.tokenize(context.encode(), add_bos=True, special=True))
    logprobs = logprobs_of(llm, whole)
    return float(sum(logprobs[i - 1, whole[i]] for i in range(n_context, len(whole))))


# -- generation ---------------------------------------------------------------------------


def test_generation_is_greedy_and_respects_max_tokens(backend: Any, reference: Any) -> None:
    (out,) = backend.generate([PROMPT], GenerationSettings(max_tokens=5))
    assert out.output_tokens == 5 and out.text
    tokens = reference.tokenize(PROMPT.encode(), add_bos=True, special=True)
    assert out.prompt_tokens == len(tokens)
    assert out.ttft_s is not None and 0 < out.ttft_s <= out.seconds
    # Greedy: the first token is the most likely one after the prompt in llama.cpp's logits.
    first = int(np.argmax(logprobs_of(reference, tokens)[-1]))
    assert out.text.startswith(reference.detokenize([first]).decode())
    again = backend.generate([PROMPT, PROMPT], GenerationSettings(max_tokens=5))
    assert [g.text for g in again] == [out.text, out.text]


def test_generation_stops_at_a_stop_sequence(backend: Any) -> None:
    (full,) = backend.generate([PROMPT], GenerationSettings(max_tokens=12))
    stop = next(c for c in full.text[2:] if c.strip())
    (cut,) = backend.generate([PROMPT], GenerationSettings(max_tokens=12, stop=[stop]))
    assert cut.text == full.text[: full.text.index(stop)]
    # Generation ends as soon as the stop sequence is written, not at max_tokens.
    assert cut.output_tokens < full.output_tokens


def test_generation_ends_at_the_end_of_sequence_token(gguf_files: dict[str, Path]) -> None:
    ends = GGUFBackend(gguf_files["ends"], name="ends", n_threads=1)
    (out,) = ends.generate([PROMPT], GenerationSettings(max_tokens=8))
    ends.close()
    assert out.text == "" and out.output_tokens == 0
    assert out.ttft_s is not None


def test_a_prompt_longer_than_the_context_is_a_clear_error(backend: Any) -> None:
    with pytest.raises(LLMSelectError, match="more than the 256-token context"):
        backend.generate(["Paris " * 300], GenerationSettings(max_tokens=4))


# -- chat ---------------------------------------------------------------------------------


def test_chat_uses_the_files_own_template_with_one_bos(backend: Any, reference: Any) -> None:
    assert backend.chat_prompt("hi") == "<s>[user] hi\n[assistant]"
    (out,) = backend.generate(["hi"], GenerationSettings(max_tokens=3, chat=True))
    # The template writes the BOS token itself: the backend does not add a second one.
    tokens = reference.tokenize(b"<s>[user] hi\n[assistant]", add_bos=False, special=True)
    assert tokens[0] == reference.token_bos() and tokens[1] != reference.token_bos()
    assert out.prompt_tokens == len(tokens)


def test_a_file_without_chat_template_is_a_clear_error(gguf_files: dict[str, Path]) -> None:
    plain = GGUFBackend(gguf_files["plain"], name="plain", n_threads=1)
    with pytest.raises(LLMSelectError, match="has no chat template") as caught:
        plain.chat_prompt("hi")
    plain.close()
    assert caught.value.field == "task.chat"


def test_a_chat_template_runs_sandboxed(gguf_files: dict[str, Path]) -> None:
    hostile = GGUFBackend(gguf_files["hostile"], name="hostile", n_threads=1)
    with pytest.raises(LLMSelectError, match="the chat template of hostile fails"):
        hostile.chat_prompt("hi")
    hostile.close()


# -- log-likelihoods ----------------------------------------------------------------------


def test_loglikelihoods_match_llama_cpp_logits(backend: Any, reference: Any) -> None:
    requests = [(PROMPT, c) for c in CHOICES]
    scores = backend.loglikelihoods(requests)
    expected = [direct_loglikelihood(reference, PROMPT, c) for c in CHOICES]
    assert scores == pytest.approx(expected, abs=1e-4)
    assert all(s < 0 for s in scores)
    assert np.argsort(scores).tolist() == np.argsort(expected).tolist()
    # Reading shared prefixes from the cache changes nothing: any order gives the same scores.
    shuffled = backend.loglikelihoods(requests[::-1])
    assert shuffled[::-1] == pytest.approx(scores, abs=1e-5)


def test_loglikelihoods_follow_the_chain_rule(backend: Any) -> None:
    (both,) = backend.loglikelihoods([(PROMPT, " Paris is")])
    first, second = backend.loglikelihoods([(PROMPT, " Paris"), (PROMPT + " Paris", " is")])
    assert both == pytest.approx(first + second, abs=1e-4)


def test_generation_after_scoring_reads_its_own_prompt(backend: Any) -> None:
    (fresh,) = backend.generate([PROMPT], GenerationSettings(max_tokens=4))
    # The second request's context is all in the cache: the state must still be its own.
    backend.loglikelihoods([(PROMPT, " Paris is"), (PROMPT, " Paris")])
    (after,) = backend.generate([PROMPT], GenerationSettings(max_tokens=4))
    assert after.text == fresh.text


def test_a_trailing_space_moves_to_the_continuation(backend: Any) -> None:
    # As lm-evaluation-harness does: "A: " + "Paris" is scored as "A:" + " Paris".
    spaced, plain = backend.loglikelihoods([(PROMPT + " ", "Paris"), (PROMPT, " Paris")])
    assert spaced == pytest.approx(plain, abs=1e-6)


def test_rolling_loglikelihood_matches_lm_eval_windows(backend: Any, reference: Any) -> None:
    lm_utils = pytest.importorskip("lm_eval.utils")
    text = "What is the capital of Italy? Rome. What is the capital of England? London."
    tokens = reference.tokenize(text.encode(), add_bos=False, special=True)
    assert len(tokens) > 20
    bos = reference.token_bos()
    for max_length in (8, 256):
        expected = 0.0
        windows = lm_utils.get_rolling_token_windows(tokens, bos, max_length, 1)
        for context, predicted in map(lm_utils.make_disjoint_window, windows):
            read = (context + predicted)[:-1]
            logprobs = logprobs_of(reference, read)[-len(predicted) :]
            expected += float(logprobs[np.arange(len(predicted)), predicted].sum())
        (score,) = backend.loglikelihood_rolling([text], max_length)
        assert score == pytest.approx(expected, abs=1e-3)
    # One window over the whole text is the continuation's log-likelihood from BOS alone.
    (whole,) = backend.loglikelihoods([("", text)])
    assert backend.loglikelihood_rolling([text]) == pytest.approx([whole], abs=1e-4)


# -- files and the study ------------------------------------------------------------------


def test_only_gguf_files_are_read(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b'{"__metadata__": {}}' + bytes(64))
    with pytest.raises(LLMSelectError, match="not a GGUF file") as caught:
        GGUFBackend(fake, name="fake")
    assert caught.value.file == str(fake)
    with pytest.raises(LLMSelectError, match="no such GGUF file"):
        GGUFBackend(tmp_path / "missing.gguf", name="missing")


def test_without_llama_cpp_the_error_says_what_to_install(
    gguf_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(LLMSelectError, match="needs llama-cpp-python") as caught:
        GGUFBackend(gguf_files["plain"], name="plain")
    assert ".[gguf]" in (caught.value.hint or "")


def test_open_backend_gives_a_gguf_candidate_this_backend(gguf_files: dict[str, Path]) -> None:
    path = gguf_files["plain"]
    candidate = Candidate(name="g", gguf=path.name)
    opened = open_backend(candidate, path.parent)
    assert isinstance(opened, GGUFBackend)
    assert opened.name == f"gguf:{path.resolve()}"
    opened.close()


def write_study(tmp_path: Path, model: Path, kind: str) -> Path:
    answers = ["Paris", "London", "Rome", "four"]
    rows = [
        {"id": f"q{i}", "question": f"What is item {i}?", "answer": answers[i], "options": answers}
        for i in range(4)
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if kind == "generate":
        fields, task, metrics = "", 'max_tokens: 6, stop: ["?"]', "[exact_match, contains]"
    else:
        fields, task, metrics = "choices: options, ", "", "[]"
    study = tmp_path / "study.yaml"
    study.write_text(
        f"""
name: tiny-gguf
dataset: {{path: data.jsonl, fields: {{input: question, reference: answer, {fields}id: id}}}}
task: {{kind: {kind}, template: "Q: {{{{ input }}}} A:", {task}}}
metrics: {metrics}
candidates:
  - {{name: tiny-gguf, gguf: {model}}}
"""
    )
    return study


def test_eval_cli_generates_with_a_gguf_candidate(
    tmp_path: Path, gguf_files: dict[str, Path]
) -> None:
    study = write_study(tmp_path, gguf_files["plain"], "generate")
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    model = json.loads((out / "results.json").read_text())["models"]["tiny-gguf"]
    assert set(model["metrics"]) == {"exact_match", "contains"}
    assert model["metrics"]["exact_match"]["n"] == 4
    assert model["latency"]["p50_s"] > 0
    # The sizing profile its speed measures: llama.cpp on a GPU build, the CPU profile here.
    assert model["engine"] == ("llama.cpp" if model["device"] == "gpu" else "cpu")
    lines = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert [x["item_id"] for x in lines] == ["q0", "q1", "q2", "q3"]
    assert all("?" not in x["output"] and x["prompt"].startswith("Q: What") for x in lines)


def test_eval_cli_scores_multiple_choice_with_a_gguf_candidate(
    tmp_path: Path, gguf_files: dict[str, Path], reference: Any
) -> None:
    study = write_study(tmp_path, gguf_files["chat"], "multiple_choice")
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "results.json").read_text())["models"]["tiny-gguf"]["metrics"]
    assert set(metrics) == {"acc", "acc_norm"} and metrics["acc"]["n"] == 4
    line = json.loads((out / "samples.jsonl").read_text().splitlines()[0])
    expected = direct_loglikelihood(reference, line["prompt"], " Paris")
    assert line["loglikelihoods"][0] == pytest.approx(expected, abs=1e-4)


def test_eval_cli_names_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(bytes(32))
    study = write_study(tmp_path, tmp_path / "model.safetensors", "generate")
    result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "model.safetensors" in result.stderr and "not a GGUF file" in result.stderr
