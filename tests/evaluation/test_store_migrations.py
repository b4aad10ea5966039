"""A store written by an older llmselect opens, keeps its rows and gains the new tables and
columns, on SQLite and on PostgreSQL; one written by a newer llmselect is refused; many first
opens of an empty PostgreSQL database at once create its tables once."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from llmselect.errors import LLMSelectError
from llmselect.evaluation.store import SCHEMA_VERSION, RunInfo, open_store

# The tables as llmselect wrote them before `engine`, `batch_rows`, the prompts table, the run
# records and the schema version existed.
FIRST_SCHEMA = [
    """CREATE TABLE samples (cache_key TEXT PRIMARY KEY, model TEXT NOT NULL,
    item_id TEXT NOT NULL, prompt TEXT NOT NULL, output TEXT, loglikelihoods TEXT,
    prompt_tokens INTEGER, output_tokens INTEGER, seconds REAL, ttft_s REAL,
    created TEXT DEFAULT CURRENT_TIMESTAMP)""",
    """CREATE TABLE runs (backend TEXT NOT NULL, settings TEXT NOT NULL, device TEXT,
    dtype TEXT, peak_memory_bytes BIGINT, updated TEXT DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (backend, settings))""",
    """CREATE TABLE failures (cache_key TEXT PRIMARY KEY, model TEXT NOT NULL,
    item_id TEXT NOT NULL, error TEXT NOT NULL, created TEXT DEFAULT CURRENT_TIMESTAMP)""",
    "INSERT INTO samples (cache_key, model, item_id, prompt, output, seconds) "
    "VALUES ('k1', 'm', 'q1', 'p', 'old output', 0.25)",
    "INSERT INTO runs (backend, settings, device, peak_memory_bytes) "
    "VALUES ('be', '{}', 'cuda:0', 7000000000)",
]


def sqlite_db(tmp_path: Path) -> tuple[str, Callable[[str], None]]:
    path = tmp_path / "old.sqlite"

    def run(statement: str) -> None:
        with sqlite3.connect(path) as db:
            db.execute(statement)

    return str(path), run


def postgres_db(url: str) -> tuple[str, Callable[[str], None]]:
    def run(statement: str) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(statement)  # the tests' own statements

    return url, run


@pytest.fixture(params=["sqlite", "postgresql"])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Callable[[str], None]]:
    """A store's location, and a way to run SQL on it, holding the first schema's rows."""
    if request.param == "sqlite":
        location, run = sqlite_db(tmp_path)
    else:
        location, run = postgres_db(request.getfixturevalue("pg_url"))
    for statement in FIRST_SCHEMA:
        run(statement)
    return location, run


def test_an_older_store_is_brought_up_to_date_with_its_rows(
    old_store: tuple[str, Callable[[str], None]],
) -> None:
    location, _ = old_store
    store = open_store(location)
    try:
        kept = store.get(["k1"])["k1"]
        assert (kept.output, kept.seconds, kept.batch_rows) == ("old output", 0.25, None)
        run = store.run_info("be", {})
        assert run == RunInfo(device="cuda:0", peak_memory_bytes=7_000_000_000, engine=None)
        assert store.records() == []
        assert store.prompts(["any"]) == {}
        store.put_run("be", {}, RunInfo(device="cuda:0", engine="transformers-eager"))
        assert store.run_info("be", {}) == RunInfo(
            device="cuda:0", engine="transformers-eager", peak_memory_bytes=7_000_000_000
        )
    finally:
        store.close()
    again = open_store(location)  # a second open changes nothing
    try:
        assert again.count() == 1
    finally:
        again.close()


def test_a_store_from_a_newer_llmselect_is_refused(
    old_store: tuple[str, Callable[[str], None]],
) -> None:
    location, run = old_store
    open_store(location).close()
    run(f"UPDATE store_meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema_version'")
    with pytest.raises(LLMSelectError) as refused:
        open_store(location)
    assert f"newer llmselect (schema {SCHEMA_VERSION + 1}" in str(refused.value)
    assert "upgrade llmselect" in str(refused.value)


def test_first_opens_of_an_empty_database_at_once_create_it_once(
    pg_url: str,
) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def first_open() -> None:
        try:
            start.wait()
            open_store(pg_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_open) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(pg_url) as conn:
        tables: list[Any] = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' ORDER BY table_name"
            )
        ]
    assert tables == ["failures", "prompts", "run_records", "runs", "samples", "store_meta"]
