"""Credentials go only where they are safe, and are written nowhere.

The API key (or a user and password inside the URL) is refused over plain http:// to a host that
is neither loopback nor on a private network, unless the candidate says `allow_insecure_http:
true`; a password inside the URL never reaches results.json, samples, the store or a message."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from openai_server import FakeServer, write_study
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.evaluation.backends.openai_http import OpenAIBackend

runner = CliRunner()
PUBLIC = "http://203.0.113.7:9/v1"  # TEST-NET-3: a public address, reached by nobody


def run(study: Path, out: Path) -> tuple[int, str, str]:
    result = runner.invoke(app, ["eval", str(study), "--out", str(out)])
    return result.exit_code, result.stdout, result.stderr


def test_the_key_is_refused_over_http_to_a_public_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    study = write_study(tmp_path, PUBLIC, retries=0, timeout_s=0.3)
    code, _, err = run(study, tmp_path / "out")
    assert code == 1
    assert "203.0.113.7" in err and "allow_insecure_http: true" in err and "https://" in err
    assert "Traceback" not in err and "failed after" not in err  # refused before any request


@pytest.mark.parametrize(
    ("url", "allow", "key"),
    [
        (PUBLIC, True, "sk-test-key"),  # said explicitly
        ("https://203.0.113.7:9/v1", False, "sk-test-key"),  # encrypted
        ("http://10.255.255.1:9/v1", False, "sk-test-key"),  # a private network
        ("http://[::1]:9/v1", False, "sk-test-key"),  # loopback
        (PUBLIC, False, None),  # no key to give away
    ],
)
def test_the_key_goes_where_the_study_allows_it(
    monkeypatch: pytest.MonkeyPatch, url: str, allow: bool, key: str | None
) -> None:
    # Built, not run: nothing is sent off this machine by the tests.
    if key:
        monkeypatch.setenv("OPENAI_API_KEY", key)
    else:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    backend = OpenAIBackend(url, "tiny", name="api", allow_insecure_http=allow)
    assert backend.client.headers.get("Authorization") == (f"Bearer {key}" if key else None)
    backend.close()


def test_the_key_is_sent_to_a_local_server_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    with FakeServer() as server:
        url = server.url.replace("127.0.0.1", "localhost")
        code, _, err = run(write_study(tmp_path, url, n=3), tmp_path / "out")
        assert code == 0, err
        assert server.authorization == ["Bearer sk-test-key"] * 3


def everything_written(out: Path, *texts: str) -> str:
    """Every file under `out` (the store's pages and log included) and the messages shown."""
    blobs = [p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file()]
    return "\n".join([*blobs, *texts])


def test_a_password_in_the_url_is_used_and_written_nowhere(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeServer() as server:
        url = server.url.replace("http://", "http://alice:s3cr3t-pw@")
        study = write_study(tmp_path, url, n=3)
        code, stdout, err = run(study, out)
        assert code == 0, err
        # httpx sends the URL's user and password as basic authentication.
        assert (
            server.authorization == ["Basic " + base64.b64encode(b"alice:s3cr3t-pw").decode()] * 3
        )
        server.faults.extend(["500"] * 10)  # and when it fails, the message holds no password
        (tmp_path / "data.jsonl").write_text(
            (tmp_path / "data.jsonl").read_text()
            + json.dumps({"id": "x", "question": "France?", "answer": "Paris"})
            + "\n"
        )
        failed, stdout2, err2 = run(study, out)
        assert failed == 1 and "failed after" in err2
        json_run = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    written = everything_written(out, stdout, err, stdout2, err2, json_run.output)
    assert "s3cr3t-pw" not in written
    results = json.loads((out / "results.json").read_text())
    assert (
        results["models"]["api"]["backend"]
        == f"openai:{server.url.replace('http://', 'http://***@')}:tiny"
    )


def test_a_password_in_the_url_counts_as_a_credential_over_http(tmp_path: Path) -> None:
    study = write_study(tmp_path, "http://alice:s3cr3t-pw@203.0.113.7:9/v1", retries=0)
    code, _, err = run(study, tmp_path / "out")
    assert code == 1 and "allow_insecure_http: true" in err
    assert "s3cr3t-pw" not in err and "***@203.0.113.7" in err
