"""Inference engine profiles: efficiency against the hardware's limits, and memory overheads.

Every tuning figure of a profile carries where it comes from (`sources`): a measurement of the
engine itself, a measurement of another engine of the same kind (a proxy), or an assumption.
The data file keeps the arithmetic; `tests/sizing/test_engines.py` checks that each figure is the
median of its best-grounded sources.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmselect.errors import UsageError
from llmselect.yamlfile import load_yaml, validate

if TYPE_CHECKING:
    from llmselect.catalog import Catalog
    from llmselect.sizing.calibration import Calibration
    from llmselect.sizing.hardware import Device

Figure = Literal[
    "bandwidth_efficiency",
    "compute_efficiency",
    "decode_overhead_per_layer_s",
    "prefill_overhead_per_layer_s",
    "fixed_overhead_bytes",
    "slack_fraction",
]
"""The figures of a profile that are tuned rather than read off the engine's configuration."""

FIGURES: tuple[Figure, ...] = get_args(Figure)


class EngineSource(BaseModel):
    """One piece of evidence for one figure of a profile."""

    model_config = ConfigDict(extra="forbid")

    figure: Figure
    value: float = Field(ge=0)
    """What this evidence alone gives for the figure."""
    basis: Literal["measured", "proxy", "assumed"]
    """measured: this engine; proxy: another engine of the same kind; assumed: no measurement."""
    source: str = Field(min_length=1)
    """URL or document."""
    detail: str = Field(min_length=1)
    """The figure read, the hardware, and the arithmetic that turns it into `value`."""


class Engine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    bandwidth_efficiency: float = Field(gt=0, le=1)
    """Fraction of peak memory bandwidth reached while decoding."""
    compute_efficiency: float = Field(gt=0, le=1)
    """Fraction of peak dense throughput reached during prefill."""
    decode_overhead_per_layer_s: float = Field(ge=0)
    """Fixed time per layer per decode step besides reading and computing: kernel launches and
    host work, which a launch-bound engine (eager PyTorch) pays whatever the model's width."""
    prefill_overhead_per_layer_s: float = Field(ge=0)
    """The same per layer for each forward pass of a prefill: the floor of time to first token."""
    fixed_overhead_bytes: int = Field(ge=0)
    """Per device: runtime context, library workspaces, graphs."""
    slack_fraction: float = Field(ge=0, le=1)
    """Allocator fragmentation, as a fraction of the memory in use."""
    attention: Literal["flash", "eager"]
    """eager materializes the attention scores of a prefill chunk."""
    prefill_chunk: int | None = None
    """Tokens processed per prefill step; None: the whole prompt at once."""
    logits_all_positions: bool = False
    sliding_window_cache: Literal["context", "window", "window-1", "window+chunk"] = "context"
    """What a sliding-window (or chunked-attention) layer keeps: the whole context; the window
    (vLLM's hybrid KV cache manager, a static cache); the window less the current token
    (transformers' dynamic cache); the window plus one prefill chunk (llama.cpp's SWA cache)."""
    sliding_window_source: str | None = None
    """Where that behaviour is documented (code or docs)."""
    sources: list[EngineSource] = Field(min_length=1)

    @model_validator(mode="after")
    def _every_figure_has_a_source(self) -> Engine:
        covered = {s.figure for s in self.sources}
        missing = [f for f in FIGURES if f not in covered]
        if missing:
            raise ValueError(
                f"no source for {', '.join(missing)}: cite a measurement, or mark it assumed"
            )
        return self

    def sources_for(self, figure: Figure) -> list[EngineSource]:
        """The evidence that decides `figure`: this engine's measurements, else proxies, else
        assumptions."""
        mine = [s for s in self.sources if s.figure == figure]
        for basis in ("measured", "proxy", "assumed"):
            chosen = [s for s in mine if s.basis == basis]
            if chosen:
                return chosen
        return []


class EnginesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engines: list[Engine]


def engines_file() -> Path:
    return Path(str(resources.files("llmselect.sizing") / "data" / "engines.yaml"))


def read_engines(path: Path) -> dict[str, Engine]:
    """Engine profiles from a YAML file; an error names the file, line and field."""
    return {e.id: e for e in validate(EnginesFile, load_yaml(path), file=path).engines}


@cache
def load_engines() -> dict[str, Engine]:
    return read_engines(engines_file())


def get_engine(engine_id: str) -> Engine:
    engines = load_engines()
    try:
        return engines[engine_id.lower()]
    except KeyError:
        raise UsageError(
            f"unknown engine {engine_id!r}", hint="choose one of " + ", ".join(engines)
        ) from None


class EngineLookup:
    """A precision's engine profile on one device, calibrated by the runs measured there."""

    def __init__(self, device: Device, catalog: Catalog, engine: str | None = None) -> None:
        from llmselect.sizing.calibration import builtin_measurements, load_measurements

        self.device = device
        self.catalog = catalog
        self.engine = engine
        self.measurements = load_measurements()
        self.shipped = builtin_measurements()
        self.calibrations: dict[str, Calibration] = {}
        """Per engine id, the calibration its measured runs gave it (none: no runs)."""
        self._engines: dict[str, Engine] = {}

    def __call__(self, scheme: str, gguf: bool = False) -> Engine:
        """`engine` where one was asked for, else the default (llama.cpp for GGUF on a GPU)."""
        from llmselect.sizing.calibration import calibrate
        from llmselect.sizing.estimate import default_engine_id

        engine_id = self.engine or (
            "llama.cpp"
            if gguf and self.device.kind != "cpu"
            else default_engine_id(scheme, self.device)
        )
        if engine_id not in self._engines:
            base = get_engine(engine_id)
            tuned, calibration = calibrate(
                base, self.device, self.measurements, self.catalog, self.shipped
            )
            self._engines[engine_id] = tuned
            if calibration:
                self.calibrations[base.id] = calibration
        return self._engines[engine_id]
