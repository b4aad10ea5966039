"""The result store: every model output saved in SQLite as soon as it is produced.

Rows are keyed by a hash of the backend, the prompt and the generation settings, so a rerun (or
`--resume` after a crash) skips what is done and never stores an item twice. Scores are not
stored: they are recomputed from the outputs, so a metric can change without rerunning models.
A second table keeps what is measured per run rather than per item (where the model ran, with
which engine, its peak device memory), so a resumed study still reports them. A third keeps why
an item got no output (its last error), to report it; it is not an output, so a rerun retries it.

`open_store` opens one: a file path is a SQLite store (the default, nothing to set up), a
`postgresql://` URL a PostgreSQL store a team shares (`store_postgres`), with the same tables and
keys. A fourth table records who measured what (`RunRecord`): `llmselect runs` lists it.
"""

from __future__ import annotations

import datetime
import getpass
import hashlib
import json
import socket
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel

from llmselect.errors import LLMSelectError, UsageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    cache_key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    item_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    output TEXT,
    loglikelihoods TEXT,
    prompt_tokens INTEGER,
    output_tokens INTEGER,
    seconds REAL,
    ttft_s REAL,
    created TEXT DEFAULT CURRENT_TIMESTAMP,
    batch_rows INTEGER
)
"""


RUNS_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    backend TEXT NOT NULL,
    settings TEXT NOT NULL,
    device TEXT,
    dtype TEXT,
    peak_memory_bytes INTEGER,
    updated TEXT DEFAULT CURRENT_TIMESTAMP,
    engine TEXT,
    PRIMARY KEY (backend, settings)
)
"""

FAILURES_SCHEMA = """
CREATE TABLE IF NOT EXISTS failures (
    cache_key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    item_id TEXT NOT NULL,
    error TEXT NOT NULL,
    created TEXT DEFAULT CURRENT_TIMESTAMP
)
"""

PROMPTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (
    source_key TEXT PRIMARY KEY,
    prompt TEXT NOT NULL
)
"""

RECORDS_SCHEMA = """
CREATE TABLE IF NOT EXISTS run_records (
    backend TEXT NOT NULL,
    dataset_sha256 TEXT NOT NULL,
    settings TEXT NOT NULL,
    who TEXT NOT NULL,
    model TEXT NOT NULL,
    dataset TEXT NOT NULL,
    items INTEGER NOT NULL,
    total INTEGER NOT NULL,
    produced INTEGER NOT NULL,
    device TEXT,
    dtype TEXT,
    engine TEXT,
    first_run TEXT NOT NULL,
    last_run TEXT NOT NULL,
    PRIMARY KEY (backend, dataset_sha256, settings, who)
)
"""

META_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
"""

SCHEMA_VERSION = 2
"""1: samples, runs, failures (and the prompts table, created when first used); 2: the
prompts table created with the store, `run_records`, and this version in `store_meta`. A store
of a higher version was written by a newer llmselect: it is refused, not misread."""

ADDED_COLUMNS = {"runs": {"engine": "TEXT"}, "samples": {"batch_rows": "INTEGER"}}
"""Columns added since stores were first written: an older store gains them (empty). A sample
stored before `batch_rows` has `seconds` that were already its share of its batch's time, so
reading it as a batch of one keeps its speed right."""

# The peak over every run of this backend and settings: a resumed run may have held less.
UPSERT_RUN = """
INSERT INTO runs (backend, settings, device, dtype, engine, peak_memory_bytes)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (backend, settings) DO UPDATE SET
    device = excluded.device,
    dtype = excluded.dtype,
    engine = excluded.engine,
    peak_memory_bytes = CASE
        WHEN runs.peak_memory_bytes IS NULL THEN excluded.peak_memory_bytes
        WHEN excluded.peak_memory_bytes IS NULL THEN runs.peak_memory_bytes
        ELSE MAX(runs.peak_memory_bytes, excluded.peak_memory_bytes) END,
    updated = CURRENT_TIMESTAMP
"""


# Each person's runs accumulate what they produced; the rest describes the latest run.
UPSERT_RECORD = """
INSERT INTO run_records (backend, dataset_sha256, settings, who, model, dataset, items, total,
    produced, device, dtype, engine, first_run, last_run)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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

RECORD_COLUMNS = (
    "backend, dataset_sha256, settings, who, model, dataset, items, total, produced, device, "
    "dtype, engine, first_run, last_run"
)

COLUMNS = (
    "cache_key, model, item_id, prompt, output, loglikelihoods, prompt_tokens, output_tokens, "
    "seconds, ttft_s, batch_rows"
)


def sample_from_row(row: Sequence[Any]) -> Sample:
    """A `samples` row, its columns in the order of COLUMNS, as a Sample (either backend)."""
    return Sample(
        cache_key=row[0],
        model=row[1],
        item_id=row[2],
        prompt=row[3],
        output=row[4],
        loglikelihoods=json.loads(row[5]) if row[5] else None,
        prompt_tokens=row[6],
        output_tokens=row[7],
        seconds=row[8],
        ttft_s=row[9],
        batch_rows=row[10],
    )


INSERT = f"INSERT OR IGNORE INTO samples ({COLUMNS}) VALUES ({', '.join('?' * 11)})"  # noqa: S608


class Sample(BaseModel):
    cache_key: str
    model: str
    item_id: str
    prompt: str
    output: str | None = None
    loglikelihoods: list[float] | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    seconds: float | None = None
    """How long this item waited for its output: for items produced together, their batch's
    time (see `batch_rows`)."""
    ttft_s: float | None = None
    batch_rows: int | None = None
    """How many items were produced together in `seconds` (None: one)."""


class Failure(BaseModel):
    """An item that got no usable output, and why (the last error, as shown to the user)."""

    cache_key: str
    model: str
    item_id: str
    error: str


class RunInfo(BaseModel):
    """Where a backend ran, how, and the most device memory it held (None off CUDA)."""

    device: str | None = None
    dtype: str | None = None
    engine: str | None = None
    """The sizing engine profile the run measures (`cpu`, `transformers-compiled`...)."""
    peak_memory_bytes: int | None = None


class RunRecord(BaseModel):
    """One person's runs of one model on one dataset with one set of settings: what is stored,
    what they produced themselves (0: every output was already in the store), where and when."""

    model: str
    """The candidate's name in the study."""
    backend: str
    """What ran (`transformers:...`, `openai:URL:model`): with the settings, the cache key."""
    dataset: str
    """The dataset file's name."""
    dataset_sha256: str
    settings: dict[str, Any]
    """The study's task: kind, template, generation settings."""
    items: int
    """Items with a stored output after the run."""
    total: int
    """Items the run scored."""
    produced: int
    """Outputs this person's runs produced (the rest came from the store)."""
    device: str | None = None
    dtype: str | None = None
    engine: str | None = None
    who: str
    """user@host of the run."""
    first_run: str
    """When this person first ran it (UTC, ISO 8601)."""
    last_run: str


def who_runs() -> str:
    """user@host: who a run record is by (the login name, as `getpass` finds it)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's anonymous uid)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def utc_now() -> str:
    """Now, in UTC, ISO 8601 to the millisecond: stamps sort as text, runs one after another
    apart."""
    now = datetime.datetime.now(datetime.UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def settings_key(settings: dict[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True, ensure_ascii=False)


def cache_key(backend: str, prompt: str, settings: dict[str, Any]) -> str:
    payload = json.dumps([backend, prompt, settings], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


DATABASE_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(location: str | Path) -> bool:
    """A `postgresql://` (or `postgres://`) URL, not a file path."""
    return isinstance(location, str) and location.lower().startswith(DATABASE_SCHEMES)


def redact_password(url: str) -> str:
    """The URL without its password (in the user part or the query): what is shown and written.
    The user name stays, so an error can say who could not log in."""
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = parts.query
    if "password" in query.lower():
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs])
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def study_store(value: str | None) -> str | None:
    """A study's `store:`, refused if it holds a password: the study file is shared, copied
    into the selection report, and read by everyone who runs it."""
    if value is None or not is_database_url(value):
        return value
    parts = urlsplit(value)
    if parts.password or any(k.lower() == "password" for k, _ in parse_qsl(parts.query)):
        raise ValueError(
            "holds a password, which the study file would share with everyone who reads it and "
            "the report would copy: leave it out of the URL and put it in PGPASSWORD or "
            "~/.pgpass"
        )
    return value


FRESH_SHARED_HINT = (
    "drop --fresh to reuse what is stored; to measure again, use a store of your own "
    "(--store PATH.sqlite) or change the study's settings (they are part of each item's key)"
)


def remove_store(location: str | Path) -> None:
    """Delete a SQLite store, its write-ahead log and index (an old log must not replay into a
    new one). A shared PostgreSQL store is never deleted: it holds the team's results."""
    if is_database_url(location):
        raise UsageError(
            "--fresh deletes the result store, and this one is a shared PostgreSQL store that "
            "holds other runs' results: it is left as it is",
            file=redact_password(str(location)),
            hint=FRESH_SHARED_HINT,
        )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{location}{suffix}").unlink(missing_ok=True)


def open_store(location: str | Path) -> Store:
    """The result store at `location`: a `postgresql://` URL (a shared PostgreSQL store; needs
    the `postgres` extra), or a SQLite file path (created with its folder if missing)."""
    if is_database_url(location):
        from llmselect.evaluation.store_postgres import PostgresStore

        return PostgresStore(str(location))
    text = str(location)
    if "://" in text:
        raise UsageError(
            f"not a result store this version can open: {text.split('://', 1)[0]}://",
            file=redact_password(text),
            hint="give a SQLite file path or a postgresql://user@host/database URL",
        )
    return Store(Path(location))


DAMAGED_HINT = (
    "restore it from a copy, or move it aside and run again (or pass --fresh): the outputs it "
    "held are then produced again"
)


class Store:
    """The result store in a SQLite file (see `open_store`); its public methods are the store's
    interface, which `PostgresStore` implements on a PostgreSQL server."""

    location: str
    """Where it is, as shown to the user (a path, or a URL without its password)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(path)
            self.db.execute("PRAGMA journal_mode=WAL")  # a crash mid-write loses nothing committed
            # Each output is its own transaction: in WAL mode NORMAL syncs at checkpoints, not at
            # every commit, and a killed process still loses nothing committed (a power cut may
            # lose the last ones, never corrupt the store).
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(SCHEMA)
            self.db.execute(RUNS_SCHEMA)
            self.db.execute(FAILURES_SCHEMA)
            self.db.execute(PROMPTS_SCHEMA)
            self.db.execute(RECORDS_SCHEMA)
            self.db.execute(META_SCHEMA)
            self._add_missing_columns()
            version = self._schema_version()
            # Damaged pages show only when read: check them all now, before any model runs.
            problems = [str(row[0]) for row in self.db.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            raise LLMSelectError(
                f"not a usable result store: {exc}", file=path, hint=DAMAGED_HINT
            ) from None
        if problems != ["ok"]:
            self.db.close()
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            raise LLMSelectError(
                f"the result store is damaged: {problems[0]}{more}", file=path, hint=DAMAGED_HINT
            )
        if version > SCHEMA_VERSION:
            self.db.close()
            raise newer_schema(version, str(path))
        self.path = path
        self.location = str(path)

    def _schema_version(self) -> int:
        """Record this version (never lowering a newer one) and return the store's."""
        with self.db:
            self.db.execute(
                "INSERT INTO store_meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = MAX(CAST(value AS INTEGER), "
                "CAST(excluded.value AS INTEGER))",
                (str(SCHEMA_VERSION),),
            )
        row = self.db.execute("SELECT value FROM store_meta WHERE key = 'schema_version'")
        return int(row.fetchone()[0])

    def _add_missing_columns(self) -> None:
        """Bring a store written by an older llmselect up to this schema, keeping its rows."""
        with self.db:
            for table, columns in ADDED_COLUMNS.items():
                present = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
                for column, kind in columns.items():
                    if column not in present:
                        # Names and types come from the constant above, never from the file.
                        self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def done(self, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT cache_key FROM samples WHERE cache_key IN ({marks})",  # noqa: S608
                chunk,
            )
            found.update(r[0] for r in rows)
        return found

    def put(self, samples: list[Sample]) -> None:
        """Save outputs in one transaction; a key already stored is left as it is."""
        with self.db:
            self.db.executemany(
                "DELETE FROM failures WHERE cache_key = ?", [(s.cache_key,) for s in samples]
            )
            self.db.executemany(
                INSERT,
                [
                    (
                        s.cache_key,
                        s.model,
                        s.item_id,
                        s.prompt,
                        s.output,
                        json.dumps(s.loglikelihoods) if s.loglikelihoods is not None else None,
                        s.prompt_tokens,
                        s.output_tokens,
                        s.seconds,
                        s.ttft_s,
                        s.batch_rows,
                    )
                    for s in samples
                ],
            )

    def get(self, keys: list[str]) -> dict[str, Sample]:
        result = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            # Only "?" placeholders are interpolated; the values travel as parameters.
            query = f"SELECT {COLUMNS} FROM samples WHERE cache_key IN ({marks})"  # noqa: S608
            rows = self.db.execute(query, chunk)
            for row in rows:
                result[row[0]] = sample_from_row(row)
        return result

    def put_failure(self, failure: Failure) -> None:
        """Record why an item got no output (replacing an earlier reason); nothing is stored
        under its key, so the next run tries it again."""
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO failures (cache_key, model, item_id, error) "
                "VALUES (?, ?, ?, ?)",
                (failure.cache_key, failure.model, failure.item_id, failure.error),
            )

    def failures(self, keys: list[str]) -> dict[str, Failure]:
        """The recorded failures of these keys (none for a key whose output is stored)."""
        found: dict[str, Failure] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                "SELECT cache_key, model, item_id, error FROM failures "  # noqa: S608
                f"WHERE cache_key IN ({marks})",
                chunk,
            )
            for key, model, item_id, error in rows:
                found[key] = Failure(cache_key=key, model=model, item_id=item_id, error=error)
        return found

    def put_run(self, backend: str, settings: dict[str, Any], info: RunInfo) -> None:
        with self.db:
            self.db.execute(
                UPSERT_RUN,
                (
                    backend,
                    settings_key(settings),
                    info.device,
                    info.dtype,
                    info.engine,
                    info.peak_memory_bytes,
                ),
            )

    def run_info(self, backend: str, settings: dict[str, Any]) -> RunInfo | None:
        row = self.db.execute(
            "SELECT device, dtype, engine, peak_memory_bytes FROM runs "
            "WHERE backend = ? AND settings = ?",
            (backend, settings_key(settings)),
        ).fetchone()
        if row is None:
            return None
        return RunInfo(device=row[0], dtype=row[1], engine=row[2], peak_memory_bytes=row[3])

    def prompts(self, keys: list[str]) -> dict[str, str]:
        """The stored prompts of these source keys (see `evaluation.prompts`)."""
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT source_key, prompt FROM prompts WHERE source_key IN ({marks})"  # noqa: S608
            found.update(self.db.execute(query, chunk))
        return found

    def put_prompts(self, prompts: dict[str, str]) -> None:
        """Store rendered prompts; one another process stored first is kept."""
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO prompts (source_key, prompt) VALUES (?, ?)",
                sorted(prompts.items()),
            )

    def put_record(self, record: RunRecord) -> None:
        """Record a run (see `RunRecord`): a person's rerun adds what it produced."""
        with self.db:
            self.db.execute(UPSERT_RECORD, _record_row(record))

    def records(self) -> list[RunRecord]:
        """Every run record, the latest first."""
        rows = self.db.execute(
            f"SELECT {RECORD_COLUMNS} FROM run_records ORDER BY last_run DESC, model"  # noqa: S608
        )
        return [_record(row) for row in rows]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def close(self) -> None:
        self.db.close()


def newer_schema(version: int, location: str) -> LLMSelectError:
    return LLMSelectError(
        f"this result store was written by a newer llmselect (schema {version}; this one "
        f"knows {SCHEMA_VERSION})",
        file=location,
        hint="upgrade llmselect (pip install -U llmselect) to use it",
    )


def _record_row(record: RunRecord) -> tuple[Any, ...]:
    return (
        record.backend,
        record.dataset_sha256,
        settings_key(record.settings),
        record.who,
        record.model,
        record.dataset,
        record.items,
        record.total,
        record.produced,
        record.device,
        record.dtype,
        record.engine,
        record.first_run,
        record.last_run,
    )


def _record(row: Any) -> RunRecord:
    names = [name.strip() for name in RECORD_COLUMNS.split(",")]
    values = dict(zip(names, row, strict=True))
    values["settings"] = json.loads(values["settings"])
    return RunRecord.model_validate(values)
