"""Where a study's models run: this process (`local`, the default) or a Ray cluster (`ray`).

The runner decides what is to be done (each candidate's items not yet stored, with their keys)
and stores what comes back; an executor decides where the work runs. Both executors drive the
same unit of work, `runner.produce`, and hand its outputs to one `Recorder`, so the store, the
cache keys, `--resume` and the statistics do not depend on where a model ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmselect.evaluation.datasets import Item
from llmselect.evaluation.store import Failure, RunInfo, Sample

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from llmselect.evaluation.backends.served import Launch
    from llmselect.evaluation.store import Store
    from llmselect.evaluation.study import Candidate, EvalStudy


class ExecutorSpec(BaseModel):
    """The study's `executor:`. `local` (or nothing) runs here; `{ray: ADDRESS}` on a Ray
    cluster: `auto` joins the cluster this machine belongs to, `ray://host:10001` a remote one,
    and `ray: local` (or `executor: ray`) starts one on this machine for the run."""

    model_config = ConfigDict(extra="forbid")

    ray: str | None = None
    shard_items: int = Field(default=250, ge=1, le=1_000_000)
    """Items per unit of work: a candidate's pending items are cut into shards of this many, so
    several workers serve one model (each loads it once per shard)."""
    cpus: float = Field(default=1.0, gt=0, le=1024)
    """CPUs a unit of a local model asks for where the cluster has no GPU (Ray sets its threads
    to as many)."""
    http_cpus: float = Field(default=0.25, gt=0, le=64)
    """CPUs a unit of an HTTP candidate asks for: it mostly waits on the network."""
    gpu: str | None = None
    """The GPU profile of the cluster's GPU nodes (`llmselect hardware --list`), where Ray does
    not report a type this release knows."""
    max_retries: int = Field(default=3, ge=0, le=100)
    """Times a unit whose worker or node died is sent again (with only what is not stored)."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `executor: ray` and `executor: local` read as they say.
        if value == "ray":
            return {"ray": "local"}
        if value == "local":
            return {}
        return value

    @property
    def uses_ray(self) -> bool:
        return self.ray is not None


class UnitRecord(BaseModel):
    """Where one unit of work ran and what it produced (the summary of a cluster run)."""

    candidate: str
    shard: int
    items: int
    node_id: str | None = None
    node_ip: str | None = None
    attempts: int = 1
    produced: int = 0
    """Items this unit stored (fewer than `items` where another attempt already stored some)."""
    gpus: int = 0
    cpus: float = 0.0


@dataclass
class CandidateWork:
    """One candidate's share of a run: its items not yet stored, with their prompts and keys."""

    candidate: Candidate
    backend: str
    pending: list[Item]
    prompts: dict[str, str]
    keys: dict[str, str]
    total: int
    stored: int
    file: str
    """The dataset's file, for errors that name an item."""
    launch: Launch | None = None
    """What starts the candidate's engine, for a `serve` candidate."""


@dataclass
class Recorder:
    """The driver's side of every executor: stores outputs as they come, once per key, and
    moves the progress bar. A key stored before (by an earlier attempt of the same unit) is
    left as it is and not counted again."""

    store: Store
    settings: dict[str, Any]
    progress: Callable[[str, int, int], None] | None = None
    done: dict[str, int] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def begin(self, work: CandidateWork) -> None:
        self.done[work.candidate.name] = work.stored
        if self.progress:
            self.progress(work.candidate.name, work.stored, work.total)

    def put(self, work: CandidateWork, produced: list[Sample] | Failure | RunInfo) -> int:
        """Store one output of `work`; the number of items it newly stored."""
        if isinstance(produced, RunInfo):
            self.store.put_run(work.backend, self.settings, produced)
            return 0
        if isinstance(produced, Failure):
            if produced.cache_key not in self.seen:
                self.store.put_failure(produced)
            return 0
        fresh = [s for s in produced if s.cache_key not in self.seen]
        if not fresh:
            return 0
        self.store.put(fresh)
        self.seen.update(s.cache_key for s in fresh)
        name = work.candidate.name
        self.done[name] = self.done.get(name, 0) + len(fresh)
        if self.progress:
            self.progress(name, self.done[name], work.total)
        return len(fresh)

    def unstored(self, work: CandidateWork, items: list[Item]) -> list[Item]:
        """The items of `items` not stored yet: what a unit sent again still has to do."""
        return [i for i in items if work.keys[i.id] not in self.seen]


class Executor(Protocol):
    units: list[UnitRecord]
    """Where each unit ran (empty for a local run)."""
    address: str | None
    """The cluster's address (None for a local run)."""

    def run(
        self, study: EvalStudy, base_dir: Path, work: list[CandidateWork], recorder: Recorder
    ) -> None: ...


def open_executor(spec: ExecutorSpec | None) -> Executor:
    """The executor a study or `--ray` asks for (this process when none)."""
    if spec is None or not spec.uses_ray:
        from llmselect.evaluation.executors.local import LocalExecutor

        return LocalExecutor()
    from llmselect.evaluation.executors.ray_cluster import RayExecutor

    return RayExecutor(spec)


def choose_executor(ray: str | None, spec: ExecutorSpec | None) -> ExecutorSpec | None:
    """`--ray ADDRESS` over the study's `executor:` (whose other settings it keeps)."""
    if ray is None:
        return spec
    return (spec or ExecutorSpec()).model_copy(update={"ray": ray})


class ClusterRun(BaseModel):
    """Where a run's units ran on a Ray cluster: `cluster` in `eval --json`."""

    address: str | None
    units: list[UnitRecord]

    def lines(self) -> list[str]:
        """Per node: how many units and items it ran, and the units sent again."""
        per_node: dict[str, list[UnitRecord]] = {}
        for unit in self.units:
            per_node.setdefault(f"{unit.node_ip} ({(unit.node_id or '?')[:8]})", []).append(unit)
        lines = [f"ran on the Ray cluster at {self.address}: {len(self.units)} units"]
        for node, units in sorted(per_node.items()):
            models = sorted({u.candidate for u in units})
            lines.append(
                f"  node {node}: {len(units)} units, {sum(u.produced for u in units)} items "
                f"produced ({', '.join(models)})"
            )
        again = [u for u in self.units if u.attempts > 1]
        for unit in again:
            lines.append(
                f"  unit {unit.candidate}#{unit.shard} was sent {unit.attempts} times "
                "(its worker died; what it had stored was not sent again)"
            )
        return lines
