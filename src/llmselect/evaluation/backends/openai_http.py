"""Any OpenAI-compatible server (vLLM, TGI, llama.cpp server, Ollama, LM Studio) over HTTP.

Completions are streamed, so the time to first token is measured per request; requests run
concurrently; timeouts, dropped connections, 429 and 5xx answers and malformed responses are
retried with exponential backoff before the run stops with a clear error.
"""

from __future__ import annotations

import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from llmselect.errors import LLMSelectError
from llmselect.evaluation.backends.base import Generation, GenerationSettings, apply_stop

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class _Retryable(Exception):
    pass


class OpenAIBackend:
    def __init__(
        self,
        url: str,
        model: str,
        *,
        name: str,
        concurrency: int = 4,
        timeout_s: float = 120.0,
        retries: int = 4,
        backoff_s: float = 0.5,
    ) -> None:
        self.name = name
        self.model = model
        self.url = url.rstrip("/")
        self.concurrency = concurrency
        self.retries = retries
        self.backoff_s = backoff_s
        headers = {}
        key = os.environ.get("OPENAI_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(base_url=self.url, timeout=timeout_s, headers=headers)

    def _with_retries(self, what: str, call: Any) -> Any:
        last = ""
        for attempt in range(self.retries + 1):
            try:
                return call()
            except (httpx.TransportError, _Retryable) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if attempt < self.retries:
                # Exponential backoff with jitter, so concurrent retries do not arrive together.
                time.sleep(self.backoff_s * 2**attempt * (0.5 + random.random()))  # noqa: S311
        raise LLMSelectError(
            f"{what} failed after {self.retries + 1} attempts ({last})",
            file=self.url,
            hint="check that the server is up and serves this model",
        )

    def _complete(self, prompt: str, settings: GenerationSettings) -> Generation:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": settings.max_tokens,
            "temperature": settings.temperature,
            "stream": True,
        }
        # With `chat`, the server applies the model's own template (/chat/completions).
        if settings.chat:
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        endpoint = "/chat/completions" if settings.chat else "/completions"
        if settings.stop:
            body["stop"] = settings.stop

        def once() -> Generation:
            began = time.perf_counter()
            first: float | None = None
            parts: list[str] = []
            usage: dict[str, Any] = {}
            with self.client.stream("POST", endpoint, json=body) as response:
                if response.status_code in RETRY_STATUS:
                    raise _Retryable(f"HTTP {response.status_code}")
                if response.status_code >= 400:
                    response.read()
                    raise LLMSelectError(
                        f"the server refused the request: HTTP {response.status_code} "
                        f"{response.text[:200]!r}",
                        file=self.url,
                    )
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        chunk = json.loads(data)
                        choice = chunk["choices"][0]
                        text = (
                            (choice.get("delta") or {}).get("content") or choice.get("text") or ""
                        )
                    except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
                        raise _Retryable(f"malformed stream chunk {data[:80]!r}") from exc
                    if text and first is None:
                        first = time.perf_counter() - began
                    parts.append(text)
                    usage = chunk.get("usage") or usage
            seconds = time.perf_counter() - began
            text = apply_stop("".join(parts), settings.stop)
            return Generation(
                text=text,
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                output_tokens=int(usage.get("completion_tokens", len(parts))),
                seconds=seconds,
                ttft_s=first,
            )

        result: Generation = self._with_retries("completion", once)
        return result

    def chat_prompt(self, prompt: str) -> str:
        raise LLMSelectError(
            "multiple choice with `chat: true` needs the model's template locally",
            file=self.url,
            field="task.chat",
            hint="score multiple choice over HTTP without chat, or use a transformers folder",
        )

    def generate(self, prompts: list[str], settings: GenerationSettings) -> list[Generation]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda p: self._complete(p, settings), prompts))

    def loglikelihoods(self, requests: list[tuple[str, str]]) -> list[float]:
        """Scores continuations with `echo` and `logprobs` (vLLM and llama.cpp server do)."""

        def score(context: str, continuation: str) -> float:
            body = {
                "model": self.model,
                "prompt": context + continuation,
                "max_tokens": 0,
                "echo": True,
                "logprobs": 1,
            }

            def once() -> float:
                response = self.client.post("/completions", json=body)
                if response.status_code in RETRY_STATUS:
                    raise _Retryable(f"HTTP {response.status_code}")
                try:
                    logprobs = response.json()["choices"][0]["logprobs"]
                    offsets, values = logprobs["text_offset"], logprobs["token_logprobs"]
                except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
                    raise _Retryable("malformed logprobs answer") from exc
                start = len(context)
                return float(
                    sum(v for o, v in zip(offsets, values, strict=True) if o >= start and v)
                )

            value: float = self._with_retries("log-likelihood", once)
            return value

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda r: score(*r), requests))

    def loglikelihood_rolling(self, texts: list[str], max_length: int | None = None) -> list[float]:
        """Each text's log-likelihood from one `echo` + `logprobs` completion of the whole text.

        The server scores the text in one piece (no windows: it must fit the server's context)
        and cannot score the text's first token unless it puts a BOS token before it, as vLLM
        and llama.cpp's server do for models that have one. `max_tokens: 0` is asked first;
        a server that refuses it is asked for one token, which is then left out.
        """
        if max_length is not None:
            raise LLMSelectError(
                "`max_length` sets the windows of a local model; a server scores each text whole",
                file=self.url,
                field="task.max_length",
                hint="remove max_length, or run this model from a transformers folder",
            )
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._text_loglikelihood, texts))

    def _text_loglikelihood(self, text: str) -> float:
        def once(max_tokens: int) -> httpx.Response:
            body = {
                "model": self.model,
                "prompt": text,
                "max_tokens": max_tokens,
                "echo": True,
                "logprobs": 1,
                "temperature": 0,
            }
            response = self.client.post("/completions", json=body)
            if response.status_code in RETRY_STATUS:
                raise _Retryable(f"HTTP {response.status_code}")
            try:
                response.json()
            except json.JSONDecodeError as exc:
                raise _Retryable("malformed answer (not JSON)") from exc
            return response

        response: httpx.Response = self._with_retries("log-likelihood", lambda: once(0))
        if 400 <= response.status_code < 500:
            # Some servers (and OpenAI's API) want at least one token: ask for one, drop it.
            response = self._with_retries("log-likelihood", lambda: once(1))
        if response.status_code >= 400:
            raise LLMSelectError(
                f"the server refused to score a text: HTTP {response.status_code} "
                f"{response.text[:200]!r}",
                file=self.url,
                field="task.kind",
                hint="the perplexity task needs `echo` and `logprobs` on /completions (vLLM and "
                "llama.cpp's server have them), and each text must fit the server's context",
            )
        try:
            logprobs = response.json()["choices"][0]["logprobs"]
            offsets, values = logprobs["text_offset"], logprobs["token_logprobs"]
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMSelectError(
                "the server did not return the text's log-probabilities (`echo` + `logprobs`)",
                file=self.url,
                field="task.kind",
                hint="use a server that supports echo with logprobs on /completions (vLLM, "
                "llama.cpp's server), or a transformers folder",
            ) from exc
        # Tokens at or past the end of the text are generated, not part of it; a None is the
        # first token, which has nothing before it to be predicted from.
        return float(
            sum(v for o, v in zip(offsets, values, strict=True) if o < len(text) and v is not None)
        )

    def close(self) -> None:
        self.client.close()
