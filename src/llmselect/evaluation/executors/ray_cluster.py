"""Evaluation on a Ray cluster: each candidate x shard of its pending items is one Ray task.

A unit is a streaming generator task: it opens the candidate's backend where Ray placed it
(with the GPUs or CPUs `needs` asked for), and yields each output as it is produced. The driver
(this process) stores each as it arrives, under the same keys as a local run, so `--resume`, the
cache and the statistics are those of a local run. A unit whose worker or node dies is sent
again by the driver, with only its items not stored yet (`max_retries` times); a driver that is
killed loses nothing stored, and the rerun resumes.

What crosses the network is plain data (the unit's study, items, prompts and keys out; JSON-able
outputs back). Secrets do not: an API key is read from the environment of the worker that
sends the requests (a local cluster started here inherits this one's), never put in the task
or in Ray's runtime environment.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmselect.errors import LLMSelectError
from llmselect.evaluation.datasets import Item
from llmselect.evaluation.executors import (
    CandidateWork,
    ExecutorSpec,
    Recorder,
    UnitRecord,
)
from llmselect.evaluation.executors.needs import Needs, Node, check_capacity, needs_of
from llmselect.evaluation.store import Failure, RunInfo, Sample
from llmselect.evaluation.study import EvalStudy

RAY_HINT = "install the Ray extra: pip install 'llmselect[ray]'"
GATHER_S = 0.1
"""Outputs produced within this long of the last message sent go back in one message."""
GATHER_MAX = 64


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise LLMSelectError("running on a Ray cluster needs Ray", hint=RAY_HINT) from None
    return ray


@dataclass
class Unit:
    work: CandidateWork
    shard: int
    items: list[Item]
    needs: Needs
    record: UnitRecord


class RayExecutor:
    def __init__(self, spec: ExecutorSpec) -> None:
        self.spec = spec
        self.units: list[UnitRecord] = []
        self.address: str | None = None
        """The cluster the run used (its GCS address)."""

    def run(
        self, study: EvalStudy, base_dir: Path, work: list[CandidateWork], recorder: Recorder
    ) -> None:
        ray = import_ray()
        started = connect(ray, self.spec.ray or "local")
        try:
            self.address = ray.get_runtime_context().gcs_address
            nodes = [Node.from_ray(n) for n in ray.nodes() if n.get("Alive")]
            needs = {
                w.candidate.name: needs_of(w.candidate, base_dir, self.spec, nodes) for w in work
            }
            check_capacity(needs, nodes)  # before anything runs
            for part in work:
                recorder.begin(part)
            units = [
                unit
                for part in work
                for unit in shards(part, needs[part.candidate.name], self.spec.shard_items)
            ]
            self.units = [u.record for u in units]
            self._drive(ray, study, base_dir, units, recorder)
        finally:
            if started:
                ray.shutdown()

    def _drive(
        self, ray: Any, study: EvalStudy, base_dir: Path, units: list[Unit], recorder: Recorder
    ) -> None:
        """Send every unit, store each output as it arrives from any of them, and send again a
        unit whose worker died (with what it had not stored)."""
        running: dict[Any, Unit] = {}

        task = ray.remote(run_unit)  # exported to the cluster once, sent many times

        def send(unit: Unit) -> None:
            running[self._submit(task, study, base_dir, unit)] = unit

        for unit in units:
            send(unit)
        try:
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                for generator in ready:
                    unit = running[generator]
                    try:
                        ref = next(generator)
                        event = ray.get(ref)
                    except StopIteration:
                        del running[generator]
                        continue
                    except ray.exceptions.RayTaskError as exc:
                        # The unit raised (not an LLMSelectError: those come as data).
                        raise _failed(unit, exc) from exc
                    except ray.exceptions.RayError as exc:
                        del running[generator]
                        left = recorder.unstored(unit.work, unit.items)
                        if not left:
                            continue  # it died after its last output: nothing to redo
                        if unit.record.attempts > self.spec.max_retries:
                            raise _died(unit, exc, self.spec.max_retries) from None
                        unit.items = left
                        unit.record.attempts += 1
                        send(unit)
                        continue
                    self._take(unit, event, recorder)
        finally:
            for generator in running:
                ray.cancel(generator, force=True)

    def _submit(self, task: Any, study: EvalStudy, base_dir: Path, unit: Unit) -> Any:
        options = task.options(
            num_returns="streaming",
            num_cpus=unit.needs.cpus,
            num_gpus=unit.needs.gpus,
            # The driver sends a dead unit again itself, with only what is not stored yet.
            max_retries=0,
            # Units of one model spread over the nodes, so several serve it at once.
            scheduling_strategy="SPREAD",
            name=f"llmselect-unit:{unit.record.candidate}:{unit.shard}",
        )
        return options.remote(unit_payload(study, base_dir, unit.work, unit.items))

    def _take(self, unit: Unit, event: dict[str, Any], recorder: Recorder) -> None:
        if "start" in event:
            unit.record.node_id = event["start"]["node_id"]
            unit.record.node_ip = event["start"]["node_ip"]
        elif "samples" in event:
            samples = [Sample.model_validate(s) for s in event["samples"]]
            unit.record.produced += recorder.put(unit.work, samples)
        elif "failure" in event:
            recorder.put(unit.work, Failure.model_validate(event["failure"]))
        elif "run" in event:
            recorder.put(unit.work, RunInfo.model_validate(event["run"]))
        elif "error" in event:
            raise LLMSelectError(**event["error"])


def connect(ray: Any, address: str) -> bool:
    """Join the cluster at `address` (`auto`: the one this machine belongs to), or start one on
    this machine (`local`). True when this call started Ray (and the run must stop it)."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"logging_level": "error", "log_to_driver": False}
    try:
        if address == "local":
            ray.init(address="local", include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise LLMSelectError(
            f"cannot join the Ray cluster at {address}: {exc}",
            field="executor.ray",
            hint="start it (`ray start --head`, `ray up`, KubeRay), or give its address: "
            "`--ray auto` on one of its nodes, `--ray ray://HEAD:10001` from elsewhere",
        ) from None
    return True


def shards(work: CandidateWork, needs: Needs, size: int) -> list[Unit]:
    """The candidate's pending items cut into units of at most `size`, of even length."""
    if not work.pending:
        return []
    count = math.ceil(len(work.pending) / size)
    step = math.ceil(len(work.pending) / count)
    units = []
    for shard, start in enumerate(range(0, len(work.pending), step)):
        items = work.pending[start : start + step]
        record = UnitRecord(
            candidate=work.candidate.name,
            shard=shard,
            items=len(items),
            gpus=needs.gpus,
            cpus=needs.cpus,
        )
        units.append(Unit(work, shard, items, needs, record))
    return units


def unit_payload(
    study: EvalStudy, base_dir: Path, work: CandidateWork, items: list[Item]
) -> dict[str, Any]:
    """What a unit needs, as plain data: the study with its one candidate, its items, their
    prompts and keys."""
    one = EvalStudy(
        name=study.name,
        dataset=study.dataset,
        task=study.task,
        candidates=[work.candidate],
        seed=study.seed,
    )
    return {
        "study": one.model_dump(mode="json", exclude_defaults=True),
        "base_dir": str(base_dir),
        "items": [i.model_dump(mode="json") for i in items],
        "prompts": {i.id: work.prompts[i.id] for i in items},
        "keys": {i.id: work.keys[i.id] for i in items},
        "file": work.file,
        # A function Ray sends by reference: the engine starts on the node that runs the unit.
        "launch": work.launch,
    }


def run_unit(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The unit, on a worker: where it runs first, then each output as it is produced."""
    from llmselect.evaluation.runner import produce

    ray = import_ray()

    where = ray.get_runtime_context()
    yield {
        "start": {
            "node_id": where.get_node_id(),
            "node_ip": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
        }
    }
    try:
        study = EvalStudy.model_validate(payload["study"])
        items = [Item.model_validate(i) for i in payload["items"]]
        outputs = produce(
            study,
            Path(payload["base_dir"]),
            study.candidates[0],
            items,
            payload["prompts"],
            payload["keys"],
            payload["file"],
            payload.get("launch"),
        )
        waiting: list[dict[str, Any]] = []
        sent = time.monotonic()
        for produced in outputs:
            if isinstance(produced, list):
                waiting += [s.model_dump(mode="json") for s in produced]
                # Outputs that come fast (a server's answers) go together: each message
                # costs the worker, Ray and the driver about as much as its contents.
                if time.monotonic() - sent < GATHER_S and len(waiting) < GATHER_MAX:
                    continue
            if waiting:
                yield {"samples": waiting}
                waiting, sent = [], time.monotonic()
            if isinstance(produced, RunInfo):
                yield {"run": produced.model_dump(mode="json")}
            elif isinstance(produced, Failure):
                yield {"failure": produced.model_dump(mode="json")}
        if waiting:
            yield {"samples": waiting}
    except LLMSelectError as exc:
        # As data, so the driver raises it with its file, line and hint.
        yield {
            "error": {
                "message": exc.message,
                "file": str(exc.file) if exc.file else None,
                "line": exc.line,
                "field": exc.field,
                "hint": exc.hint,
            }
        }


def _failed(unit: Unit, exc: Exception) -> LLMSelectError:
    cause = getattr(exc, "cause", None) or exc
    where = f" on node {unit.record.node_ip}" if unit.record.node_ip else ""
    return LLMSelectError(
        f"unit {unit.shard} of candidate {unit.record.candidate!r} failed{where}: "
        f"{type(cause).__name__}: {str(cause).splitlines()[0][:300] if str(cause) else ''}",
        hint="what it produced is stored: rerun to resume; `llmselect --debug` shows the "
        "worker's traceback",
    )


def _died(unit: Unit, exc: Exception, retries: int) -> LLMSelectError:
    where = f" (last on node {unit.record.node_ip})" if unit.record.node_ip else ""
    return LLMSelectError(
        f"unit {unit.shard} of candidate {unit.record.candidate!r} lost its worker "
        f"{retries + 1} times{where}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
        field="executor.max_retries",
        hint="what it produced is stored: rerun to resume; check the nodes' logs "
        "(`ray logs`) for why the workers died",
    )
