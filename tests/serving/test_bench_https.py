"""`llmselect bench https://...`: the load generator speaks TLS and checks the certificate, with
the trust store the environment names (SSL_CERT_FILE, as for a private CA)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving_servers import LOOPBACK, free_port, stop
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The loopback server over TLS with a self-signed certificate for 127.0.0.1; its URL and
    the certificate."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *[openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"],
            *["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"],
            *["-addext", "subjectAltName=IP:127.0.0.1"],
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    process = subprocess.Popen(
        [
            *[sys.executable, str(LOOPBACK), "--port", str(port), "--usage"],
            *["--token-delay", "0.001", "--tls-cert", str(cert), "--tls-key", str(key)],
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"https://127.0.0.1:{port}"
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        for _ in range(100):
            try:
                if httpx.get(url + "/health", verify=trusted, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url, cert
    finally:
        stop(process)


def bench(url: str) -> list[str]:
    return [
        *["bench", url, "--concurrency", "1,3", "--requests", "6", "--output-tokens", "5"],
        "--json",
    ]


def test_bench_over_https_with_a_trusted_certificate(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = https_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    result = runner.invoke(app, bench(url))
    assert result.exit_code == 0, result.output
    levels = json.loads(result.stdout)["levels"]
    assert [(lv["concurrency"], lv["completed"], lv["errors"]) for lv in levels] == [
        (1, 6, 0),
        (3, 6, 0),
    ]
    assert all(lv["output_tokens"] == 30 and lv["tokens_source"] == "usage" for lv in levels)


def test_bench_refuses_a_certificate_it_cannot_check(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = https_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    result = runner.invoke(app, [*bench(url)[:-1], "--model", "loopback"])
    assert result.exit_code == 1
    assert "could not be verified" in result.stderr and "SSL_CERT_FILE" in result.stderr
    assert "stopped answering" not in result.output  # said once, before any level
