"""Who measured what: a run's record in its store, and where a study's store is.

A store shared by a team holds everyone's outputs, and its `run_records` table says whose: per
model, dataset (by its hash) and settings, who ran it (user@host), where (the device), with
which engine, how many outputs are stored and how many that person produced. The outputs
themselves are found by their cache keys, so a study whose items are stored already reuses
them without asking; the records are what `llmselect runs` shows, so a person can see that
before running anything.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from llmselect.errors import UsageError
from llmselect.evaluation.results import EvalResults
from llmselect.evaluation.store import (
    RunRecord,
    Store,
    is_database_url,
    open_store,
    utc_now,
    who_runs,
)

Progress = Callable[[str, int, int], None]


def store_location(
    option: str | Path | None, study_store: str | None, base_dir: Path, default: Path
) -> str | Path:
    """Where a study's results are stored: the command's `--store`, else the study's `store:`
    (a path in the study is relative to its file), else `default`."""
    if option is not None:
        return option
    if study_store is None:
        return default
    if is_database_url(study_store):
        return study_store
    return base_dir / study_store


class ProducedCounter:
    """A progress callback that counts, per model, the outputs produced in this run (the
    first call for a model reports what was stored already) and passes the call on."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress
        self.stored_before: dict[str, int] = {}
        self.produced: dict[str, int] = {}

    def __call__(self, model: str, done: int, total: int) -> None:
        self.produced[model] = done - self.stored_before.setdefault(model, done)
        if self.progress:
            self.progress(model, done, total)


def run_records(
    results: EvalResults,
    produced: dict[str, int],
    *,
    who: str | None = None,
    when: str | None = None,
) -> list[RunRecord]:
    """One record per model of these results: what is stored, what this run produced."""
    who = who or who_runs()
    when = when or utc_now()
    records = []
    for name, model in results.models.items():
        records.append(
            RunRecord(
                model=name,
                backend=model.backend,
                dataset=Path(results.dataset.path).name,
                dataset_sha256=results.dataset.sha256,
                settings=results.task,
                items=len(results.model_samples(name)),
                total=results.dataset.items,
                produced=produced.get(name, 0),
                device=model.device,
                dtype=model.dtype,
                engine=model.engine,
                who=who,
                first_run=when,
                last_run=when,
            )
        )
    return records


def record_runs(store: Store, results: EvalResults, produced: dict[str, int]) -> None:
    """Record who ran these results, where, and what they produced (see `run_records`)."""
    for record in run_records(results, produced):
        store.put_record(record)


class StoredRuns(BaseModel):
    """What a store holds, run by run (`llmselect runs list|show`)."""

    store: str
    """The store, as shown (a URL without its password)."""
    runs: list[RunRecord]


def stored_runs(location: str | Path, model: str | None = None) -> StoredRuns:
    """The store's run records, the latest first; with `model`, only that model's (its name in
    the study, or its backend), and an error naming the models there are if it has none."""
    if not is_database_url(location) and not Path(location).is_file():
        raise UsageError(
            "no result store here",
            file=location,
            hint="give the --store a study used (default: its OUT/store.sqlite) or a "
            "postgresql:// URL",
        )
    store = open_store(location)
    try:
        records = store.records()
        shown = store.location
    finally:
        store.close()
    if model is None:
        return StoredRuns(store=shown, runs=records)
    chosen = [r for r in records if model in (r.model, r.backend)]
    if not chosen:
        names = sorted({r.model for r in records})
        listed = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
        raise UsageError(
            f"no runs of {model!r} in this store",
            file=shown,
            hint=f"runs stored here are of: {listed}" if names else "this store has no runs yet",
        )
    return StoredRuns(store=shown, runs=chosen)
