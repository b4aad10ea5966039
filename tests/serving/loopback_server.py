"""A small OpenAI-compatible streaming server on loopback, with faults on demand.

Run as its own process (`python loopback_server.py --port P [options]`), as a real server is:
the tests and benchmarks start it, kill it, or hand it to `llmselect bench --serve`. It is plain
asyncio HTTP/1.1 (keep-alive, chunked server-sent events), so that it adds next to nothing to
what it streams.

It answers GET /v1/models, GET /health, and POST /v1/completions and /v1/chat/completions with
`stream: true`: `max_tokens` tokens, the first after `--ttft` seconds, the next every
`--token-delay` seconds, then the finish reason, the usage (with `--usage`) and [DONE].

Faults, by request number (1-based, counted over the server's life): `--status-every K
--status 500` answers every K-th request with that status; `--drop-every K` closes every K-th
stream after its first token, without [DONE]; `--stall-every K` sends the headers of every K-th
and then nothing; `--json-every K` answers every K-th with a plain JSON completion, as a server
that ignores `stream` does; `--die-after N` exits the process (os._exit, like a crash) when
request N arrives. `--log FILE` appends, per request, its prompt and the server's own time from
reading the request to writing its first token (nanoseconds). `--tls-cert FILE --tls-key FILE`
serves https:// instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import time
from typing import Any


class Options(argparse.Namespace):
    port: int
    ttft: float
    token_delay: float
    usage: bool
    status_every: int
    status: int
    drop_every: int
    stall_every: int
    json_every: int
    die_after: int
    log: str | None
    tls_cert: str | None
    tls_key: str | None


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft", type=float, default=0.0)
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--usage", action="store_true")
    parser.add_argument("--status-every", type=int, default=0)
    parser.add_argument("--status", type=int, default=500)
    parser.add_argument("--drop-every", type=int, default=0)
    parser.add_argument("--stall-every", type=int, default=0)
    parser.add_argument("--json-every", type=int, default=0)
    parser.add_argument("--die-after", type=int, default=0)
    parser.add_argument("--log", default=None)
    parser.add_argument("--tls-cert", default=None)
    parser.add_argument("--tls-key", default=None)
    return parser.parse_args(argv, namespace=Options())


def _every(k: int, n: int) -> bool:
    return k > 0 and n % k == 0


class Server:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.count = 0
        self.log = open(options.log, "a", encoding="utf-8") if options.log else None  # noqa: SIM115

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self.one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        received = time.perf_counter_ns()
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {
            k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:] if x)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if method == "GET" and path == "/v1/models":
            self.reply(writer, 200, {"object": "list", "data": [{"id": "loopback"}]})
        elif method == "GET" and path == "/health":
            self.reply(writer, 200, {"status": "ok"})
        elif method == "POST" and path in ("/v1/completions", "/v1/chat/completions"):
            await self.complete(
                writer, json.loads(body), path.endswith("chat/completions"), received
            )
        else:
            self.reply(writer, 404, {"error": "not found"})
        await writer.drain()
        return True

    def reply(self, writer: asyncio.StreamWriter, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )

    async def complete(
        self, writer: asyncio.StreamWriter, request: dict[str, Any], chat: bool, received: int
    ) -> None:
        self.count += 1
        n, o = self.count, self.options
        if o.die_after and n >= o.die_after:
            os._exit(1)
        if _every(o.status_every, n):
            self.reply(writer, o.status, {"error": {"message": "injected", "code": o.status}})
            return
        if _every(o.json_every, n):  # as a server that ignores `stream` does
            self.reply(writer, 200, {"choices": [{"text": "Paris", "finish_reason": "stop"}]})
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        if _every(o.stall_every, n):
            await writer.drain()
            await asyncio.sleep(3600)
        tokens = int(request.get("max_tokens") or 16)
        prompt = request["messages"][0]["content"] if chat else request.get("prompt", "")

        def event(text: str | None, finish: str | None = None) -> None:
            if chat:
                choice: dict[str, Any] = {"index": 0, "delta": {}, "finish_reason": finish}
                if text is not None:
                    choice["delta"]["content"] = text
            else:
                choice = {"index": 0, "text": text or "", "finish_reason": finish}
            self.send(writer, {"id": f"r{n}", "model": "loopback", "choices": [choice]})

        if o.ttft:
            await asyncio.sleep(o.ttft)
        for i in range(tokens):
            last = i == tokens - 1
            event(f" w{i}", "length" if last else None)
            if i == 0 and self.log:
                first = time.perf_counter_ns()
                self.log.write(
                    json.dumps(
                        {
                            "prompt": prompt,
                            "server_ttft_ns": first - received,
                            "received_ns": received,
                        }
                    )
                )
                self.log.write("\n")
                self.log.flush()
            await writer.drain()
            if i == 0 and _every(o.drop_every, n):
                writer.transport.abort()  # the connection cut mid-answer
                raise ConnectionError("dropped on purpose")
            if o.token_delay and not last:
                await asyncio.sleep(o.token_delay)
        if o.usage:
            usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": tokens}
            self.send(writer, {"id": f"r{n}", "choices": [], "usage": usage})
        writer.write(self.chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")

    def send(self, writer: asyncio.StreamWriter, payload: dict[str, Any]) -> None:
        writer.write(self.chunk(b"data: " + json.dumps(payload).encode() + b"\n\n"))

    @staticmethod
    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def main(argv: list[str]) -> None:
    server = Server(parse(argv))
    tls = None
    if server.options.tls_cert:  # https://, with this certificate and key
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(server.options.tls_cert, server.options.tls_key)
    listening = await asyncio.start_server(server.handle, "127.0.0.1", server.options.port, ssl=tls)
    async with listening:
        await listening.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
