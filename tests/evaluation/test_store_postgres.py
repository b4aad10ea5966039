"""The PostgreSQL store against a real server: the same interface and answers as SQLite, many
writers without duplicates, migrations, and errors that never show the password."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from llmselect.errors import LLMSelectError, UsageError
from llmselect.evaluation.store import (
    Failure,
    RunInfo,
    RunRecord,
    Sample,
    Store,
    open_store,
    redact_password,
    remove_store,
)
from llmselect.evaluation.store_postgres import PostgresStore
from postgres_server import PostgresServer


def sample(key: str, output: str | None = "o", **fields: object) -> Sample:
    return Sample.model_validate(
        {"cache_key": key, "model": "m", "item_id": key, "prompt": "p", "output": output} | fields
    )


def record(who: str, produced: int, when: str) -> RunRecord:
    return RunRecord(
        model="m",
        backend="openai:http://h/v1:m",
        dataset="data.jsonl",
        dataset_sha256="ab" * 32,
        settings={"kind": "generate", "max_tokens": 8},
        items=10,
        total=10,
        produced=produced,
        device="cpu",
        engine="cpu",
        who=who,
        first_run=when,
        last_run=when,
    )


def exercise(store: Store) -> dict[str, object]:
    """Every public method, as the runner uses them; what each answered."""
    store.put([sample("a", loglikelihoods=[-1.5, -0.25], seconds=0.5, batch_rows=2)])
    store.put_failure(Failure(cache_key="b", model="m", item_id="b", error="gone once stored"))
    store.put([sample("a", output="second"), sample("b", output=None)])  # a is kept as it was
    store.put_failure(Failure(cache_key="c", model="m", item_id="c", error="first"))
    store.put_failure(Failure(cache_key="c", model="m", item_id="c", error="second"))
    store.put_run("be", {"kind": "generate"}, RunInfo(device="cpu", peak_memory_bytes=5 << 30))
    store.put_run("be", {"kind": "generate"}, RunInfo(device="cuda:0", peak_memory_bytes=None))
    store.put_prompts({"s1": "first"})
    store.put_prompts({"s1": "other", "s2": "second"})
    store.put_record(record("ann@a", 10, "2026-12-01T10:00:00Z"))
    store.put_record(record("ann@a", 0, "2026-12-02T10:00:00Z"))
    store.put_record(record("bob@b", 0, "2026-12-03T10:00:00Z"))
    return {
        "done": store.done(["a", "b", "c", "z"]),
        "get": {k: s.model_dump() for k, s in store.get(["a", "b", "z"]).items()},
        "failures": {k: f.error for k, f in store.failures(["a", "b", "c"]).items()},
        "run": store.run_info("be", {"kind": "generate"}),
        "no run": store.run_info("be", {"kind": "other"}),
        "prompts": store.prompts(["s1", "s2", "s3"]),
        "records": [(r.who, r.produced, r.first_run, r.last_run) for r in store.records()],
        "count": store.count(),
    }


def test_postgres_answers_as_sqlite_does(tmp_path: Path, pg_url: str) -> None:
    lite = open_store(tmp_path / "store.sqlite")
    shared = open_store(pg_url)
    assert isinstance(shared, PostgresStore)
    try:
        expected = exercise(lite)
        assert exercise(shared) == expected
    finally:
        lite.close()
        shared.close()
    assert expected["done"] == {"a", "b"}
    assert expected["failures"] == {"c": "second"}
    assert expected["run"] == RunInfo(device="cuda:0", peak_memory_bytes=5 << 30)
    assert expected["prompts"] == {"s1": "first", "s2": "second"}
    assert expected["records"] == [
        ("bob@b", 0, "2026-12-03T10:00:00Z", "2026-12-03T10:00:00Z"),
        ("ann@a", 10, "2026-12-01T10:00:00Z", "2026-12-02T10:00:00Z"),
    ]


def test_many_writers_of_the_same_keys_store_each_once(pg_url: str) -> None:
    """Eight connections write overlapping batches in different orders at once: no deadlock,
    no error, no duplicate."""
    keys = [f"k{i:03d}" for i in range(200)]
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        store = open_store(pg_url)
        try:
            order = keys[seed::3] + keys[::-1]
            for start in range(0, len(order), 25):
                store.put([sample(k, output=f"w{seed}") for k in order[start : start + 25]])
                store.put_prompts({k: f"w{seed}" for k in order[start : start + 10]})
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = open_store(pg_url)
    try:
        assert store.count() == 200
        assert store.done(keys) == set(keys)
        assert len({s.output for s in store.get(keys).values()}) >= 1
    finally:
        store.close()


def test_the_password_is_never_shown(postgres_server: PostgresServer) -> None:
    wrong = postgres_server.url(password="not-the-pw-42")
    with pytest.raises(LLMSelectError) as refused:
        open_store(wrong)
    text = str(refused.value)
    assert "not-the-pw-42" not in text
    assert "refused the login" in text and "PGPASSWORD" in text
    assert f"llmselect:***@127.0.0.1:{postgres_server.port}" in text

    store = open_store(postgres_server.url())
    try:
        assert postgres_server.password not in store.location
    finally:
        store.close()
    assert (
        redact_password("postgresql://u:p%40ss@db:5432/x?sslmode=require&password=q")
        == "postgresql://u:***@db:5432/x?sslmode=require&password=%2A%2A%2A"
    )


def test_an_unreachable_server_and_a_missing_database_say_what_to_do(
    postgres_server: PostgresServer,
) -> None:
    with socket_closed() as port, pytest.raises(LLMSelectError) as unreachable:
        open_store(f"postgresql://u:pw-77@127.0.0.1:{port}/db")
    assert "cannot reach the PostgreSQL server" in str(unreachable.value)
    assert "pg_isready" in str(unreachable.value) and "pw-77" not in str(unreachable.value)

    with pytest.raises(LLMSelectError) as missing:
        open_store(postgres_server.url("no_such_db"))
    assert "the database does not exist" in str(missing.value)
    assert "createdb" in str(missing.value)


def test_fresh_never_deletes_a_shared_store() -> None:
    with pytest.raises(UsageError) as refused:
        remove_store("postgresql://team:pw-9@db/results")
    assert "pw-9" not in str(refused.value) and "--store PATH.sqlite" in str(refused.value)
    with pytest.raises(UsageError, match="mysql://"):
        open_store("mysql://db/x")


class socket_closed:
    """A loopback port nothing listens on, for as long as the block runs."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])  # bound, not listening: connections refused

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_a_connection_the_server_dropped_is_opened_again(pg_url: str) -> None:
    """A server restart or a proxy's idle timeout ends the connection between two writes: the
    next write reconnects and nothing is lost or stored twice."""
    import psycopg

    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    try:
        store.put([sample("a")])
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (store.conn.info.backend_pid,))
        store.put([sample("a"), sample("b")])
        assert store.done(["a", "b"]) == {"a", "b"}
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (store.conn.info.backend_pid,))
        assert store.count() == 2  # a read reconnects too
    finally:
        store.close()


def test_without_the_driver_the_error_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as on an install without the extra
    with pytest.raises(LLMSelectError) as missing:
        open_store("postgresql://team@db/results")
    assert "needs psycopg" in str(missing.value)
    assert 'pip install "llmselect[postgres]"' in str(missing.value)


def test_a_team_member_without_create_rights_uses_a_store_the_owner_made(
    postgres_server: PostgresServer, pg_url: str
) -> None:
    """The owner's first open creates the tables; a member granted only rows reads and writes
    them (PostgreSQL 15 lets no one but the owner create tables in `public`)."""
    import psycopg

    database = pg_url.rsplit("/", 1)[1]
    member = f"member_{database}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {member} LOGIN PASSWORD 'member-pw'")
        admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    member_url = f"postgresql://{member}:member-pw@127.0.0.1:{postgres_server.port}/{database}"
    with pytest.raises(LLMSelectError) as refused:  # an empty database: nothing to use yet
        open_store(member_url)
    assert "as the database's owner" in str(refused.value)
    assert "member-pw" not in str(refused.value)

    open_store(pg_url).close()  # the owner's first open
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {member}"
        )
    store = open_store(member_url)
    try:
        store.put_failure(Failure(cache_key="a", model="m", item_id="a", error="e"))
        store.put([sample("a")])
        store.put_run("be", {}, RunInfo(device="cpu"))
        store.put_prompts({"s": "p"})
        assert store.done(["a"]) == {"a"} and store.failures(["a"]) == {}
    finally:
        store.close()
