"""`llmselect eval --store postgresql://...`: one study, the same results as with SQLite; two
runs at once on one shared store; a team member's rerun reuses what another measured; resume
after a crash; `llmselect runs list|show`; the password never printed or written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from openai_server import FakeServer, write_study
from typer.testing import CliRunner

from llmselect.cli import app
from postgres_server import PASSWORD, PostgresServer

runner = CliRunner()


def eval_json(study: Path, out: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    result = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json", *args], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(query))  # the tests' own queries


def without_paths(results: dict[str, Any]) -> dict[str, Any]:
    """What must match between two runs of a study: all but where the dataset was read from."""
    return {k: v for k, v in results.items() if k != "dataset"} | {
        "dataset": {k: v for k, v in results["dataset"].items() if k != "path"}
    }


def test_a_study_gives_the_same_results_on_sqlite_and_postgresql(
    tmp_path: Path,
    pg_url: str,
) -> None:
    with FakeServer(slow_s=0) as server:
        study = write_study(tmp_path, server.url, n=12)
        on_sqlite = eval_json(study, tmp_path / "lite", "--no-record")
        on_postgres = eval_json(study, tmp_path / "pg", "--store", pg_url, "--no-record")
        assert server.requests == 24  # each store ran the model on every item once
    for results in (on_sqlite, on_postgres):
        for model in results["models"].values():  # timings differ between runs: not compared
            model["latency"] = None
    assert on_postgres == on_sqlite
    assert on_postgres["models"]["api"]["metrics"]["exact_match"]["n"] == 12
    assert not (tmp_path / "pg" / "store.sqlite").exists()  # the outputs went to the server
    samples = (tmp_path / "pg" / "samples.jsonl").read_text()
    assert samples == (tmp_path / "lite" / "samples.jsonl").read_text()
    assert rows(pg_url, "SELECT COUNT(*), COUNT(DISTINCT cache_key) FROM samples") == [(12, 12)]


def test_a_second_person_reuses_what_the_first_measured(
    tmp_path: Path,
    pg_url: str,
) -> None:
    """Two team members, one study, one shared store: the second run asks the model nothing,
    and `runs list` shows who measured it and who reused it."""
    with FakeServer(slow_s=0) as server:
        study = write_study(tmp_path, server.url, n=10)
        first = eval_json(study, tmp_path / "ann", "--store", pg_url, env={"USER": "ann"})
        asked = server.requests
        second = eval_json(study, tmp_path / "bob", "--store", pg_url, env={"USER": "bob"})
        assert (asked, server.requests - asked) == (10, 0)
    assert second["models"]["api"]["metrics"] == first["models"]["api"]["metrics"]

    listed = runner.invoke(app, ["runs", "list", "--store", pg_url, "--json"])
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.stdout)["runs"]
    assert [(r["who"].split("@")[0], r["model"], r["items"], r["produced"]) for r in runs] == [
        ("bob", "api", 10, 0),
        ("ann", "api", 10, 10),
    ]
    sha = first["dataset"]["sha256"]
    assert {r["dataset_sha256"] for r in runs} == {sha}
    assert runs[0]["backend"] == f"openai:{server.url}:tiny"
    assert runs[0]["settings"] == first["task"]

    table = runner.invoke(app, ["runs", "list", "--store", pg_url], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "ann" in table.stdout and "bob" in table.stdout and sha[:12] in table.stdout
    assert "10/10" in table.stdout

    shown = runner.invoke(app, ["runs", "show", "api", "--store", pg_url, "--json"])
    assert shown.exit_code == 0, shown.output
    assert len(json.loads(shown.stdout)["runs"]) == 2
    detail = runner.invoke(app, ["runs", "show", "api", "--store", pg_url])
    assert sha in detail.stdout and '"max_tokens": 64' in detail.stdout
    assert "ann@" in detail.stdout and "10 by this person" in detail.stdout

    missing = runner.invoke(app, ["runs", "show", "other", "--store", pg_url])
    assert missing.exit_code == 2
    assert "no runs of 'other'" in missing.stderr and "api" in missing.stderr


def test_two_evals_at_once_on_one_store_store_each_item_once(
    tmp_path: Path,
    pg_url: str,
) -> None:
    """Two `llmselect eval` processes of one study, started together against one PostgreSQL
    store: both succeed, each item is stored once, both score every item."""
    with FakeServer(slow_s=0.01) as server:
        study = write_study(tmp_path, server.url, n=60, concurrency=4)
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        procs = [
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "llmselect", "eval", str(study), "--json"),
                    *("--no-record", "--out", str(tmp_path / f"out{i}"), "--store", pg_url),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for i in range(2)
        ]
        outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err
        assert json.loads(out)["models"]["api"]["metrics"]["exact_match"]["n"] == 60
    assert rows(pg_url, "SELECT COUNT(*), COUNT(DISTINCT cache_key) FROM samples") == [(60, 60)]
    assert rows(pg_url, "SELECT COUNT(*) FROM prompts") == [(60,)]
    assert rows(pg_url, "SELECT COUNT(*) FROM failures") == [(0,)]


def test_a_run_that_died_resumes_on_the_shared_store(
    tmp_path: Path,
    pg_url: str,
) -> None:
    with FakeServer(slow_s=0) as server:
        study = write_study(tmp_path, server.url, n=30, retries=1)
        server.die_after = 12
        died = runner.invoke(
            app, ["eval", str(study), "--out", str(tmp_path / "o"), "--store", pg_url]
        )
        assert died.exit_code == 1, died.output
        assert rows(pg_url, "SELECT COUNT(*) FROM samples") == [(12,)]
        server.die_after = None
        before = server.requests
        resumed = eval_json(study, tmp_path / "o", "--store", pg_url)
        assert server.requests - before == 18
    assert resumed["models"]["api"]["metrics"]["exact_match"]["n"] == 30


def test_the_study_names_the_store_and_fresh_leaves_a_shared_one_alone(
    tmp_path: Path,
    postgres_server: PostgresServer,
    pg_url: str,
) -> None:
    """`store:` in the study, its password from PGPASSWORD: never printed nor written; a
    password in the study itself is refused, with the file, line and field."""
    password = postgres_server.password
    bare = pg_url.replace(f":{password}@", "@")
    env = {"PGPASSWORD": password}
    with FakeServer(slow_s=0) as server:
        study = write_study(tmp_path, server.url, n=5)
        spec = json.loads(study.read_text())
        study.write_text(json.dumps(spec | {"store": bare}))
        results = eval_json(study, tmp_path / "o", env=env)
        assert results["models"]["api"]["metrics"]["exact_match"]["n"] == 5
        assert rows(pg_url, "SELECT COUNT(*) FROM samples") == [(5,)]

        args = ["eval", str(study), "--out", str(tmp_path / "o")]
        fresh = runner.invoke(app, [*args, "--fresh"], env=env)
        assert fresh.exit_code == 2
        assert "shared PostgreSQL store" in fresh.stderr and "left as it is" in fresh.stderr
        assert rows(pg_url, "SELECT COUNT(*) FROM samples") == [(5,)]  # nothing deleted

        study.write_text(json.dumps(spec, indent=1)[:-2] + f',\n "store": "{pg_url}"\n}}')
        refused = runner.invoke(app, args)
    assert refused.exit_code == 1
    line = study.read_text().splitlines().index(f' "store": "{pg_url}"') + 1
    assert f"study.yaml:{line}: store:" in refused.stderr and "PGPASSWORD" in refused.stderr
    written = "".join(p.read_text() for p in (tmp_path / "o").iterdir() if p.is_file())
    for text in (fresh.output, refused.output, written):
        assert password not in text


def test_runs_of_a_sqlite_store_and_a_store_that_is_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQLite `store:` in the study is relative to the study file, wherever eval runs from."""
    with FakeServer(slow_s=0) as server:
        study = write_study(tmp_path, server.url, n=4)
        study.write_text(json.dumps(json.loads(study.read_text()) | {"store": "kept/s.sqlite"}))
        monkeypatch.chdir(tmp_path.parent)
        eval_json(study, tmp_path / "o", "--no-record")
    assert not (tmp_path / "o" / "store.sqlite").exists()
    monkeypatch.setenv("LLMSELECT_STORE", str(tmp_path / "kept" / "s.sqlite"))
    listed = runner.invoke(app, ["runs", "list"])
    assert listed.exit_code == 0, listed.output
    assert "4/4" in listed.stdout
    missing = runner.invoke(app, ["runs", "list", "--store", str(tmp_path / "nope.sqlite")])
    assert missing.exit_code == 2 and "no result store here" in missing.stderr
    assert not (tmp_path / "nope.sqlite").exists()


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_both_url_schemes_open_the_server(
    scheme: str,
    pg_url: str,
) -> None:
    listed = runner.invoke(
        app, ["runs", "list", "--json", "--store", pg_url.replace("postgresql", scheme, 1)]
    )
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["runs"] == []


def test_select_measures_into_the_shared_store_and_reuses_it(tmp_path: Path, pg_url: str) -> None:
    """`select --store URL`, then the study's `store:` from another folder: the second selection
    asks the model nothing; `--fresh` leaves the shared store alone."""
    import yaml

    assert runner.invoke(app, ["init", str(tmp_path / "study")]).exit_code == 0
    study_file = tmp_path / "study" / "study.yaml"
    study: dict[str, Any] = yaml.safe_load(study_file.read_text())
    items = len((tmp_path / "study" / "data" / "eval.jsonl").read_text().splitlines())
    with FakeServer(slow_s=0) as server:
        run = {"id": "mistralai/Mistral-7B-Instruct-v0.2", "openai": server.url, "model": "tiny"}
        study |= {"hardware": "H100-80GB", "candidates": {"ids": [], "run": [run]}}
        study_file.write_text(yaml.safe_dump(study))
        args = ["select", str(study_file), "--json", "--no-report"]
        first = runner.invoke(app, [*args, "--store", pg_url])
        assert first.exit_code == 0, first.output
        assert server.requests == items

        bare = pg_url.replace(f":{PASSWORD}@", "@")  # its password from PGPASSWORD
        study_file.write_text(yaml.safe_dump(study | {"store": bare}))
        again = [*args, "--out", str(tmp_path / "elsewhere")]
        second = runner.invoke(app, again, env={"PGPASSWORD": PASSWORD})
        assert second.exit_code == 0, second.output
        assert server.requests == items  # every output came from the store

        fresh = runner.invoke(app, [*args, "--fresh"], env={"PGPASSWORD": PASSWORD})
    assert fresh.exit_code == 2 and "shared PostgreSQL store" in fresh.output
    assert not (tmp_path / "study" / "selection" / "evaluation" / "store.sqlite").exists()
    assert rows(pg_url, "SELECT COUNT(*) FROM samples") == [(items,)]
    measured = [e for e in json.loads(second.stdout)["entries"] if e.get("evaluation")]
    assert measured == [e for e in json.loads(first.stdout)["entries"] if e.get("evaluation")]
    # One person's two runs: one record, what the first produced and the second reused.
    assert rows(pg_url, "SELECT model, items, produced FROM run_records") == [
        ("mistralai/Mistral-7B-Instruct-v0.2", items, items)
    ]
