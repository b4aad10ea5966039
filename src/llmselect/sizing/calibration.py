"""Calibration: measured runs correct an engine profile's efficiencies on one device.

Measurements are appended, one JSON object a line, to `measurements.jsonl` in the user's data
directory (the evaluation and benchmark commands record there; `llmselect calibrate add` records
by hand). For an engine on a device, the decode efficiency becomes the default times the median
ratio of measured to predicted tokens per second, and likewise prefill from time to first token;
for an engine whose profile has a fixed cost per layer (eager PyTorch, launch-bound), that cost
is what the runs fit (see `calibrate`), so one model's runs carry over to models of other depths.

llmselect ships measurements of its own (`data/measurements.jsonl`, taken with
`benchmarks/sizing_accuracy.py --ship`, each with its date, device and source): they calibrate an
engine on a device for which the user has recorded nothing. The user's own runs replace them.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from llmselect.catalog import Catalog, ModelCard
from llmselect.errors import LLMSelectError
from llmselect.paths import data_dir
from llmselect.sizing.engines import Engine
from llmselect.sizing.hardware import Device

if TYPE_CHECKING:
    from llmselect.sizing.estimate import Estimates


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
    decode_overhead_per_layer_s: float = 0.0
    """Fixed cost per layer of a decode step (launch-bound engines); 0 where none is modelled."""
    prefill_overhead_per_layer_s: float = 0.0
    """Fixed cost per layer of a prefill forward pass: the floor of time to first token."""
    decode_samples: int
    prefill_samples: int
    shipped: bool = False
    """From the measurements llmselect ships, not the user's own."""


BUILTIN_MEASUREMENTS = Path(__file__).parent / "data" / "measurements.jsonl"


@dataclass(frozen=True)
class Recorded:
    """`calibrate add`: the run recorded, and the file it was appended to."""

    measurement: Measurement
    file: Path

    def to_json(self) -> dict[str, Any]:
        return {"recorded": self.measurement.model_dump(mode="json"), "file": str(self.file)}


@dataclass(frozen=True)
class RecordedRuns:
    """`calibrate bench`: the runs recorded from a bench, and the file they were appended to."""

    measurements: list[Measurement]
    file: Path

    def to_json(self) -> dict[str, Any]:
        recorded = [m.model_dump(mode="json") for m in self.measurements]
        return {"recorded": recorded, "file": str(self.file)}


def record_all(measurements: list[Measurement], path: Path | None = None) -> RecordedRuns:
    path = path or measurements_file()
    for measurement in measurements:
        record(measurement, path)
    return RecordedRuns(measurements, path)


@dataclass(frozen=True)
class CalibrationReport:
    """`calibrate show`: each engine and device calibrated, from how many runs (the user's own
    and those shipped with llmselect)."""

    calibrations: list[tuple[Engine, Calibration]]
    measurements: int
    shipped: int

    def to_json(self) -> list[dict[str, Any]]:
        return [calibration.model_dump(mode="json") for _, calibration in self.calibrations]


def calibration_report(catalog: Catalog) -> CalibrationReport:
    measurements, shipped = load_measurements(), builtin_measurements()
    found = calibrations(measurements, catalog, shipped)
    return CalibrationReport(found, len(measurements), len(shipped))


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


def _fit_overhead(modelled: list[float], layers: list[float], measured: list[float]) -> float:
    """The fixed cost per layer that closes the median gap between measured and modelled
    times; 0 where the runs are no slower than the model without it."""
    return max(
        0.0,
        statistics.median((t - x) / n for x, n, t in zip(modelled, layers, measured, strict=True)),
    )


def _fit_two_terms(
    modelled: list[float], layers: list[float], measured: list[float]
) -> tuple[float, float] | None:
    """time ~ scale x modelled + overhead x layers, least squares on the relative error (weights
    1 / measured). None where the runs cannot separate the two terms (one run, one shape, runs
    all of the same mix) or the fit is not physical (a negative term)."""
    if len(measured) < 2:
        return None
    xs = [x / t for x, t in zip(modelled, measured, strict=True)]
    ls = [n / t for n, t in zip(layers, measured, strict=True)]
    sxx = sum(x * x for x in xs)
    sll = sum(n * n for n in ls)
    sxl = sum(x * n for x, n in zip(xs, ls, strict=True))
    sx, sl = sum(xs), sum(ls)  # the target, measured / measured, is 1 for every run
    det = sxx * sll - sxl * sxl
    if det <= 1e-9 * sxx * sll:
        return None
    scale = (sx * sll - sl * sxl) / det
    overhead = (sl * sxx - sx * sxl) / det
    if scale <= 0 or overhead < 0:
        return None
    return scale, overhead


def predict(m: Measurement, card: ModelCard, device: Device, engine: Engine) -> Estimates:
    """What `engine` predicts for the shape of a measured run."""
    from llmselect.sizing.estimate import estimate

    return estimate(
        card,
        device,
        m.devices,
        engine,
        quant=m.quant,
        context=m.context,
        batch=m.batch,
        prompt_tokens=m.prompt_tokens,
    ).estimates


def calibrate(
    engine: Engine,
    device: Device,
    measurements: list[Measurement],
    catalog: Catalog,
    builtin: list[Measurement] | None = None,
) -> tuple[Engine, Calibration | None]:
    """The engine profile corrected by the measurements of this engine on this device: the
    user's (`measurements`) where there are any, else the shipped ones (`builtin`).

    A profile without a fixed cost per layer (its efficiencies were derived from whole step
    times) keeps none: its efficiencies are scaled by the median ratio of measured to modelled
    speed. A profile with one (a launch-bound engine) keeps its bandwidth efficiency and takes
    the fixed cost per layer of a decode step from the runs: the median of (measured step -
    modelled step without it) / layers. Prefill fits both terms at once where the runs span
    short and long prompts (the floor and the slope), else the fixed cost alone. Being per
    layer, the fitted cost carries over to models of other depths on the same device."""
    from llmselect.sizing.estimate import prefill_passes

    def here(runs: list[Measurement]) -> list[Measurement]:
        return [m for m in runs if m.engine == engine.id and m.device == device.id]

    mine, shipped = here(measurements), False
    if not mine and builtin:
        mine, shipped = here(builtin), True
    bare = engine.model_copy(
        update={"decode_overhead_per_layer_s": 0.0, "prefill_overhead_per_layer_s": 0.0}
    )
    # Per run: (modelled time without the fixed cost, layers that pay it, measured time).
    decode: list[tuple[float, float, float]] = []
    prefill: list[tuple[float, float, float]] = []
    for m in mine:
        card = catalog.find(m.model)
        if card is None:
            continue
        # m.device == device.id; `this-machine-cpu` is no listed profile
        predicted = predict(m, card, device, bare)
        layers = card.architecture.num_hidden_layers or 1
        passes = prefill_passes(engine, m.batch, m.prompt_tokens)
        if m.decode_tokens_per_s:
            decode.append((1 / predicted.decode_tokens_per_s, layers, 1 / m.decode_tokens_per_s))
        if m.ttft_s:
            prefill.append((predicted.ttft_s, passes * layers, m.ttft_s))
    if not decode and not prefill:
        return engine, None
    update: dict[str, float] = {}
    if decode:
        x, n, t = (list(c) for c in zip(*decode, strict=True))
        overhead = _fit_overhead(x, n, t) if engine.decode_overhead_per_layer_s > 0 else 0.0
        update["decode_overhead_per_layer_s"] = overhead
        if overhead == 0:  # no fixed cost: the efficiency carries the whole gap
            ratio = statistics.median(xi / ti for xi, ti in zip(x, t, strict=True))
            update["bandwidth_efficiency"] = min(engine.bandwidth_efficiency * ratio, 1.0)
    if prefill:
        x, n, t = (list(c) for c in zip(*prefill, strict=True))
        both = _fit_two_terms(x, n, t) if engine.prefill_overhead_per_layer_s > 0 else None
        if both is not None:
            scale, overhead = both
            update["compute_efficiency"] = min(engine.compute_efficiency / scale, 1.0)
        else:
            overhead = _fit_overhead(x, n, t) if engine.prefill_overhead_per_layer_s > 0 else 0.0
            if overhead == 0:
                ratio = statistics.median(xi / ti for xi, ti in zip(x, t, strict=True))
                update["compute_efficiency"] = min(engine.compute_efficiency * ratio, 1.0)
        update["prefill_overhead_per_layer_s"] = overhead
    tuned = engine.model_copy(update=update)
    return tuned, Calibration(
        engine=engine.id,
        device=device.id,
        bandwidth_efficiency=tuned.bandwidth_efficiency,
        compute_efficiency=tuned.compute_efficiency,
        decode_overhead_per_layer_s=tuned.decode_overhead_per_layer_s,
        prefill_overhead_per_layer_s=tuned.prefill_overhead_per_layer_s,
        decode_samples=len(decode),
        prefill_samples=len(prefill),
        shipped=shipped,
    )


def calibrations(
    measurements: list[Measurement], catalog: Catalog, builtin: list[Measurement] | None = None
) -> list[tuple[Engine, Calibration]]:
    """Each engine and device with recorded runs: the engine's profile and its calibration."""
    from llmselect.sizing.detect import CPU_REFERENCE, LOCAL_CPU_ID
    from llmselect.sizing.engines import get_engine
    from llmselect.sizing.hardware import find_device

    found = []
    runs = measurements + (builtin or [])
    for engine_id, device_id in sorted({(m.engine, m.device) for m in runs}):
        base = get_engine(engine_id)
        if device_id == LOCAL_CPU_ID:  # this machine's CPU: no listed profile, its reference
            device = find_device(CPU_REFERENCE).model_copy(update={"id": LOCAL_CPU_ID})
        else:
            device = find_device(device_id)
        _, calibration = calibrate(base, device, measurements, catalog, builtin)
        if calibration:
            found.append((base, calibration))
    return found
