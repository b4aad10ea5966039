"""Serving engines started for a bench: a `serve:` command run as a child process, waited for
until it answers, its output kept in a log file, and stopped however the bench ends.

The command is a template: `vllm serve {model} --port {port}`,
`python -m llama_cpp.server --model {file} --port {port}`, `llama-server -m {file} --port
{port}`. It is split like a shell line and run without a shell (nothing in it is interpreted
but the three placeholders), in a process group of its own, so that stopping it stops what it
started.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from llmselect.errors import LLMSelectError
from llmselect.serving.client import base_url

PLACEHOLDERS = ("model", "file", "port")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class EngineError(LLMSelectError):
    """The engine did not start, or stopped while it was measured; the message ends with the
    tail of its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def command_line(template: str, *, model: str | None, file: str | None, port: int) -> list[str]:
    """The template's words with `{model}`, `{file}` and `{port}` filled in."""
    try:
        words = shlex.split(template)
    except ValueError as exc:
        raise LLMSelectError(f"serve command: {exc}", field="serve") from exc
    if not words:
        raise LLMSelectError("the serve command is empty", field="serve")
    values = {"model": model, "file": file, "port": str(port)}
    out = []
    for word in words:
        for name in _PLACEHOLDER.findall(word):
            if name not in PLACEHOLDERS:
                raise LLMSelectError(
                    f"unknown placeholder {{{name}}} in the serve command",
                    field="serve",
                    hint="use {model}, {file} and {port}",
                )
            if values[name] is None:
                raise LLMSelectError(
                    f"the serve command uses {{{name}}}, but no {name} was given",
                    field="serve",
                    hint=f"give --{name} (or the candidate's {name})",
                )
        out.append(_PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), word))
    return out


def first_model(url: str, api_key: str | None = None) -> str:
    """The name of the first model a server lists in /v1/models."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    root = base_url(url)
    try:
        answer = httpx.get(root + "/v1/models", headers=headers, timeout=10.0)
        answer.raise_for_status()
        models = answer.json().get("data") or []
        return str(models[0]["id"])
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise LLMSelectError(
            f"could not read the model's name from {root}/v1/models ({type(exc).__name__})",
            field="model",
            hint="give the model's name (the name the server knows it by)",
        ) from None


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(the log is empty)"


class EngineServer:
    """A serving engine for the time of a `with` block: started, healthy, then stopped."""

    def __init__(
        self,
        template: str,
        *,
        log: Path,
        model: str | None = None,
        file: str | None = None,
        port: int | None = None,
        startup_timeout_s: float = 600.0,
        stop_timeout_s: float = 15.0,
    ) -> None:
        self.port = port or free_port()
        self.command = command_line(template, model=model, file=file, port=self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.startup_s: float | None = None
        self._started = 0.0
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EngineServer:
        self.start()
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as sink:
            try:
                self._process = subprocess.Popen(  # noqa: S603 - a list, no shell
                    self.command,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise EngineError(
                    f"could not start the serve command {self.command[0]!r}: {exc.strerror}",
                    field="serve",
                    hint="check that the engine is installed and on PATH",
                ) from exc
        self._started = time.perf_counter()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def first_model(self) -> str:
        return first_model(self.url)

    def died(self, what: str, *, measured: bool = True) -> EngineError:
        """The error for an engine that stopped: its exit code and the tail of its log."""
        code = self._process.poll() if self._process else None
        return EngineError(
            f"{what} (exit code {code}); the last lines of its log {self.log}:\n"
            + log_tail(self.log),
            hint="read the whole log"
            + ("; the results measured so far are kept" if measured else ""),
        )

    def wait_healthy(self) -> None:
        """Until GET /health answers 200, or, where there is no /health, GET /v1/models does."""
        deadline = time.perf_counter() + self.startup_timeout_s
        with httpx.Client(timeout=2.0) as http:
            while True:
                if not self.alive:
                    raise self.died(
                        f"the engine exited before it answered: {self.command[0]}",
                        measured=False,
                    )
                if _healthy(http, self.url):
                    self.startup_s = time.perf_counter() - self._started
                    return
                if time.perf_counter() > deadline:
                    raise EngineError(
                        f"the engine did not answer within {self.startup_timeout_s:g} s; the "
                        f"last lines of its log {self.log}:\n" + log_tail(self.log),
                        hint="raise --startup-timeout for large models, or read the log",
                    )
                time.sleep(0.25)

    def stop(self) -> None:
        """SIGTERM to its process group, then SIGKILL after `stop_timeout_s`."""
        process = self._process
        if process is None:
            return
        for sig, wait in ((signal.SIGTERM, self.stop_timeout_s), (signal.SIGKILL, 5.0)):
            if process.poll() is not None:
                break
            _signal_group(process.pid, sig)
            try:
                process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        # What the engine started and left behind (workers of a leader that already exited).
        _signal_group(process.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Launcher:
    """Starts the engines of an evaluation's `serve` candidates (`evaluation.backends.served`),
    each with a log of its own in `log_dir`: NAME-TIME-PID.log, as several units of one
    candidate may start engines at once on a cluster's node. Without `log_dir`, a temporary
    folder on the machine that runs the unit."""

    log_dir: Path | None = None

    def __call__(
        self,
        command: str,
        *,
        name: str,
        model: str | None,
        file: str | None,
        startup_timeout_s: float,
    ) -> EngineServer:
        folder = Path(tempfile.gettempdir()) / "llmselect-engines"
        if self.log_dir is not None:
            with contextlib.suppress(OSError):  # a cluster's node without the driver's folder
                self.log_dir.mkdir(parents=True, exist_ok=True)
                folder = self.log_dir
        when = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        safe = re.sub(r"[^\w.-]", "_", name)
        stem = f"{safe}-{when}-{os.getpid()}"
        log = folder / f"{stem}.log"
        for again in itertools.count(2):  # a start within the same second keeps its own
            try:
                log.touch(exist_ok=False)
                break
            except FileExistsError:
                log = folder / f"{stem}-{again}.log"
        server = EngineServer(
            command, log=log, model=model, file=file, startup_timeout_s=startup_timeout_s
        )
        server.start()
        try:
            server.wait_healthy()
        except BaseException:
            server.stop()
            raise
        return server


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pid, sig)


def _healthy(http: httpx.Client, url: str) -> bool:
    try:
        health = http.get(url + "/health")
        if health.status_code == 200:
            return True
        if health.status_code != 404:
            return False  # 503 while the model loads (vLLM, llama.cpp's server)
        return http.get(url + "/v1/models").status_code == 200
    except httpx.HTTPError:
        return False
