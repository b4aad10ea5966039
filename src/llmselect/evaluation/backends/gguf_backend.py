"""A local GGUF file run in this process with llama.cpp (the llama-cpp-python binding).

Greedy at temperature 0; each answer is streamed token by token, so the time to first token is
measured, and generation stops at the end-of-generation token, a stop sequence or `max_tokens`.
Chat prompts use the GGUF file's own template (rendered in a sandboxed Jinja environment).
Log-likelihoods are computed the way lm-evaluation-harness does: the whole text and the context
are tokenized apart and the continuation's tokens scored after the context's. Prompts run one
at a time (llama-cpp-python decodes one sequence); a prefix shared with the previous prompt, as
a multiple-choice item's context is, is read from the KV cache instead of computed again.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from llmselect.errors import LLMSelectError
from llmselect.evaluation.backends.base import (
    Generation,
    GenerationSettings,
    apply_stop,
    rolling_windows,
)

GGUF_MAGIC = b"GGUF"
MAX_DEFAULT_CONTEXT = 8192
"""The context allocated when the file's own is longer: a 128k-token KV cache takes many GiB."""


def check_gguf_file(path: Path) -> None:
    """A GGUF file starts with the bytes `GGUF`: refuse anything else before llama.cpp reads it."""
    if not path.is_file():
        raise LLMSelectError("no such GGUF file", file=path, field="gguf")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise LLMSelectError(
            f"not a GGUF file (it starts with {magic!r}, not b'GGUF')",
            file=path,
            field="gguf",
            hint="point `gguf:` at a .gguf file; a Hugging Face folder goes in `transformers:`",
        )


def trained_context(path: Path) -> int | None:
    """`<architecture>.context_length` from the GGUF header, or None where it is missing."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path), "r")
    except Exception as exc:  # gguf raises ValueError and struct/numpy errors on bad headers
        raise LLMSelectError(
            f"unreadable GGUF header: {exc}",
            file=path,
            field="gguf",
            hint="check that the download finished",
        ) from exc

    def value(key: str) -> Any:
        field = reader.fields.get(key)
        return field.contents() if field is not None else None

    length = value(f"{value('general.architecture')}.context_length")
    return int(length) if length else None


def _import_llama_cpp() -> Any:
    # Imported as Any: the binding's annotations are partial and do not pass mypy --strict.
    try:
        return importlib.import_module("llama_cpp")
    except ImportError as exc:
        raise LLMSelectError(
            "the gguf backend needs llama-cpp-python",
            field="gguf",
            hint="pip install -e '.[gguf]' (it compiles llama.cpp: a few minutes, CPU only "
            "unless CMAKE_ARGS asks for a GPU backend, e.g. -DGGML_CUDA=on)",
        ) from exc


class GGUFBackend:
    def __init__(
        self,
        path: Path,
        *,
        name: str,
        n_ctx: int | None = None,
        seed: int = 0,
        n_threads: int | None = None,
    ) -> None:
        check_gguf_file(path)
        self.llama_cpp = _import_llama_cpp()
        self.path = path
        self.name = name
        self.seed = seed
        self.n_threads = n_threads
        trained = trained_context(path)
        self.n_ctx = n_ctx or min(trained or MAX_DEFAULT_CONTEXT, MAX_DEFAULT_CONTEXT)
        self.gpu = bool(self.llama_cpp.llama_supports_gpu_offload())
        self.device = "gpu" if self.gpu else "cpu"
        """Not "cuda": llama.cpp's memory is its own, and torch's peak counter would not see it."""
        self.engine = "llama.cpp" if self.gpu else "cpu"
        """The sizing engine profile this run measures (`fit` sizes any CPU with `cpu`)."""
        self.llm: Any = None
        self.logits_all = False
        self._chat_formatter: Any = None
        self._load(logits_all=False, n_ctx=self.n_ctx)

    # -- loading --------------------------------------------------------------------------

    def _load(self, *, logits_all: bool, n_ctx: int) -> None:
        if self.llm is not None:
            self.llm.close()
        try:
            self.llm = self.llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=n_ctx,
                # Keep every position's logits only where log-likelihoods need them: the copy
                # costs n_tokens x n_vocab floats per prompt.
                logits_all=logits_all,
                n_gpu_layers=-1 if self.gpu else 0,
                # None: llama-cpp-python's defaults (half the cores, all of them for prompts).
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                seed=self.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise LLMSelectError(
                f"llama.cpp cannot load the model: {exc}",
                file=self.path,
                field="gguf",
                hint="a damaged file, or an architecture newer than the installed "
                "llama-cpp-python (pip install -U llama-cpp-python)",
            ) from exc
        self.logits_all = logits_all
        self.n_ctx = int(self.llm.n_ctx())
        self.vocab = self.llama_cpp.llama_model_get_vocab(self.llm.model)
        # A recurrent model's state cannot be cut back to a prefix: always start it afresh.
        checks = ("llama_model_is_recurrent", "llama_model_is_hybrid")  # hybrid: newer bindings
        self.reuses_prefix = not any(
            getattr(self.llama_cpp, check, lambda _: False)(self.llm.model) for check in checks
        )

    def _scoring_model(self, n_ctx: int) -> Any:
        """The model, reloaded once with every position's logits kept (and a longer context)."""
        if not self.logits_all or n_ctx > self.n_ctx:
            self._load(logits_all=True, n_ctx=max(n_ctx, self.n_ctx))
        return self.llm

    # -- tokens ---------------------------------------------------------------------------

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return bytes(self.llama_cpp.llama_vocab_get_text(self.vocab, token)).decode(
            "utf-8", errors="replace"
        )

    def _tokenize(self, text: str) -> list[int]:
        # A chat-formatted text already starts with the BOS token: do not add another. Special
        # tokens written in the text are parsed, as transformers and llama.cpp's server do.
        bos = self._token_text(self.llm.token_bos())
        add_bos = not (bos and text.startswith(bos))
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))

    def _tokenize_bare(self, text: str) -> list[int]:
        """Without BOS: for a text that is scored after a start token given apart."""
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _start_token(self) -> int:
        """What the first token is predicted from: BOS, or EOS without one (as lm-eval does)."""
        bos = int(self.llm.token_bos())
        return bos if bos >= 0 else int(self.llm.token_eos())

    def _check_fits(self, n_tokens: int, what: str) -> None:
        if n_tokens > self.n_ctx:
            raise LLMSelectError(
                f"{self.name}: {what} needs {n_tokens} tokens, more than the {self.n_ctx}-token "
                "context",
                field="task",
                hint="shorten the template or use fewer few_shot examples",
            )

    # -- the Backend interface ----------------------------------------------------------

    def chat_prompt(self, prompt: str) -> str:
        from jinja2 import TemplateError

        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise LLMSelectError(
                f"{self.name} has no chat template",
                file=self.path,
                field="task.chat",
                hint="set `chat: false` and write the prompt format in `template`",
            )
        try:
            if self._chat_formatter is None:
                # llama-cpp-python's formatter renders in jinja2's ImmutableSandboxedEnvironment.
                self._chat_formatter = self.llama_cpp.llama_chat_format.Jinja2ChatFormatter(
                    template=template,
                    bos_token=self._token_text(self.llm.token_bos()),
                    eos_token=self._token_text(self.llm.token_eos()),
                )
            rendered = self._chat_formatter(messages=[{"role": "user", "content": prompt}])
        except (TemplateError, ValueError, TypeError) as exc:
            raise LLMSelectError(
                f"the chat template of {self.name} fails: {exc}",
                file=self.path,
                field="task.chat",
                hint="set `chat: false` and write the prompt format in `template`",
            ) from exc
        return str(rendered.prompt)

    def generate(self, prompts: list[str], settings: GenerationSettings) -> list[Generation]:
        return [self._generate_one(p, settings) for p in prompts]

    def _generate_one(self, prompt: str, settings: GenerationSettings) -> Generation:
        text_in = self.chat_prompt(prompt) if settings.chat else prompt
        tokens = self._tokenize(text_in)
        self._check_fits(len(tokens) + 1, "the prompt with one answer token")
        room = min(settings.max_tokens, self.n_ctx - len(tokens))
        # Temperature 0 is greedy; above it, plain temperature sampling (no top-k/top-p/min-p).
        stream = self.llm.generate(
            tokens,
            temp=settings.temperature,
            top_k=0,
            top_p=1.0,
            min_p=0.0,
            repeat_penalty=1.0,
        )
        stops = [s.encode("utf-8") for s in settings.stop if s]
        longest = max(map(len, stops), default=0)
        began = time.perf_counter()
        first: float | None = None
        output: list[int] = []
        raw = bytearray()
        for token in stream:
            if first is None:
                first = time.perf_counter() - began
            if self.llama_cpp.llama_vocab_is_eog(self.vocab, token):
                break
            output.append(int(token))
            piece = bytes(self.llm.detokenize([token]))
            raw += piece
            # A stop sequence written just now ends in this piece: search only the tail, in
            # bytes (UTF-8 matches there exactly where it matches in text).
            tail = raw[-(len(piece) + longest) :]
            if len(output) >= room or any(s in tail for s in stops):
                break
        stream.close()
        return Generation(
            text=apply_stop(raw.decode("utf-8", errors="replace"), settings.stop),
            prompt_tokens=len(tokens),
            output_tokens=len(output),
            seconds=time.perf_counter() - began,
            ttft_s=first,
        )

    def _score(self, read: list[int], targets: list[int]) -> float:
        """Sum of the log-probabilities of `targets`, each predicted by one of the last
        len(targets) positions of `read`."""
        llm = self.llm
        cached = 0
        if self.reuses_prefix:
            cached = int(llm.longest_token_prefix(llm.input_ids[: llm.n_tokens].tolist(), read))
        # Decode at least the last token, so that the context's state is this sequence's.
        cached = min(cached, len(read) - 1)
        if cached == 0:
            llm.reset()
        else:
            llm.n_tokens = cached
        llm.eval(read[cached:])
        logprobs = llm.logits_to_logprobs(llm.scores[len(read) - len(targets) : len(read)])
        picked = logprobs[np.arange(len(targets)), np.asarray(targets)]
        return float(np.sum(picked, dtype=np.float64))

    def loglikelihoods(self, requests: list[tuple[str, str]]) -> list[float]:
        self._scoring_model(self.n_ctx)
        scores = []
        for context, continuation in requests:
            # lm-evaluation-harness moves the context's trailing spaces to the continuation.
            spaces = len(context) - len(context.rstrip())
            if spaces:
                context, continuation = context[:-spaces], context[-spaces:] + continuation
            # Tokenize the whole and the context, as lm-evaluation-harness does, so that a
            # token spanning the boundary is attributed to the continuation.
            if context:
                head = self._tokenize(context)
                tail = self._tokenize(context + continuation)[len(head) :]
            else:
                # No context: the continuation is predicted from BOS (EOS without one).
                head, tail = [self._start_token()], self._tokenize_bare(continuation)
            if not tail:
                scores.append(0.0)
                continue
            # The model reads the context as tokenized alone, as lm-evaluation-harness feeds it.
            read = head + tail
            self._check_fits(len(read) - 1, "a context with its continuation")
            scores.append(self._score(read[:-1], tail))
        return scores

    def loglikelihood_rolling(self, texts: list[str], max_length: int | None = None) -> list[float]:
        """Each text's total log-likelihood in disjoint windows of `max_length` tokens (default:
        the loaded context), as lm-evaluation-harness does (see `rolling_windows`)."""
        length = max_length or self.n_ctx
        self._scoring_model(length)
        prefix = self._start_token()
        totals = []
        for text in texts:
            seq = [prefix, *self._tokenize_bare(text)]
            total = 0.0
            for start, end, scored in rolling_windows(len(seq) - 1, length):
                total += self._score(seq[start:end], seq[end - scored + 1 : end + 1])
            totals.append(total)
        return totals

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()
            self.llm = None
