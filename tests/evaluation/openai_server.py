"""A real OpenAI-compatible HTTP server for tests, on loopback, with injectable failures.

It answers capital-city questions (so scores are meaningful), streams completions as server-sent
events, scores `echo` + `logprobs` requests, and consumes one queued fault per request:
"500", "429", "503" (with a `Retry-After: retry_after` header when that is set; a function
gives it when answering), "drop" (close without answering), "malformed" (a broken stream
chunk), "slow" (answer after `slow_s`, past the client's timeout), "html" (HTTP 200 with a web
page), "json" (a plain JSON completion, as from a server that ignores `stream`), "truncate"
(the stream closes after its first chunk, before `data: [DONE]`), "error_chunk" (an error
inside the stream, then `[DONE]`, as vLLM does), "no_done" (a whole stream whose last chunk has
a finish reason, but no `[DONE]`). `always` maps a piece of prompt to a fault that every request
holding it gets; after `die_after` answered requests the server answers nothing more (until it
is set back).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ANSWERS = {"France": "Paris", "England": "London", "Italy": "Rome"}
HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Proxy login</body></html>"


def write_study(tmp_path: Path, url: str, n: int = 9, **candidate: Any) -> Path:
    """A generate study of `n` capital questions (item `qI` asks "... ? (I)") against `url`;
    `candidate` adds to or replaces the candidate's options."""
    rows = []
    for i in range(n):
        country = list(ANSWERS)[i % 3]
        rows.append(
            {
                "id": f"q{i}",
                "question": f"What is the capital of {country}? ({i})",
                "answer": ANSWERS[country],
            }
        )
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = {
        "name": "api",
        "openai": url,
        "model": "tiny",
        "concurrency": 3,
        "timeout_s": 2,
        "retries": 2,
        "retry_backoff_s": 0.01,
        **candidate,
    }
    study = {
        "dataset": {
            "path": "data.jsonl",
            "fields": {"input": "question", "reference": "answer", "id": "id"},
        },
        "task": {"kind": "generate", "template": "{{ input }} A:"},
        "metrics": ["exact_match"],
        "candidates": [options],
    }
    (tmp_path / "study.yaml").write_text(json.dumps(study))  # JSON is YAML
    return tmp_path / "study.yaml"


def answer(prompt: str) -> str:
    for country, capital in ANSWERS.items():
        if country in prompt:
            return capital
    return "four"


class FakeServer:
    def __init__(self, slow_s: float = 1.0) -> None:
        self.faults: deque[str] = deque()
        self.always: dict[str, str] = {}
        self.die_after: int | None = None
        self.retry_after: str | Callable[[], str] | None = None
        self.requests = 0
        self.answered = 0
        self.paths: list[str] = []
        self.times: list[float] = []
        self.authorization: list[str | None] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.slow_s = slow_s
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                with lock:
                    server.requests += 1
                    server.paths.append(self.path)
                    server.times.append(time.monotonic())
                    server.authorization.append(self.headers.get("Authorization"))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                self._open = True
                try:
                    self._answer()
                finally:
                    self._close()

            def send_response(self, code: int, message: str | None = None) -> None:
                # The request stops counting as it is answered: the client may send its next
                # one as soon as the answer arrives, before this thread has returned.
                self._close()
                super().send_response(code, message)

            def _close(self) -> None:
                if getattr(self, "_open", False):
                    self._open = False
                    with lock:
                        server.in_flight -= 1

            def _answer(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
                with lock:
                    fault = server.faults.popleft() if server.faults else None
                    for piece, always in server.always.items():
                        if piece in prompt:
                            fault = always
                    if server.die_after is not None and server.answered >= server.die_after:
                        fault = "drop"
                    if fault not in ("drop", "500", "429", "503"):
                        server.answered += 1
                if fault in ("500", "429", "503"):
                    self.send_response(int(fault))
                    if server.retry_after is not None and fault != "500":
                        after = server.retry_after
                        self.send_header("Retry-After", after() if callable(after) else after)
                    self.end_headers()
                    return
                if fault == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "slow":
                    time.sleep(server.slow_s)
                if fault == "html":
                    self._send(HTML, "text/html; charset=utf-8")
                elif body.get("echo"):
                    self._logprobs(body["prompt"])
                elif fault == "json":
                    self._plain(prompt, chat="messages" in body)
                elif "messages" in body:
                    self._stream(prompt, broken=False, chat=True)
                else:
                    self._stream(prompt, broken=fault == "malformed", fault=fault)

            def _send(self, data: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _plain(self, prompt: str, chat: bool) -> None:
                text = " " + answer(prompt)
                choice = {"message": {"role": "assistant", "content": text}} if chat else {}
                result = {
                    "object": "chat.completion" if chat else "text_completion",
                    "choices": [{"index": 0, "finish_reason": "stop", "text": text, **choice}],
                    "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 2},
                }
                self._send(json.dumps(result).encode(), "application/json")

            def _stream(
                self, prompt: str, broken: bool, chat: bool = False, fault: str | None = None
            ) -> None:
                # HTTP/1.0 without a length: the body ends where the connection closes, so a
                # cut stream has no framing that tells the client it is incomplete.
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                text = " " + answer(prompt)
                for index, char in enumerate(text):
                    piece = {"delta": {"content": char}} if chat else {"text": char}
                    chunk: dict[str, Any] = {"choices": [{**piece, "index": 0}]}
                    if index == len(text) - 1:
                        chunk["usage"] = {
                            "prompt_tokens": len(prompt.split()),
                            "completion_tokens": len(text),
                        }
                        if fault == "no_done":
                            chunk["choices"][0]["finish_reason"] = "stop"
                    payload = "{not json" if broken and index == 1 else json.dumps(chunk)
                    if fault == "error_chunk" and index == 1:
                        payload = json.dumps({"error": {"message": "CUDA out of memory"}})
                    self.wfile.write(f"data: {payload}\n\n".encode())
                    self.wfile.flush()
                    if fault == "error_chunk" and index == 1:
                        break
                    if (fault == "truncate" and index == 1) or (
                        fault == "no_done" and index == len(text) - 1
                    ):
                        return
                self.wfile.write(b"data: [DONE]\n\n")

            def _logprobs(self, text: str) -> None:
                # Whitespace tokens; the right capital gets a high log-probability.
                tokens, offsets, values = [], [], []
                position = 0
                for token in text.split(" "):
                    tokens.append(token)
                    offsets.append(position)
                    values.append(-0.1 if token == answer(text) else -3.0)
                    position += len(token) + 1
                values[0] = None  # the first token has no log-probability
                result = {
                    "choices": [
                        {
                            "text": text,
                            "logprobs": {
                                "tokens": tokens,
                                "text_offset": offsets,
                                "token_logprobs": values,
                            },
                        }
                    ]
                }
                self._send(json.dumps(result).encode(), "application/json")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
