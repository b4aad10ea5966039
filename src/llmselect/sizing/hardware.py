"""Hardware profiles: accelerators and systems with the figures that bound inference speed.

The data file lists, per device, its memory, memory bandwidth and dense throughput, each with
its source. `parse_gpu("H100-80GB x2")` finds a device by id or alias and a count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmselect.errors import UsageError
from llmselect.yamlfile import load_yaml, validate


class Device(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    vendor: str
    kind: Literal["gpu", "unified", "cpu"]
    """gpu: discrete accelerator memory; unified: CPU and GPU share memory (Apple M-series);
    cpu: a CPU server whose RAM holds the model."""
    aliases: list[str] = Field(default_factory=list)
    memory_bytes: int = Field(gt=0)
    memory_bandwidth: float = Field(gt=0)
    """Bytes per second."""
    bf16_flops: float = Field(gt=0)
    """Dense (no sparsity) bf16/fp16 tensor throughput, FLOP/s."""
    int8_ops: float | None = Field(default=None, gt=0)
    """Dense int8 tensor throughput, OP/s; None when the device has no int8 path."""
    fp8_flops: float | None = Field(default=None, gt=0)
    tdp_watts: float | None = None
    released: int | None = None
    """Year."""
    sources: dict[str, str]
    """Where each figure comes from: keys memory, bandwidth, compute (and others if used)."""
    notes: str | None = None


class HardwareFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    devices: list[Device]


class UnknownDevice(UsageError):
    pass


@cache
def load_devices() -> dict[str, Device]:
    path = Path(str(resources.files("llmselect.sizing") / "data" / "hardware.yaml"))
    data = validate(HardwareFile, load_yaml(path), file=path)
    return {d.id: d for d in data.devices}


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def find_device(name: str) -> Device:
    devices = load_devices()
    wanted = _key(name)
    for device in devices.values():
        if wanted in {_key(device.id), *(_key(a) for a in device.aliases)}:
            return device
    import difflib

    names = {_key(n): d.id for d in devices.values() for n in (d.id, *d.aliases)}
    close = difflib.get_close_matches(wanted, list(names), n=8, cutoff=0.5)
    close = list(dict.fromkeys(names[c] for c in close))[:4]
    hint = f"did you mean {', '.join(close)}?" if close else "run `llmselect hardware --list`"
    raise UnknownDevice(f"unknown device {name!r}", hint=hint)


@dataclass(frozen=True)
class DeviceList:
    """`hardware --list` or `--gpu`: hardware profiles, each `count` times."""

    devices: list[Device]
    count: int = 1

    def to_json(self) -> list[dict[str, Any]]:
        return [d.model_dump(mode="json") | {"count": self.count} for d in self.devices]


def hardware_profiles(gpu: str | None) -> DeviceList:
    """The profile `gpu` names (e.g. `2x H100-80GB`), or every known profile."""
    if gpu:
        device, count = parse_gpu(gpu)
        return DeviceList([device], count)
    return DeviceList(list(load_devices().values()))


def parse_gpu(spec: str) -> tuple[Device, int]:
    """`H100-80GB`, `2x RTX-4090`, `A100-80GB x4`, `H100*8` -> (device, count)."""
    text = spec.strip()
    try:
        # A whole name first: "RTX 5090" and "7900XTX" end in what looks like "x N".
        return find_device(text), 1
    except UsageError:
        pass
    match = re.fullmatch(r"(\d+)\s*[x*]\s*(.+)", text, re.IGNORECASE) or re.fullmatch(
        r"(.+?)\s*[x*]\s*(\d+)", text, re.IGNORECASE
    )
    if match:
        first, second = match.groups()
        count_text, name = (first, second) if first.isdigit() else (second, first)
        count = int(count_text)
        if count < 1 or count > 1024:
            raise UsageError(f"device count {count} is out of range", hint="use 1 to 1024")
        return find_device(name), count
    return find_device(text), 1
