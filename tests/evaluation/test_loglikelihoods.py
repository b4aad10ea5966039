"""Batched multiple-choice scoring: the same numbers as one plain forward pass per request.

The reference here is the definition itself: the model reads the context and the continuation
(lm-evaluation-harness's tokens: the context tokenized alone, the continuation cut from the
whole), and the continuation's tokens' log-probabilities are summed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llmselect.evaluation.backends.transformers_backend import TransformersBackend  # noqa: E402

REQUESTS = [
    ("Q: What is the capital of France?\nA:", " Paris"),
    ("Q: What is the capital of France?\nA:", " the city of London"),
    ("Q: What is two plus two?\nA: ", "four"),  # the space moves to the continuation
    ("Q: What is the capital of Italy? A long question, longer than the others.\nA:", " Rome"),
    ("Q: What is two plus two?\nA:", " the city of Rome"),
    ("", "Paris"),  # no context: predicted from the start token
]


def reference(backend: TransformersBackend, context: str, continuation: str) -> float:
    """One request alone, unpadded, every position projected."""
    tok = backend.tokenizer
    stripped = context.rstrip()
    context, continuation = stripped, context[len(stripped) :] + continuation
    if context:
        head = tok(context)["input_ids"]
        tail = tok(context + continuation)["input_ids"][len(head) :]
    else:
        head, tail = [tok.eos_token_id], tok(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([head + tail])
    with torch.no_grad():
        logprobs = torch.log_softmax(backend.model(ids).logits[0].float(), -1)
    return sum(float(logprobs[len(head) - 1 + i, t]) for i, t in enumerate(tail))


def counting_rows(backend: TransformersBackend) -> list[int]:
    """Rows of every forward pass the backend makes from now on."""
    rows: list[int] = []
    original = backend.model.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        rows.append(int(kwargs["input_ids"].shape[0]))
        return original(*args, **kwargs)

    backend.model.forward = forward
    return rows


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_batched_scores_equal_one_request_at_a_time(
    tiny_models: tuple[Path, Path], batch_size: int
) -> None:
    backend = TransformersBackend(tiny_models[1], name="b", batch_size=batch_size)
    expected = [reference(backend, c, x) for c, x in REQUESTS]
    rows = counting_rows(backend)
    scores = backend.loglikelihoods(REQUESTS)
    assert scores == pytest.approx(expected, abs=1e-4)
    # All six requests differ, so each is one row; batches of at most `batch_size`.
    assert sum(rows) == len(REQUESTS) and max(rows) <= batch_size
    assert len(rows) == -(-len(REQUESTS) // batch_size)


def test_choices_of_one_token_share_one_row(tiny_models: tuple[Path, Path]) -> None:
    backend = TransformersBackend(tiny_models[1], name="b", batch_size=8)
    tok = backend.tokenizer
    questions = [f"Q: What is the capital of {country}?\nA:" for country in ("France", "Italy")]
    # Choices that are one token after the prompt, as " A" to " D" are for real tokenizers.
    head = tok(questions[0])["input_ids"]
    single = [
        x
        for x in (" A", " Paris", " Rome", " four", "B", "C", "D", "x", "y")
        if len(tok(questions[0] + x)["input_ids"]) == len(head) + 1
    ]
    assert len(single) >= 4
    requests = [(q, x) for q in questions for x in single[:4]]
    expected = [reference(backend, c, x) for c, x in requests]
    rows = counting_rows(backend)
    scores = backend.loglikelihoods(requests)
    # Two questions, two model inputs: the letters are read off the same positions.
    assert rows == [2]
    assert scores == pytest.approx(expected, abs=1e-4)
    assert len(set(scores[:4])) == 4


def test_a_context_longer_than_the_model_loses_its_oldest_tokens(
    short_context_model: Path,
) -> None:
    backend = TransformersBackend(short_context_model, name="s", batch_size=4)
    tok = backend.tokenizer
    context = " ".join(["Q: What is the capital of France?"] * 4) + "\nA:"
    head = tok(context)["input_ids"]
    tail = tok(context + " Paris")["input_ids"][len(head) :]
    length = 16
    assert len(head) + len(tail) > length + 1
    # lm-evaluation-harness: the last `length + 1` tokens, the final one only predicted.
    ids = torch.tensor([(head + tail)[-(length + 1) :][:-1]])
    with torch.no_grad():
        logprobs = torch.log_softmax(backend.model(ids).logits[0].float(), -1)
    expected = sum(float(logprobs[length - len(tail) + i, t]) for i, t in enumerate(tail))
    (score,) = backend.loglikelihoods([(context, " Paris")])
    assert score == pytest.approx(expected, abs=1e-4)
