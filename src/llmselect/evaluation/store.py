"""The result store: every model output saved in SQLite as soon as it is produced.

Rows are keyed by a hash of the backend, the prompt and the generation settings, so a rerun (or
`--resume` after a crash) skips what is done and never stores an item twice. Scores are not
stored: they are recomputed from the outputs, so a metric can change without rerunning models.
A second table keeps what is measured per run rather than per item (where the model ran, with
which engine, its peak device memory), so a resumed study still reports them. A third keeps why
an item got no output (its last error), to report it; it is not an output, so a rerun retries it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from llmselect.errors import LLMSelectError

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


COLUMNS = (
    "cache_key, model, item_id, prompt, output, loglikelihoods, prompt_tokens, output_tokens, "
    "seconds, ttft_s, batch_rows"
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


def settings_key(settings: dict[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True, ensure_ascii=False)


def cache_key(backend: str, prompt: str, settings: dict[str, Any]) -> str:
    payload = json.dumps([backend, prompt, settings], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def remove_store(path: Path) -> None:
    """Delete a store, its write-ahead log and index (an old log must not replay into a new one)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


DAMAGED_HINT = (
    "restore it from a copy, or move it aside and run again (or pass --fresh): the outputs it "
    "held are then produced again"
)


class Store:
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
            self._add_missing_columns()
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
        self.path = path

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
                result[row[0]] = Sample(
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

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def close(self) -> None:
        self.db.close()
