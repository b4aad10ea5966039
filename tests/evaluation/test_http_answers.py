"""What a server answers is read for what it is: a plain JSON completion is a completion; a web
page or a stream cut before `data: [DONE]` is an error for that item, never an empty or partial
answer stored as a success."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from openai_server import FakeServer, write_study
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()


def outputs(out: Path) -> dict[str, str]:
    with sqlite3.connect(out / "store.sqlite") as db:
        return dict(db.execute("SELECT item_id, output FROM samples").fetchall())


def test_a_plain_json_completion_from_a_server_that_ignores_stream_is_read(
    tmp_path: Path,
) -> None:
    with FakeServer() as server:
        server.always["capital"] = "json"
        study = write_study(tmp_path, server.url)
        result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out"), "--json"])
        assert result.exit_code == 0, result.output
        assert server.requests == 9
    api = json.loads(result.stdout)["models"]["api"]
    assert api["metrics"]["exact_match"]["mean"] == 1.0
    assert api["latency"]["prompt_tokens_p50"] == 8  # the usage the server reported
    assert api["latency"]["output_tokens"] == 2 * 9
    assert api["latency"]["ttft_p50_s"] is None  # nothing streamed, no first token measured
    assert set(outputs(tmp_path / "out").values()) == {" Paris", " London", " Rome"}


def test_chat_reads_a_plain_json_completion_too(tmp_path: Path) -> None:
    with FakeServer() as server:
        server.always["capital"] = "json"
        study = write_study(tmp_path, server.url)
        spec = json.loads(study.read_text())
        spec["task"]["chat"] = True
        study.write_text(json.dumps(spec))
        result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out"), "--json"])
        assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["models"]["api"]["metrics"]["exact_match"]["mean"] == 1.0


def test_a_web_page_is_an_error_for_its_item_counted_and_not_stored(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeServer() as server:
        server.always["(3)"] = "html"
        study = write_study(tmp_path, server.url)
        result = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        # Said on stderr: the model, the item, the URL and what came back.
        assert "q3" in result.stderr and server.url in result.stderr
        assert "<!DOCTYPE html>" in result.stderr
        api = json.loads(result.stdout)["models"]["api"]
        assert api["failed"] == 1
        assert api["errors"][0]["item_id"] == "q3"
        assert "not a completion" in api["errors"][0]["error"]
        assert api["metrics"]["exact_match"]["n"] == 8
        assert "q3" not in outputs(out)

        del server.always["(3)"]  # the proxy is fixed: the rerun asks for that item only
        before = server.requests
        again = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
        assert again.exit_code == 0, again.output
        assert server.requests - before == 1
    api = json.loads(again.stdout)["models"]["api"]
    assert api["failed"] == 0 and api["errors"] == []
    assert api["metrics"]["exact_match"]["n"] == 9


def test_a_stream_cut_before_done_is_retried(tmp_path: Path) -> None:
    with FakeServer() as server:
        server.faults.extend(["truncate", "truncate"])
        study = write_study(tmp_path, server.url)
        result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out"), "--json"])
        assert result.exit_code == 0, result.output
        assert server.requests == 9 + 2
    assert json.loads(result.stdout)["models"]["api"]["metrics"]["exact_match"]["mean"] == 1.0


def test_a_stream_always_cut_is_an_error_not_cached_and_the_rerun_retries_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    with FakeServer() as server:
        server.always["(5)"] = "truncate"
        study = write_study(tmp_path, server.url, retries=1)
        result = runner.invoke(app, ["eval", str(study), "--out", str(out)])
        assert result.exit_code == 1, result.output
        assert "truncated" in result.stderr and "q5" in result.stderr
        assert "[DONE]" in result.stderr
        assert server.requests == 8 + 2  # the cut item was tried twice (retries: 1)
        assert sorted(outputs(out)) == [f"q{i}" for i in range(9) if i != 5]

        del server.always["(5)"]
        before = server.requests
        again = runner.invoke(app, ["eval", str(study), "--out", str(out)])
        assert again.exit_code == 0, again.output
        assert server.requests - before == 1
    assert outputs(out)["q5"] == " Rome"


def test_an_error_inside_the_stream_is_an_error_not_an_empty_answer(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeServer() as server:
        server.always["(4)"] = "error_chunk"
        study = write_study(tmp_path, server.url, retries=1)
        result = runner.invoke(app, ["eval", str(study), "--out", str(out)])
        assert result.exit_code == 1, result.output
        assert "q4" in result.stderr and "CUDA out of memory" in result.stderr
    assert "q4" not in outputs(out) and len(outputs(out)) == 8


def test_a_whole_stream_with_a_finish_reason_and_no_done_is_kept(tmp_path: Path) -> None:
    with FakeServer() as server:
        server.always["capital"] = "no_done"
        study = write_study(tmp_path, server.url)
        result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out"), "--json"])
        assert result.exit_code == 0, result.output
        assert server.requests == 9
    assert json.loads(result.stdout)["models"]["api"]["metrics"]["exact_match"]["mean"] == 1.0
