"""The result store on a PostgreSQL server: one store a team shares, many writers at once.

The tables and keys are SQLite's (`store`), so a study resumes, reuses and scores the same way
on both. What differs is how writers meet: every write is one statement, so one short
transaction and one round trip to the server; an output already stored is left as it is (`ON
CONFLICT DO NOTHING`); and the rows of a batch are written in key order, so two writers of the
same keys wait for each other instead of deadlocking. The
schema is created and migrated under an advisory lock, so two processes opening a new store at
once do not race. A connection the server dropped (a restart, a proxy's idle timeout) is opened
again once, and the statement rerun: every statement here may run twice. A password in the URL
is never shown: errors name the URL without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from llmselect.errors import LLMSelectError
from llmselect.evaluation.store import (
    ADDED_COLUMNS,
    COLUMNS,
    META_SCHEMA,
    PROMPTS_SCHEMA,
    RECORD_COLUMNS,
    RECORDS_SCHEMA,
    SCHEMA_VERSION,
    Failure,
    RunInfo,
    RunRecord,
    Sample,
    Store,
    _record,
    _record_row,
    newer_schema,
    redact_password,
    sample_from_row,
    settings_key,
)

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")

# SQLite's tables in PostgreSQL's types: 64-bit counts of bytes, timestamps with a zone.
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS samples (
    cache_key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    item_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    output TEXT,
    loglikelihoods TEXT,
    prompt_tokens INTEGER,
    output_tokens INTEGER,
    seconds DOUBLE PRECISION,
    ttft_s DOUBLE PRECISION,
    created TIMESTAMPTZ DEFAULT now(),
    batch_rows INTEGER
)""",
    """CREATE TABLE IF NOT EXISTS runs (
    backend TEXT NOT NULL,
    settings TEXT NOT NULL,
    device TEXT,
    dtype TEXT,
    peak_memory_bytes BIGINT,
    updated TIMESTAMPTZ DEFAULT now(),
    engine TEXT,
    PRIMARY KEY (backend, settings)
)""",
    """CREATE TABLE IF NOT EXISTS failures (
    cache_key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    item_id TEXT NOT NULL,
    error TEXT NOT NULL,
    created TIMESTAMPTZ DEFAULT now()
)""",
    # Tables whose SQL reads the same in both dialects: one definition for both stores.
    PROMPTS_SCHEMA,
    RECORDS_SCHEMA,
    META_SCHEMA,
]

MIGRATION_LOCK = 0x6C6C6D73  # "llms": one advisory lock for every llmselect schema change

UPSERT_RUN = """
INSERT INTO runs (backend, settings, device, dtype, engine, peak_memory_bytes)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (backend, settings) DO UPDATE SET
    device = excluded.device,
    dtype = excluded.dtype,
    engine = excluded.engine,
    peak_memory_bytes = GREATEST(runs.peak_memory_bytes, excluded.peak_memory_bytes),
    updated = now()
"""
"""As SQLite's: the peak over every run (GREATEST skips a NULL)."""

UPSERT_RECORD = """
INSERT INTO run_records (backend, dataset_sha256, settings, who, model, dataset, items, total,
    produced, device, dtype, engine, first_run, last_run)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (backend, dataset_sha256, settings, who) DO UPDATE SET
    model = excluded.model,
    dataset = excluded.dataset,
    items = excluded.items,
    total = excluded.total,
    produced = run_records.produced + excluded.produced,
    device = COALESCE(excluded.device, run_records.device),
    dtype = COALESCE(excluded.dtype, run_records.dtype),
    engine = COALESCE(excluded.engine, run_records.engine),
    last_run = excluded.last_run
"""

SAMPLE_TYPES = ("text",) * 6 + ("int", "int", "float8", "float8", "int")
"""The PostgreSQL types of `COLUMNS`, in order."""

# One statement, so one round trip: the batch's failures cleared and its outputs inserted, in
# the order given (key order), each an array of one column.
PUT = (
    "WITH cleared AS (DELETE FROM failures WHERE cache_key = ANY(%s)) "  # noqa: S608
    f"INSERT INTO samples ({COLUMNS}) SELECT {COLUMNS} FROM unnest("
    + ", ".join(f"%s::{kind}[]" for kind in SAMPLE_TYPES)
    + f") WITH ORDINALITY AS batch ({COLUMNS}, position) ORDER BY position "
    "ON CONFLICT (cache_key) DO NOTHING"
)

PUT_PROMPTS = (
    "INSERT INTO prompts (source_key, prompt) SELECT source_key, prompt "
    "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS batch (source_key, prompt, position) "
    "ORDER BY position ON CONFLICT (source_key) DO NOTHING"
)

PG_TYPES = {"INTEGER": "INTEGER", "TEXT": "TEXT"}
"""ADDED_COLUMNS' SQLite types as PostgreSQL spells them."""

RETRIES = 5
"""Tries of a write that lost a deadlock or a serialization race (another writer's wins)."""


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise LLMSelectError(
            "a PostgreSQL result store needs psycopg, which is not installed",
            hint='pip install "llmselect[postgres]"',
        ) from None
    return psycopg


def connection_error(url: str, exc: Exception) -> LLMSelectError:
    """What went wrong reaching the server, in the user's terms, without the password."""
    shown = redact_password(url)
    # libpq's message, first line, with any password it might echo taken out.
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    password = _password(url)
    if password:
        detail = detail.replace(password, "***")
    low = detail.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        hint = (
            "check the user and password: put the password in PGPASSWORD or ~/.pgpass rather "
            "than in the URL"
        )
        what = "the PostgreSQL server refused the login"
    elif "does not exist" in low and "database" in low:
        hint = "create it (createdb NAME, or CREATE DATABASE) or name an existing one in the URL"
        what = "the database does not exist"
    elif "role" in low and "does not exist" in low:
        hint = "create the user on the server (createuser NAME) or name an existing one"
        what = "the user does not exist on the server"
    else:
        hint = (
            "check that the server runs and listens there (pg_isready -d URL), the host and "
            "port, and the firewall"
        )
        what = "cannot reach the PostgreSQL server"
    return LLMSelectError(f"{what}: {detail}", file=shown, hint=hint)


def _password(url: str) -> str:
    from urllib.parse import parse_qsl, unquote, urlsplit

    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    return dict(parse_qsl(parts.query)).get("password", "")


def _select_any(query: str, keys: list[str]) -> Callable[[Any], list[tuple[Any, ...]]]:
    """`query` (with one `= ANY(%s)`) of these keys, as work for `PostgresStore._run`."""

    def select(conn: Any) -> list[tuple[Any, ...]]:
        return list(conn.execute(query, (keys,)).fetchall())

    return select


class PostgresStore(Store):
    """The result store on a PostgreSQL server (see the module's docstring)."""

    def __init__(self, url: str, *, connect_timeout_s: int = 10) -> None:
        pg = _psycopg()
        self.url = url
        self.location = redact_password(url)
        self.connect_timeout_s = connect_timeout_s
        self.conn: psycopg.Connection[Any] = self._connect()
        try:
            version = self._migrate()
        except pg.Error as exc:
            self.conn.close()
            raise LLMSelectError(
                f"cannot create or update the result store's tables: {exc}".strip(),
                file=self.location,
                hint="the first open creates the tables: do it as the database's owner (or "
                "GRANT CREATE ON SCHEMA public TO USER), then GRANT SELECT, INSERT, UPDATE, "
                "DELETE ON ALL TABLES IN SCHEMA public to the team",
            ) from None
        if version > SCHEMA_VERSION:
            self.conn.close()
            raise newer_schema(version, self.location)

    def _connect(self) -> psycopg.Connection[Any]:
        pg = _psycopg()
        try:
            # Autocommit: each statement is its own transaction (every write here is one).
            # The URL's own connect_timeout, if it has one, is the user's choice.
            timeout = (
                {} if "connect_timeout" in self.url else {"connect_timeout": self.connect_timeout_s}
            )
            conn: psycopg.Connection[Any] = pg.connect(self.url, autocommit=True, **timeout)
        except pg.Error as exc:
            raise connection_error(self.url, exc) from None
        return conn

    def _migrate(self) -> int:
        """The store's schema version, after creating the tables, adding the columns an older
        store lacks and recording the version, if it is older than this llmselect's; under a
        lock, so concurrent first opens do not race on the catalog. A current store is only
        read: a team member with no right to create tables can use it."""
        current = self.conn.execute(
            "SELECT CASE WHEN to_regclass('store_meta') IS NULL THEN NULL ELSE 1 END"
        ).fetchone()
        if current and current[0]:
            row = self.conn.execute(
                "SELECT value FROM store_meta WHERE key = 'schema_version'"
            ).fetchone()
            if row is not None and int(row[0]) >= SCHEMA_VERSION:
                return int(row[0])
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            for statement in SCHEMA:
                self.conn.execute(statement)  # constants above
            for table, columns in ADDED_COLUMNS.items():
                for column, kind in columns.items():
                    # Names and types come from the constant, never from the server.
                    alter = (
                        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {PG_TYPES[kind]}"
                    )
                    self.conn.execute(alter)
            self.conn.execute(
                "INSERT INTO store_meta (key, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = GREATEST(store_meta.value::integer, "
                "excluded.value::integer)::text",
                (str(SCHEMA_VERSION),),
            )
            row = self.conn.execute(
                "SELECT value FROM store_meta WHERE key = 'schema_version'"
            ).fetchone()
        assert row is not None
        return int(row[0])

    def _run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run `work`, one statement (its own transaction: the connection autocommits); again
        if it lost a deadlock or a serialization race, or on a new connection if the server
        dropped this one."""
        pg = _psycopg()
        reconnected = False
        for attempt in range(RETRIES):
            try:
                return work(self.conn)
            except (pg.errors.DeadlockDetected, pg.errors.SerializationFailure):
                if attempt == RETRIES - 1:
                    raise
            except pg.OperationalError as exc:
                if reconnected or not self.conn.broken:
                    raise connection_error(self.url, exc) from None
                self.conn.close()
                self.conn = self._connect()
                reconnected = True
        raise AssertionError("unreachable")

    def _in(self, query: str, keys: list[str]) -> list[tuple[Any, ...]]:
        """Rows of `query` (with one `= ANY(%s)` for the keys), asked in chunks."""
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(keys), 5000):
            rows += self._run(_select_any(query, keys[start : start + 5000]))
        return rows

    def done(self, keys: list[str]) -> set[str]:
        return {
            row[0]
            for row in self._in("SELECT cache_key FROM samples WHERE cache_key = ANY(%s)", keys)
        }

    def put(self, samples: list[Sample]) -> None:
        """Save outputs in one transaction; a key already stored is left as it is."""
        if not samples:
            return
        ordered = sorted(samples, key=lambda s: s.cache_key)  # one lock order for every writer
        columns = (
            [s.cache_key for s in ordered],
            [s.model for s in ordered],
            [s.item_id for s in ordered],
            [s.prompt for s in ordered],
            [s.output for s in ordered],
            [
                json.dumps(s.loglikelihoods) if s.loglikelihoods is not None else None
                for s in ordered
            ],
            [s.prompt_tokens for s in ordered],
            [s.output_tokens for s in ordered],
            [s.seconds for s in ordered],
            [s.ttft_s for s in ordered],
            [s.batch_rows for s in ordered],
        )
        self._run(lambda conn: conn.execute(PUT, (columns[0], *columns)))

    def get(self, keys: list[str]) -> dict[str, Sample]:
        result = {}
        query = f"SELECT {COLUMNS} FROM samples WHERE cache_key = ANY(%s)"  # noqa: S608
        for row in self._in(query, keys):
            result[row[0]] = sample_from_row(row)
        return result

    def put_failure(self, failure: Failure) -> None:
        """Record why an item got no output (replacing an earlier reason)."""
        self._run(
            lambda conn: conn.execute(
                "INSERT INTO failures (cache_key, model, item_id, error) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (cache_key) DO UPDATE SET model = excluded.model, "
                "item_id = excluded.item_id, error = excluded.error, created = now()",
                (failure.cache_key, failure.model, failure.item_id, failure.error),
            )
        )

    def failures(self, keys: list[str]) -> dict[str, Failure]:
        query = "SELECT cache_key, model, item_id, error FROM failures WHERE cache_key = ANY(%s)"
        return {
            key: Failure(cache_key=key, model=model, item_id=item_id, error=error)
            for key, model, item_id, error in self._in(query, keys)
        }

    def put_run(self, backend: str, settings: dict[str, Any], info: RunInfo) -> None:
        row = (
            backend,
            settings_key(settings),
            info.device,
            info.dtype,
            info.engine,
            info.peak_memory_bytes,
        )
        self._run(lambda conn: conn.execute(UPSERT_RUN, row))

    def run_info(self, backend: str, settings: dict[str, Any]) -> RunInfo | None:
        row = self._run(
            lambda conn: conn.execute(
                "SELECT device, dtype, engine, peak_memory_bytes FROM runs "
                "WHERE backend = %s AND settings = %s",
                (backend, settings_key(settings)),
            ).fetchone(),
        )
        if row is None:
            return None
        return RunInfo(device=row[0], dtype=row[1], engine=row[2], peak_memory_bytes=row[3])

    def prompts(self, keys: list[str]) -> dict[str, str]:
        query = "SELECT source_key, prompt FROM prompts WHERE source_key = ANY(%s)"
        return {key: prompt for key, prompt in self._in(query, keys)}

    def put_prompts(self, prompts: dict[str, str]) -> None:
        rows = sorted(prompts.items())
        if rows:
            sources, texts = [k for k, _ in rows], [v for _, v in rows]
            self._run(lambda conn: conn.execute(PUT_PROMPTS, (sources, texts)))

    def put_record(self, record: RunRecord) -> None:
        row = _record_row(record)
        self._run(lambda conn: conn.execute(UPSERT_RECORD, row))

    def records(self) -> list[RunRecord]:
        query = f"SELECT {RECORD_COLUMNS} FROM run_records ORDER BY last_run DESC, model"  # noqa: S608
        return [_record(row) for row in self._run(lambda c: c.execute(query).fetchall())]

    def count(self) -> int:
        query = "SELECT COUNT(*) FROM samples"
        row = self._run(lambda conn: conn.execute(query).fetchone())
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.conn.close()
