"""Backends: one interface (`Backend`), one file per kind of model server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from llmselect.errors import LLMSelectError
from llmselect.evaluation.backends.base import Backend, Generation, GenerationSettings
from llmselect.evaluation.study import Candidate

if TYPE_CHECKING:
    from llmselect.evaluation.backends.served import Launch

__all__ = ["Backend", "Generation", "GenerationSettings", "backend_identity", "open_backend"]


def backend_identity(candidate: Candidate, base_dir: Path) -> str:
    """What produced the outputs: part of the cache key, so another model never reuses them.

    How a model runs is not part of it, as the device and the batch size are not: `compile`
    gives the same greedy text (tested on the CPU in fp32); in bf16 on a GPU the compiled step's
    other kernels can flip a near tie, as another batch size can. Keying on it would rerun every
    stored item to try a faster path; `--fresh` measures a new one, and each run's `engine` is
    kept beside its outputs.
    """
    if candidate.transformers:
        return f"transformers:{(base_dir / candidate.transformers).resolve()}"
    if candidate.gguf:
        return f"gguf:{(base_dir / candidate.gguf).resolve()}"
    if candidate.serve:
        # The engine's command and the model file it reads, not the port it got this time.
        file = f":{served_file(candidate, base_dir)}" if candidate.file else ""
        return f"serve:{candidate.serve}{file}:{candidate.model or ''}"
    from llmselect.evaluation.backends.openai_http import redact_url

    # Without the URL's password: the identity is written to the store and to results.json.
    return f"openai:{redact_url(candidate.openai or '')}:{candidate.model}"


def served_file(candidate: Candidate, base_dir: Path) -> str | None:
    """The model file of a `serve` candidate, as its engine is given it (`{file}`)."""
    return str((base_dir / candidate.file).resolve()) if candidate.file else None


def open_backend(candidate: Candidate, base_dir: Path, launch: Launch | None = None) -> Backend:
    """The candidate's backend, ready; a `serve` candidate's engine is started by `launch`."""
    if candidate.serve:
        return _served(candidate, base_dir, launch)
    if candidate.transformers:
        from llmselect.evaluation.backends.transformers_backend import TransformersBackend

        return TransformersBackend(
            (base_dir / candidate.transformers).resolve(),
            name=backend_identity(candidate, base_dir),
            batch_size=candidate.batch_size,
            allow_pickle=candidate.allow_pickle,
            trust_remote_code=candidate.trust_remote_code,
            compile=None if candidate.compile == "auto" else candidate.compile,
        )
    if candidate.openai:
        from llmselect.evaluation.backends.openai_http import OpenAIBackend

        if not candidate.model:
            raise LLMSelectError(
                f"candidate {candidate.name!r}: an openai backend needs `model:`",
                hint="the model name the server knows, e.g. the one in /v1/models",
            )
        return OpenAIBackend(
            candidate.openai,
            candidate.model,
            name=backend_identity(candidate, base_dir),
            concurrency=candidate.concurrency,
            timeout_s=candidate.timeout_s,
            retries=candidate.retries,
            backoff_s=candidate.retry_backoff_s,
            allow_insecure_http=candidate.allow_insecure_http,
        )
    from llmselect.evaluation.backends.gguf_backend import GGUFBackend

    assert candidate.gguf  # the study allows exactly one backend per candidate
    return GGUFBackend(
        (base_dir / candidate.gguf).resolve(), name=backend_identity(candidate, base_dir)
    )


def _served(candidate: Candidate, base_dir: Path, launch: Launch | None) -> Backend:
    from llmselect.evaluation.backends.served import ServedBackend

    if launch is None:
        raise LLMSelectError(
            f"candidate {candidate.name!r} has a serve command, and nothing here starts engines",
            field="serve",
            hint="run it with `llmselect eval` or `llmselect select`",
        )
    engine = launch(
        candidate.serve or "",
        name=candidate.name,
        model=candidate.model,
        file=served_file(candidate, base_dir),
        startup_timeout_s=candidate.startup_timeout_s,
    )
    try:
        return ServedBackend(
            engine,
            candidate.model or engine.first_model(),
            name=backend_identity(candidate, base_dir),
            concurrency=candidate.concurrency,
            timeout_s=candidate.timeout_s,
            retries=candidate.retries,
            backoff_s=candidate.retry_backoff_s,
        )
    except BaseException:
        engine.stop()
        raise
