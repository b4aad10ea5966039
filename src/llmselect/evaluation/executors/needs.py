"""What one unit of a candidate asks a Ray cluster for, and which nodes can give it.

An HTTP candidate is a light task (a fraction of a CPU: it waits on the network). A local model
runs on GPUs where the cluster has them: as many as the sizing stage says its weights and cache
need at the precision the transformers backend loads on CUDA (bf16), on one node; a GGUF file
takes one GPU (llama.cpp in one process). On a cluster without GPUs, a local model takes the
study's `cpus`. A candidate that no node can hold is an error before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmselect.errors import LLMSelectError
from llmselect.evaluation.executors import ExecutorSpec
from llmselect.evaluation.study import Candidate

MAX_GPUS = 64
"""The most GPUs one unit is sized for (no node has more)."""
SIZED_CONTEXT = 4096
"""Tokens per sequence the cache is sized for (or the model's own maximum, if smaller)."""


@dataclass(frozen=True)
class Needs:
    cpus: float
    gpus: int = 0
    why: str = ""
    """What the figure comes from, for the summary and the error."""


@dataclass(frozen=True)
class Node:
    """A live node of the cluster, as Ray reports it."""

    node_id: str
    ip: str
    cpus: float
    gpus: float
    gpu_type: str | None
    """Ray's `accelerator_type` (`H100`, `A100`...), if it reports one."""

    @classmethod
    def from_ray(cls, info: dict[str, Any]) -> Node:
        resources: dict[str, float] = info.get("Resources") or {}
        kinds = [k.split(":", 1)[1] for k in resources if k.startswith("accelerator_type:")]
        return cls(
            node_id=str(info.get("NodeID", "")),
            ip=str(info.get("NodeManagerAddress", "")),
            cpus=float(resources.get("CPU", 0.0)),
            gpus=float(resources.get("GPU", 0.0)),
            gpu_type=kinds[0] if kinds else None,
        )


def needs_of(candidate: Candidate, base_dir: Path, spec: ExecutorSpec, nodes: list[Node]) -> Needs:
    if candidate.openai:
        return Needs(cpus=spec.http_cpus, why="an HTTP client")
    gpu_nodes = [n for n in nodes if n.gpus >= 1]
    if candidate.serve and gpu_nodes:
        gpus = candidate.gpus or 1
        return Needs(cpus=1, gpus=gpus, why=f"its engine on {_count(gpus, 'GPU')}")
    if not gpu_nodes:
        return Needs(cpus=spec.cpus, why="a local model on CPUs (the cluster has no GPU)")
    if candidate.gguf:
        return Needs(cpus=1, gpus=1, why="llama.cpp runs a GGUF file on one GPU")
    from llmselect.sizing.hardware import find_device

    name = spec.gpu or next((n.gpu_type for n in gpu_nodes if n.gpu_type), None)
    if name is None:
        raise LLMSelectError(
            "the cluster's GPU nodes do not say which GPU they have, so the GPUs each model "
            "needs cannot be sized",
            field="executor.gpu",
            hint="name it in the study: `executor: {ray: ..., gpu: H100-80GB}` "
            "(`llmselect hardware --list`)",
        )
    assert candidate.transformers  # one backend per candidate: the others are above
    folder = base_dir / candidate.transformers
    return gpus_for(candidate.name, folder, find_device(name).id, candidate.batch_size)


def gpus_for(name: str, folder: Path, device_id: str, batch: int = 8) -> Needs:
    """The fewest GPUs of `device_id` on which the sizing stage says the model fits in bf16
    (weights, the cache of `batch` sequences, the engine's overhead)."""
    from llmselect.catalog.importers.hf_folder import import_hf_folder
    from llmselect.sizing.engines import get_engine
    from llmselect.sizing.estimate import estimate
    from llmselect.sizing.hardware import find_device

    device = find_device(device_id)
    card = import_hf_folder(folder.resolve(), model_id=name)
    context = min(card.architecture.context_length or SIZED_CONTEXT, SIZED_CONTEXT)
    engine = get_engine("transformers-eager")
    fit = None
    for gpus in range(1, MAX_GPUS + 1):
        fit = estimate(card, device, gpus, engine, quant="bf16", context=context, batch=batch)
        if fit.fits:
            gib = fit.memory.total_bytes / 2**30
            why = f"bf16 on {device.id}: {gib:.1f} GiB per GPU at {context} tokens x {batch}"
            return Needs(cpus=1, gpus=gpus, why=why)
    assert fit is not None
    return Needs(
        cpus=1,
        gpus=MAX_GPUS + 1,
        why=f"bf16 does not fit even {MAX_GPUS} x {device.id} "
        f"({fit.memory.total_bytes / 2**30:.0f} GiB per GPU)",
    )


def check_capacity(needs: dict[str, Needs], nodes: list[Node]) -> None:
    """Every candidate must fit one live node: say which does not, and what it needs."""
    if not nodes:
        raise LLMSelectError("the Ray cluster has no live node", hint="check `ray status`")
    most_cpus = max(n.cpus for n in nodes)
    most_gpus = max(n.gpus for n in nodes)
    for name, need in needs.items():
        if any(n.cpus >= need.cpus and n.gpus >= need.gpus for n in nodes):
            continue
        what = _count(need.cpus, "CPU")
        if need.gpus:
            what = f"{_count(need.gpus, 'GPU')} and {what}"
        raise LLMSelectError(
            f"candidate {name!r} needs {what} on one node ({need.why}); the largest node of the "
            f"cluster has {_count(most_gpus, 'GPU')} and {_count(most_cpus, 'CPU')}",
            field=f"candidates.{name}",
            hint="add a node that large to the cluster, or leave the candidate out; nothing "
            "has run yet",
        )


def _count(value: float, unit: str) -> str:
    return f"{value:g} {unit}" + ("" if value == 1 else "s")
