"""The least HTTP/1.1 a load generator needs: a streamed POST over kept-alive connections.

A general HTTP client does a lot per request and per chunk (httpx spends about 1.7 ms of CPU on
a 16-token stream on the machine this was written on, a bare socket 0.3 ms); under load, that
work queues in the client's one event loop and shows up in the TTFT it measures. So the bench's
requests go through this module, and only they: plain asyncio streams, the request written in
one piece, the response read by its framing (chunked, a length, or to the end), each piece of
the body handed on with the time it arrived. http:// and https:// (certificates checked); no
proxies, no redirects, no compression (none is asked for).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

MAX_HEAD = 1 << 20
"""Longest status line and headers read (and longest line of a chunked body's framing)."""
MAX_ERROR_BODY = 1 << 16


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.1 as it should be, or it ended in the middle."""


class StaleConnection(Exception):
    """A kept-alive connection the server had closed: nothing was answered on it."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    _connection: _Connection
    _pool: Pool
    _reusable: bool = False
    _chunks: list[bytes] = field(default_factory=list)

    async def body(self) -> AsyncIterator[tuple[bytes, float]]:
        """The body, piece by piece, each with `time.perf_counter()` when it arrived."""
        reader = self._connection.reader
        framing = self.headers.get("transfer-encoding", "").lower()
        if "chunked" in framing:
            # What arrived is decoded at once (one read brings many chunks when the server
            # streams faster than the client reads), each piece timed by the read that
            # brought it.
            pending = b""
            arrived = time.perf_counter()
            while True:
                payload, pending, finished = _dechunk(pending)
                if payload:
                    yield payload, arrived
                if finished:
                    break
                if len(pending) > MAX_HEAD:
                    raise ProtocolError("a chunk's size line is too long")
                data = await reader.read(65536)
                arrived = time.perf_counter()
                if not data:
                    raise ProtocolError("the body ended in the middle")
                pending += data
            self._reusable = self.headers.get("connection", "").lower() != "close"
        elif "content-length" in self.headers:
            left = int(self.headers["content-length"])
            while left > 0:
                data = await reader.read(min(left, 65536))
                if not data:
                    raise ProtocolError("the body ended before its length")
                left -= len(data)
                yield data, time.perf_counter()
            self._reusable = self.headers.get("connection", "").lower() != "close"
        else:
            while data := await reader.read(65536):
                yield data, time.perf_counter()

    async def read_some(self, limit: int = MAX_ERROR_BODY) -> bytes:
        out = b""
        async for data, _ in self.body():
            out += data
            if len(out) > limit:
                break
        return out[:limit]

    def done(self) -> None:
        """Hand the connection back (kept if the body was read whole), or close it."""
        self._pool.release(self._connection, self._reusable)


def _dechunk(data: bytes) -> tuple[bytes, bytes, bool]:
    """The payload of the whole chunks at the start of `data`, what is left, and whether the
    last chunk (size 0, and its trailers) was among them."""
    pieces: list[bytes] = []
    at = 0
    while (eol := data.find(b"\r\n", at)) >= 0:
        try:
            size = int(data[at:eol].split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError("bad chunk size") from None
        if size == 0:
            end = data.find(b"\r\n\r\n", eol)  # the trailers, if any, and the blank line
            if end < 0:
                break
            return b"".join(pieces), data[end + 4 :], True
        start = eol + 2
        if len(data) < start + size + 2:
            break
        pieces.append(data[start : start + size])
        at = start + size + 2
    return b"".join(pieces), data[at:], False


@dataclass(eq=False)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used: bool = False


class Pool:
    """Kept-alive connections to one server, as many as requests in flight."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {url}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        default = (parts.scheme == "https" and self.port == 443) or self.port == 80
        self.authority = self.host if default else f"{self.host}:{self.port}"
        if ":" in self.host and not default:  # an IPv6 address
            self.authority = f"[{self.host}]:{self.port}"
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.ssl, limit=MAX_HEAD
        )
        connection = _Connection(reader, writer)
        self._open.add(connection)
        return connection

    def release(self, connection: _Connection, reusable: bool) -> None:
        if reusable and not connection.writer.is_closing():
            connection.used = True
            self._idle.append(connection)
        else:
            self._close(connection)

    def _close(self, connection: _Connection) -> None:
        self._open.discard(connection)
        connection.writer.close()

    async def aclose(self) -> None:
        for connection in list(self._open):
            self._close(connection)
        self._idle.clear()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Response:
        """Send the request; the response's status and headers read. A kept-alive connection
        that turns out closed is replaced once (nothing was answered on it)."""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.authority}\r\n"
            "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
            f"Content-Length: {len(body)}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            + "\r\n"
        ).encode("latin-1")
        request = head + body
        while True:
            connection = self._idle.pop() if self._idle else await self._connect()
            try:
                return await self._exchange(connection, request)
            except StaleConnection:
                self._close(connection)
                continue
            except BaseException:
                self._close(connection)
                raise

    async def _exchange(self, connection: _Connection, request: bytes) -> Response:
        connection.writer.write(request)
        try:
            head = await connection.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if connection.used and not exc.partial:
                raise StaleConnection from None
            raise ProtocolError("the connection closed before an answer") from None
        except asyncio.LimitOverrunError:
            raise ProtocolError("the answer's headers are too long") from None
        lines = head.decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
            raise ProtocolError("not an HTTP answer")
        try:
            status = int(status_line[1])
        except ValueError:
            raise ProtocolError("not an HTTP status") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        return Response(status, headers, connection, self)
