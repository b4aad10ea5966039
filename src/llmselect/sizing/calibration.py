"""Calibration: measured runs correct an engine profile's efficiencies on one device.

Measurements are appended, one JSON object a line, to `measurements.jsonl` in the user's data
directory (the evaluation and benchmark commands record there; `llmselect calibrate add` records
by hand). For an engine on a device, the decode efficiency becomes the default times the median
ratio of measured to predicted tokens per second, and likewise prefill from time to first token.

llmselect ships measurements of its own (`data/measurements.jsonl`, taken with
`benchmarks/sizing_accuracy.py --ship`, each with its date, device and source): they calibrate an
engine on a device for which the user has recorded nothing. The user's own runs replace them.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from llmselect.catalog import Catalog
from llmselect.errors import LLMSelectError
from llmselect.paths import data_dir
from llmselect.sizing.engines import Engine
from llmselect.sizing.hardware import Device


class Measurement(BaseModel):
    model: str
    device: str
    """Hardware profile id."""
    devices: int = Field(default=1, ge=1)
    engine: str
    quant: str
    batch: int = Field(ge=1)
    context: int = Field(ge=1)
    prompt_tokens: int = Field(ge=1)
    decode_tokens_per_s: float | None = Field(default=None, gt=0)
    """Per sequence."""
    ttft_s: float | None = Field(default=None, gt=0)
    peak_memory_bytes: int | None = Field(default=None, gt=0)
    measured_at: datetime.datetime
    source: str
    """What measured it: a command, a benchmark, a person."""


class Calibration(BaseModel):
    engine: str
    device: str
    bandwidth_efficiency: float
    compute_efficiency: float
    decode_samples: int
    prefill_samples: int
    shipped: bool = False
    """From the measurements llmselect ships, not the user's own."""


BUILTIN_MEASUREMENTS = Path(__file__).parent / "data" / "measurements.jsonl"


def measurements_file() -> Path:
    return data_dir() / "measurements.jsonl"


def builtin_measurements() -> list[Measurement]:
    """The runs llmselect's own benchmark measured and ships."""
    return load_measurements(BUILTIN_MEASUREMENTS)


def record(measurement: Measurement, path: Path | None = None) -> Path:
    """Append one measurement; an append of one line never disturbs the ones before it."""
    path = path or measurements_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = measurement.model_dump_json() + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def load_measurements(path: Path | None = None) -> list[Measurement]:
    path = path or measurements_file()
    if not path.is_file():
        return []
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append(Measurement.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else exc.errors()[0]["msg"]
            raise LLMSelectError(
                f"bad measurement: {detail}",
                file=path,
                line=number,
                hint="fix or delete that line; the others are kept as they are",
            ) from exc
    return found


def calibrate(
    engine: Engine,
    device: Device,
    measurements: list[Measurement],
    catalog: Catalog,
    builtin: list[Measurement] | None = None,
) -> tuple[Engine, Calibration | None]:
    """The engine profile corrected by the measurements of this engine on this device: the
    user's (`measurements`) where there are any, else the shipped ones (`builtin`)."""
    from llmselect.sizing.estimate import estimate

    def here(runs: list[Measurement]) -> list[Measurement]:
        return [m for m in runs if m.engine == engine.id and m.device == device.id]

    mine, shipped = here(measurements), False
    if not mine and builtin:
        mine, shipped = here(builtin), True
    decode, prefill = [], []
    for m in mine:
        card = catalog.find(m.model)
        if card is None:
            continue
        predicted = estimate(
            card,
            device,  # m.device == device.id; `this-machine-cpu` is no listed profile
            m.devices,
            engine,
            quant=m.quant,
            context=m.context,
            batch=m.batch,
            prompt_tokens=m.prompt_tokens,
        ).estimates
        if m.decode_tokens_per_s:
            decode.append(m.decode_tokens_per_s / predicted.decode_tokens_per_s)
        if m.ttft_s:
            prefill.append(predicted.ttft_s / m.ttft_s)
    if not decode and not prefill:
        return engine, None
    bandwidth = engine.bandwidth_efficiency * (statistics.median(decode) if decode else 1.0)
    compute = engine.compute_efficiency * (statistics.median(prefill) if prefill else 1.0)
    tuned = engine.model_copy(
        update={
            "bandwidth_efficiency": min(bandwidth, 1.0),
            "compute_efficiency": min(compute, 1.0),
        }
    )
    return tuned, Calibration(
        engine=engine.id,
        device=device.id,
        bandwidth_efficiency=tuned.bandwidth_efficiency,
        compute_efficiency=tuned.compute_efficiency,
        decode_samples=len(decode),
        prefill_samples=len(prefill),
        shipped=shipped,
    )
