"""The memory and time check before any weights are loaded: will this run fit the device?

The sizing model estimates the run from `config.json` alone; a run that would not fit stops
with `DoesNotFit` (exit code 4, as `llmselect fit`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from llmselect.errors import LLMSelectError
from llmselect.finetune.config import TrainConfig
from llmselect.finetune.data import TrainData
from llmselect.finetune.model import train_device
from llmselect.sizing.finetune import FinetuneMemory


class Preflight(BaseModel):
    """The sizing model's estimate for this run on the target hardware, before any loading."""

    hardware: str
    devices: int
    trains_on: Literal["cuda", "cpu"]
    seq: int
    """The longest training sequence, in tokens: the peak a step must hold."""
    batch: int
    examples: int
    steps: int
    memory: FinetuneMemory
    estimated_seconds: float | None
    """The whole run on the target hardware, from the sizing model's throughput estimate."""
    estimated_cost: float | None
    """At the study's `targets.price_per_gpu_hour`, when it names one."""
    notes: list[str] = Field(default_factory=list)


class DoesNotFit(LLMSelectError):
    """The run would not fit the device (exit code 4, as `llmselect fit`)."""

    exit_code = 4


def preflight(
    config_json: Path,
    config: TrainConfig,
    data: TrainData,
    *,
    gpu: str | None,
    price_per_gpu_hour: float | None = None,
) -> Preflight:
    """Memory and time of the run from `config.json` alone: nothing is loaded."""
    from llmselect.catalog.importers.hf_config import architecture_from_config, read_config
    from llmselect.sizing.detect import target_hardware
    from llmselect.sizing.finetune import finetune_memory

    arch = architecture_from_config(read_config(config_json), file=config_json)
    device, count = target_hardware(gpu)
    steps = config.total_steps(len(data.examples))
    epochs = steps * config.batch * config.grad_accum / len(data.examples)
    memory = finetune_memory(
        arch,
        device,
        1,  # the loop trains on one device: each one must hold it all
        method=config.method,
        seq=data.longest,
        batch=config.batch,
        rank=config.rank,
        targets=config.targets,
        checkpointing=config.checkpointing(train_device()),
        examples=len(data.examples),
        tokens_per_example=max(1, round(data.tokens_per_example)),
    )
    where = train_device()
    notes = []
    if count > 1:
        notes.append(f"llmselect trains on one device; the other {count - 1} stay idle")
    if where == "cpu" and device.kind == "gpu":
        notes.append(f"no CUDA GPU here: the run trains on this CPU, not on {device.id}")
    if where == "cpu" and device.kind != "gpu" and config.method == "lora":
        # The sizing model counts 16-bit frozen weights; on a CPU they are loaded in fp32.
        extra = memory.base_weights_bytes
        total = memory.total_bytes + extra
        memory = memory.model_copy(
            update={
                "base_weights_bytes": memory.base_weights_bytes + extra,
                "total_bytes": total,
                "fits": total <= memory.available_bytes,
            }
        )
        notes.append("on a CPU the frozen weights are kept in fp32 (4 bytes each)")
    seconds = memory.epoch_seconds * epochs if memory.epoch_seconds is not None else None
    cost = None
    if seconds is not None and price_per_gpu_hour is not None:
        cost = seconds / 3600 * price_per_gpu_hour
    return Preflight(
        hardware=device.id,
        devices=count,
        trains_on=where,
        seq=data.longest,
        batch=config.batch,
        examples=len(data.examples),
        steps=steps,
        memory=memory,
        estimated_seconds=seconds,
        estimated_cost=cost,
        notes=notes,
    )


def refusal(check: Preflight) -> DoesNotFit:
    m = check.memory
    return DoesNotFit(
        f"{m.method} fine-tuning needs about {m.total_bytes / 2**30:,.1f} GiB per device and "
        f"{check.hardware} has {m.available_bytes / 2**30:,.1f} GiB",
        field="--method",
        hint="try --method qlora or lora, a smaller --batch (with --grad-accum), a shorter "
        "max_length, or name larger hardware with --gpu",
    )
