"""One streamed request to an OpenAI-compatible server, timed the way its user would see it.

The clock starts just before the request is sent and reads each server-sent event as it
arrives: the first token's arrival is the TTFT, the last byte ends the E2E. A chunk counts as a
token when it carries text, or carries a (possibly empty) text with no finish reason: llama.cpp
streams one chunk per token, some of them empty (a piece of a multi-byte character, a control
token), and closes with an empty chunk that only gives the finish reason.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from llmselect.serving.http import Pool, ProtocolError

Endpoint = Literal["completions", "chat"]

PATHS: dict[Endpoint, str] = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}


def base_url(url: str) -> str:
    """`http://host:8000/v1/` and `http://host:8000` name the same server."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


@dataclass
class RequestSettings:
    """What every request of a run sends."""

    model: str
    endpoint: Endpoint = "completions"
    max_tokens: int = 128
    fixed_output: bool = True
    """Ask the server to generate exactly `max_tokens` (vLLM's and llama.cpp's `ignore_eos`,
    and `min_tokens`), so every request decodes as long as the load asks."""
    temperature: float | None = 0.0
    """None: the server's default."""
    timeout_s: float = 60.0
    api_key: str | None = None

    def body(self, prompt: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        if self.fixed_output:
            body["ignore_eos"] = True
            body["min_tokens"] = self.max_tokens
        return body

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


@dataclass
class Outcome:
    """A finished request: its timings (seconds, from its own start) and what it returned."""

    start: float
    """time.perf_counter() when it was sent."""
    token_times: list[float] = field(default_factory=list)
    end: float | None = None
    text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    status: int | None = None
    error: str | None = None


def client(url: str) -> Pool:
    """Kept-alive connections to the server, one per request in flight."""
    return Pool(base_url(url))


async def send(http: Pool, settings: RequestSettings, prompt: str) -> Outcome:
    """Send one streamed request and time it; a failure is an outcome with an `error`, never an
    exception (a bench counts errors, it does not stop at the first)."""
    body = json.dumps(settings.body(prompt)).encode()
    outcome = Outcome(start=time.perf_counter())
    try:
        async with asyncio.timeout(settings.timeout_s):
            await _stream(http, body, settings, outcome)
    except TimeoutError:
        outcome.error = "timeout"
    except ConnectionRefusedError:
        outcome.error = "connection refused"
    except (ProtocolError, asyncio.IncompleteReadError, ConnectionError) as exc:
        answered = outcome.status is not None
        outcome.error = "stream ended early" if answered else f"connection failed ({exc})"
    except OSError as exc:
        outcome.error = f"connection failed ({type(exc).__name__})"
    if outcome.end is None:
        outcome.end = time.perf_counter()
    return outcome


async def _stream(http: Pool, body: bytes, settings: RequestSettings, outcome: Outcome) -> None:
    response = await http.post(PATHS[settings.endpoint], body, settings.headers())
    try:
        outcome.status = response.status
        if response.status != 200:
            await response.read_some()
            outcome.error = f"http {response.status}"
            return
        kind = response.headers.get("content-type", "").lower()
        if not kind.startswith("text/event-stream"):  # a server that ignored `stream`
            await response.read_some()
            outcome.error = f"not a stream ({kind or 'no content-type'})"
            return
        done = False
        pending = b""
        async for data, now in response.body():
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                if done or not line.startswith(b"data:"):
                    # `: ping` comments, `event:` names, blank separators; after [DONE], the
                    # rest is read so that the connection can serve the next request.
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                    outcome.end = now
                    continue
                error = _read_chunk(payload, settings.endpoint, outcome, now)
                if error:
                    outcome.error = error
                    return
        if outcome.end is None:
            outcome.end = time.perf_counter()
    finally:
        response.done()
    if not done and outcome.finish_reason is None:
        outcome.error = "stream ended early"
    elif outcome.finish_reason is None:
        # [DONE] before any finish reason: the server cut the answer off (llama-cpp-python's
        # server does so to a stream when another request arrives, unless started with
        # `--interrupt_requests false`).
        outcome.error = "interrupted"


def _read_chunk(data: bytes, endpoint: Endpoint, outcome: Outcome, now: float) -> str | None:
    """Take one event's tokens, finish reason and usage; the error it carries, if any."""
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError:
        return "malformed chunk"
    if not isinstance(chunk, dict):
        return "malformed chunk"
    if chunk.get("error"):
        return "error in stream"
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        outcome.prompt_tokens = prompt if isinstance(prompt, int) else None
        outcome.completion_tokens = completion if isinstance(completion, int) else None
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None  # the usage chunk, with no choices
    choice = choices[0]
    if endpoint == "chat":
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(delta, dict) and delta.get("role") and not text:
            text = None  # the role announced before the answer (vLLM sends it with "")
    else:
        text = choice.get("text")
    finish = choice.get("finish_reason")
    if isinstance(text, str) and (text or finish is None):
        outcome.token_times.append(now - outcome.start)
        outcome.text += text
    if finish is not None:
        outcome.finish_reason = str(finish)
    return None
