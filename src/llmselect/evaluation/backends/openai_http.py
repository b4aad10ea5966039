"""Any OpenAI-compatible server (vLLM, TGI, llama.cpp server, Ollama, LM Studio) over HTTP.

Completions are streamed, so the time to first token is measured per request; at most
`concurrency` requests are in flight. Timeouts, dropped connections, 429 and 5xx answers,
malformed chunks and streams cut before `data: [DONE]` are retried with exponential backoff, or
after as long as the server's `Retry-After` asks (at most the timeout). A server still unreachable
stops the run; an answer that stays wrong (a web page, a cut stream) is an error for its item
only (`ItemFailed`). The API key goes over https, or in clear to loopback and private networks
only, unless the candidate allows more; a password in the URL is never shown or written.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import os
import random
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from llmselect.errors import LLMSelectError
from llmselect.evaluation.backends.base import (
    Generation,
    GenerationSettings,
    ItemFailed,
    apply_stop,
)

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
SHOWN_BYTES = 200
"""How much of a wrong answer its error quotes."""
SSE_FIELDS = ("data:", "event:", "id:", "retry:", ":")
"""How a line of a server-sent event stream starts (`:` is a comment, a keep-alive)."""

T = TypeVar("T")
V = TypeVar("V")


class _Retryable(Exception):
    def __init__(self, message: str, *, wait_s: float | None = None, answer: bool = False):
        super().__init__(message)
        self.wait_s = wait_s
        """How long the server asked to wait (`Retry-After`)."""
        self.answer = answer
        """The server answered, wrongly for this item: if it stays so, the item fails (not
        the run)."""


def redact_url(url: str) -> str:
    """The URL without the user and password it may hold: what is shown and written."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


PRIVATE_NETWORKS = [
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
]
"""RFC 1918, unique local and link-local: networks of one organization. (Python's `is_private`
also counts documentation and reserved ranges, which route nowhere private.)"""


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])  # without an IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback or any(ip in network for network in PRIVATE_NETWORKS)


def _local(host: str) -> bool:
    """Loopback or a private network, by address or by every address the name resolves to."""
    try:
        found = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(_private(a) for a in found)


def check_credentials(url: str, key: str | None, allow_insecure_http: bool) -> None:
    """Refuse to send a key or a password in clear text across networks nobody here controls."""
    parts = urlsplit(url)
    secrets = [
        name
        for name, value in (
            ("OPENAI_API_KEY", key),
            ("the user and password in the URL", parts.password or parts.username),
        )
        if value
    ]
    if not secrets or parts.scheme != "http" or allow_insecure_http:
        return
    if _local(parts.hostname or ""):
        return
    raise LLMSelectError(
        f"refusing to send {' and '.join(secrets)} in clear text (http://) to "
        f"{parts.hostname}, which is neither this machine nor a private network",
        file=redact_url(url),
        hint="use https://, or, on a network you trust, set `allow_insecure_http: true` on the "
        "candidate",
    )


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header: a number of seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None  # unreadable: the usual backoff
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if seconds == seconds else None  # NaN is unreadable


def _count(usage: Any, name: str, default: int) -> int:
    """A token count from a `usage` block, or `default` where the server gave none."""
    value = usage.get(name) if isinstance(usage, dict) else None
    return int(value) if isinstance(value, int | float) and value == value else default


def _completion_text(choice: Any) -> str | None:
    """The text of a completion's choice (`text`) or a chat completion's (`message.content`)."""
    if not isinstance(choice, dict):
        return None
    text = choice.get("text")
    if text is None and isinstance(choice.get("message"), dict):
        text = choice["message"].get("content")
    return text if isinstance(text, str) else None


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
        allow_insecure_http: bool = False,
    ) -> None:
        self.name = name
        self.model = model
        self.url = url.rstrip("/")
        self.shown_url = redact_url(self.url)
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        key = os.environ.get("OPENAI_API_KEY") or None
        check_credentials(self.url, key, allow_insecure_http)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(base_url=self.url, timeout=timeout_s, headers=headers)
        # Shared by every thread that sends, so nested work (an item's choices) cannot exceed it.
        self._slots = threading.BoundedSemaphore(concurrency)

    def _scrub(self, text: str) -> str:
        """A message without the URL's password, whatever library wrote it."""
        secret = urlsplit(self.url).netloc.rpartition("@")[0]
        text = text.replace(self.url, self.shown_url)
        return text.replace(secret, "***") if secret else text

    def _say(self, message: str) -> None:
        print(f"{self.shown_url}: {message}", file=sys.stderr, flush=True)

    def _wait_s(self, failure: _Retryable, attempt: int) -> float:
        if failure.wait_s is None:
            # Exponential backoff with jitter, so concurrent retries do not arrive together.
            return self.backoff_s * 2.0**attempt * (0.5 + random.random())  # noqa: S311
        if failure.wait_s > self.timeout_s:
            self._say(
                f"the server asked to wait {failure.wait_s:.0f} s (Retry-After); waiting "
                f"{self.timeout_s:g} s, the candidate's timeout_s"
            )
            return self.timeout_s
        return failure.wait_s

    def _with_retries(self, what: str, call: Callable[[], T]) -> T:
        failure = _Retryable("no attempt")
        for attempt in range(self.retries + 1):
            try:
                with self._slots:
                    return call()
            except httpx.TransportError as exc:
                failure = _Retryable(f"{type(exc).__name__}: {exc}")
            except _Retryable as exc:
                failure = exc
            if attempt < self.retries:
                time.sleep(self._wait_s(failure, attempt))
        message = self._scrub(f"{what} failed after {self.retries + 1} attempts ({failure})")
        if failure.answer:
            raise ItemFailed(
                message,
                file=self.shown_url,
                hint="the server answered, but not a whole completion: check its log; "
                "rerun to retry the items that failed",
            )
        raise LLMSelectError(
            message,
            file=self.shown_url,
            hint="check that the server is up and serves this model",
        )

    def _refused(self, response: httpx.Response) -> None:
        """Raise for an answer that is not a success: retry what may pass, stop on the rest."""
        if response.status_code in RETRY_STATUS:
            wait = retry_after(response.headers.get("Retry-After"))
            raise _Retryable(f"HTTP {response.status_code}", wait_s=wait)
        if response.status_code >= 400:
            response.read()
            raise LLMSelectError(
                f"the server refused the request: HTTP {response.status_code} "
                f"{response.text[:SHOWN_BYTES]!r}",
                file=self.shown_url,
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
            with self.client.stream("POST", endpoint, json=body) as response:
                self._refused(response)
                lines = response.iter_lines()
                first = next((line for line in lines if line.strip()), "")
                if not first:
                    raise _Retryable("truncated: an empty answer", answer=True)
                if first.startswith(SSE_FIELDS):
                    return self._streamed(chain([first], lines), began, settings)
                # Not a stream: a server that ignores `stream` answers one JSON completion.
                whole = "\n".join(chain([first], lines))
                kind = response.headers.get("Content-Type", "no Content-Type")
            return self._plain(whole, kind, began, settings)

        return self._with_retries("completion", once)

    def _streamed(
        self, lines: Iterator[str], began: float, settings: GenerationSettings
    ) -> Generation:
        first: float | None = None
        parts: list[str] = []
        usage: Any = {}
        finished = False
        for line in lines:
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                finished = True
                break
            try:
                chunk = json.loads(data)
                if chunk.get("error"):  # vLLM reports an error inside the stream, then [DONE]
                    raise _Retryable(
                        f"the server sent an error: {str(chunk['error'])[:SHOWN_BYTES]!r}",
                        answer=True,
                    )
                choices = chunk.get("choices") or []  # a last chunk may hold only the usage
                choice = choices[0] if choices else {}
                text = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
                if not isinstance(text, str):
                    raise TypeError(text)
                # A finish reason says the text is whole, even if the stream then ends early.
                finished = finished or bool(choice.get("finish_reason"))
            except (json.JSONDecodeError, AttributeError, IndexError, TypeError) as exc:
                raise _Retryable(f"malformed stream chunk {data[:80]!r}", answer=True) from exc
            if text and first is None:
                first = time.perf_counter() - began
            parts.append(text)
            usage = chunk.get("usage") or usage
        if not finished:
            raise _Retryable(
                "truncated: the stream ended before `data: [DONE]` "
                f"after {len(''.join(parts))} characters",
                answer=True,
            )
        return Generation(
            text=apply_stop("".join(parts), settings.stop),
            prompt_tokens=_count(usage, "prompt_tokens", 0),
            output_tokens=_count(usage, "completion_tokens", len(parts)),
            seconds=time.perf_counter() - began,
            ttft_s=first,
        )

    def _plain(
        self, whole: str, kind: str, began: float, settings: GenerationSettings
    ) -> Generation:
        try:
            answer = json.loads(whole)
            text = _completion_text(answer["choices"][0])
            usage = answer.get("usage")
        except (json.JSONDecodeError, AttributeError, KeyError, IndexError, TypeError):
            text = None
        if text is None:
            raise ItemFailed(
                f"the server's answer is not a completion (HTTP 200, {kind}): "
                f"{whole[:SHOWN_BYTES]!r}",
                file=self.shown_url,
                hint="check that the URL is the server's OpenAI-compatible base (often ending in "
                "/v1) and that nothing in between (a proxy, a login page) answers in its place",
            )
        return Generation(
            text=apply_stop(text, settings.stop),
            prompt_tokens=_count(usage, "prompt_tokens", 0),
            output_tokens=_count(usage, "completion_tokens", 0),
            seconds=time.perf_counter() - began,
            ttft_s=None,  # nothing streamed: no first token to time
        )

    def _map(self, work: Callable[[V], T], values: list[V]) -> list[T]:
        """`work` on each value, `concurrency` at once (the slots bound the requests)."""
        if len(values) <= 1:
            return [work(v) for v in values]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(work, values))

    def chat_prompt(self, prompt: str) -> str:
        raise LLMSelectError(
            "multiple choice with `chat: true` needs the model's template locally",
            file=self.shown_url,
            field="task.chat",
            hint="score multiple choice over HTTP without chat, or use a transformers folder",
        )

    def generate(self, prompts: list[str], settings: GenerationSettings) -> list[Generation]:
        return self._map(lambda p: self._complete(p, settings), prompts)

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
                self._refused(response)
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

        return self._map(lambda r: score(*r), requests)

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
                file=self.shown_url,
                field="task.max_length",
                hint="remove max_length, or run this model from a transformers folder",
            )
        return self._map(self._text_loglikelihood, texts)

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
                self._refused(response)
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
                file=self.shown_url,
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
                file=self.shown_url,
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
