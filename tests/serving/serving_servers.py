"""Real servers for the bench tests: llama-cpp-python's OpenAI-compatible server on a tiny GGUF
built here (one per session), and the loopback server of `loopback_server.py` with faults.

Fixtures a test module imports by name (not a conftest.py: `from conftest import ...` elsewhere
in the suite reads whichever conftest module was loaded last)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
LOOPBACK = HERE / "loopback_server.py"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(url + "/v1/models", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer: {log.read_text(errors='replace')[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_gguf import write_tiny_gguf

    path: Path = write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", seed=0)
    return path


LLAMA_SERVER = [sys.executable, "-m", "llama_cpp.server"]
"""`--interrupt_requests false`: by default the server cuts a stream short when another
request arrives, which a load test must not hide (the bench counts such a stream as an error)."""


@pytest.fixture(scope="session")
def llama_server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                *LLAMA_SERVER,
                "--model",
                str(tiny_gguf),
                "--port",
                str(port),
                "--interrupt_requests",
                "false",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url, process, log)
        yield url
    finally:
        stop(process)


Loopback = Callable[..., str]


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[Loopback]:
    """Start a loopback server with the given options (`ttft=0.01, drop_every=3`...); its URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(**options: object) -> str:
        port = free_port()
        args = [sys.executable, str(LOOPBACK), "--port", str(port)]
        for name, value in options.items():
            flag = "--" + name.replace("_", "-")
            args += [flag] if value is True else [flag, str(value)]
        log = tmp_path / f"loopback-{port}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT)
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_for(url, process, log)
        return url

    yield start
    for process in processes:
        stop(process)
