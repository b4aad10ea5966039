"""The one interface every backend implements: adding a backend is adding one file."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel

from llmselect.errors import LLMSelectError


class GenerationSettings(BaseModel):
    max_tokens: int = 64
    stop: list[str] = []
    temperature: float = 0.0
    chat: bool = False
    """Wrap each prompt as a user message in the model's own chat template."""


class Generation(BaseModel):
    text: str
    prompt_tokens: int
    output_tokens: int
    seconds: float
    """End-to-end time of this answer: how long its prompt waited for it (for answers generated
    in one batch, the batch's time)."""
    ttft_s: float | None = None
    """Time to first token, where the backend streams."""
    batch_rows: int = 1
    """How many answers were generated together in `seconds`."""


class ItemFailed(LLMSelectError):
    """One item got no usable output (a server answered a web page, or kept cutting its stream):
    the runner records it, stores nothing for it, goes on with the others and reports it."""


class Backend(Protocol):
    name: str
    """What produced the outputs, for the cache key: model path or URL and engine."""

    def generate(self, prompts: list[str], settings: GenerationSettings) -> list[Generation]: ...

    def chat_prompt(self, prompt: str) -> str:
        """The prompt as a user turn in the model's chat template, ready for the assistant."""
        ...

    def loglikelihoods(self, requests: list[tuple[str, str]]) -> list[float]:
        """Sum of log-probabilities of each continuation given its context."""
        ...

    def loglikelihood_rolling(self, texts: list[str], max_length: int | None = None) -> list[float]:
        """Total log-probability (natural log) of each whole text, as lm-evaluation-harness's
        `loglikelihood_rolling`: windows of `max_length` tokens (default: the model's own)."""
        ...

    def close(self) -> None: ...


def apply_stop(text: str, stop: list[str]) -> str:
    """Cut the text at the first stop sequence."""
    cut = len(text)
    for sequence in stop:
        index = text.find(sequence)
        if sequence and index != -1:
            cut = min(cut, index)
    return text[:cut]


# -- where a local backend runs -------------------------------------------------------------
# A backend that runs the model in this process has `device` ("cpu", "cuda", "cuda:1"), a torch
# `model` (transformers) and `engine`, the sizing engine profile its speed measures; a server's
# backend has none of them. The runner measures memory here, outside the backends, so every
# local backend on CUDA reports it the same way.

_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def local_device(backend: object) -> str | None:
    device = getattr(backend, "device", None)
    return str(device) if device is not None else None


def local_engine(backend: object) -> str | None:
    """The id of the engine profile in `sizing/data/engines.yaml` whose speed this run
    measures (what `eval` records for `fit`'s calibration), or None for a server."""
    engine = getattr(backend, "engine", None)
    return str(engine) if engine is not None else None


def local_dtype(backend: object) -> str | None:
    """`fp32`, `bf16` or `fp16` (the names `llmselect fit --quant` takes), or None."""
    dtype: Any = getattr(getattr(backend, "model", None), "dtype", None)
    if dtype is None:
        return None
    name = str(dtype).removeprefix("torch.")
    return _DTYPES.get(name, name)


def _on_cuda(backend: object) -> bool:
    return (local_device(backend) or "").startswith("cuda")


def reset_peak_memory(backend: object) -> None:
    if _on_cuda(backend):
        import torch

        torch.cuda.reset_peak_memory_stats(local_device(backend))


def peak_memory_bytes(backend: object) -> int | None:
    """torch's peak of allocated CUDA memory since the last reset; None off CUDA."""
    if not _on_cuda(backend):
        return None
    import torch

    return int(torch.cuda.max_memory_allocated(local_device(backend)))


# -- rolling windows for perplexity ---------------------------------------------------------

DEFAULT_MAX_LENGTH = 2048
"""lm-evaluation-harness's fallback when neither the config nor the tokenizer gives a length."""
_TOKENIZER_INFINITY = 1_000_000_000_000_000_019_884_624_838_656
"""What transformers puts in `model_max_length` when the tokenizer does not know it."""


def model_max_length(config: Any, tokenizer: Any) -> int:
    """The model's context length, found where lm-evaluation-harness looks for it."""
    config = getattr(config, "text_config", None) or config
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, name, None)
        if value is not None:
            return int(value)
    value = getattr(tokenizer, "model_max_length", None)
    if value is not None and value != _TOKENIZER_INFINITY:
        return int(value)
    return DEFAULT_MAX_LENGTH


def rolling_windows(n_tokens: int, max_length: int) -> list[tuple[int, int, int]]:
    """The windows that score every token of a text once, as lm-evaluation-harness's
    `get_rolling_token_windows` with `context_len=1` and `make_disjoint_window` do.

    Positions count in the sequence `[prefix] + tokens` (the prefix is the BOS token, or EOS
    without one). Each window is `(start, end, scored)`: the model reads positions
    `start..end-1` (at most `max_length`) and the last `scored` of them predict the next token.
    The first window predicts the first `max_length` tokens from the prefix; each later one
    predicts up to `max_length` new tokens, conditioned on the token before them (the last window
    on as many earlier tokens as fit).
    """
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    if n_tokens == 0:
        return []
    first = min(max_length, n_tokens)
    windows = [(0, first, first)]
    predicted = first
    while predicted < n_tokens:
        scored = min(n_tokens - predicted, max_length)
        end = predicted + scored
        windows.append((end - max_length, end, scored))
        predicted = end
    return windows
