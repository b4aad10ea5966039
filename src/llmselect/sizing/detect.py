"""Detect the local machine: NVIDIA GPUs through NVML, CPU and RAM through psutil and /proc."""

from __future__ import annotations

import ctypes
import importlib.util
import platform
import re
import sys
from pathlib import Path

from pydantic import BaseModel

from llmselect.sizing.hardware import Device, load_devices

CPU_REFERENCE = "CPU-DDR4-DUAL"
"""The profile whose bandwidth and compute stand in for an unlisted CPU."""
LOCAL_CPU_ID = "this-machine-cpu"


class LocalGPU(BaseModel):
    index: int
    name: str
    memory_bytes: int
    profile: str | None
    """The id of the matching hardware profile, when one matches."""


class LocalMachine(BaseModel):
    cpu: str
    cores: int
    ram_bytes: int
    gpus: list[LocalGPU]
    notes: list[str]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def match_profile(gpu_name: str, memory_bytes: int) -> Device | None:
    """The profile whose name best matches what the driver reports (`NVIDIA H100 80GB HBM3`)."""
    words = {w for w in re.split(r"[^a-z0-9]+", gpu_name.lower()) if w and w != "nvidia"}
    best: tuple[int, Device] | None = None
    for device in load_devices().values():
        if device.kind != "gpu":
            continue
        names = [device.name.lower(), device.id.lower(), *(a.lower() for a in device.aliases)]
        score = max(sum(1 for w in words if w in n) for n in names)
        # Prefer the variant whose memory matches what the driver reports, within 10%.
        if abs(device.memory_bytes - memory_bytes) <= 0.1 * device.memory_bytes:
            score += 2
        if score and (best is None or score > best[0]):
            best = (score, device)
    return best[1] if best and best[0] >= 3 else None


def detect() -> LocalMachine:
    notes: list[str] = []
    gpus: list[LocalGPU] = []
    try:
        if _nvml_library_missing():
            return _machine(gpus, ["no NVIDIA GPU found (NVMLError_LibraryNotFound)"])
        import pynvml

        pynvml.nvmlInit()
        try:
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                name = pynvml.nvmlDeviceGetName(handle)
                name = name.decode() if isinstance(name, bytes) else str(name)
                total = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
                profile = match_profile(name, total)
                gpus.append(
                    LocalGPU(
                        index=index,
                        name=name,
                        memory_bytes=total,
                        profile=profile.id if profile else None,
                    )
                )
        finally:
            pynvml.nvmlShutdown()
    except ImportError:
        notes.append("nvidia-ml-py is not installed: NVIDIA GPUs were not looked for")
    except Exception as exc:  # NVMLError when there is no driver or no GPU
        notes.append(f"no NVIDIA GPU found ({type(exc).__name__})")
    return _machine(gpus, notes)


def _machine(gpus: list[LocalGPU], notes: list[str]) -> LocalMachine:
    import psutil

    return LocalMachine(
        cpu=_cpu_name(),
        cores=psutil.cpu_count(logical=False) or psutil.cpu_count() or 1,
        ram_bytes=int(psutil.virtual_memory().total),
        gpus=gpus,
        notes=notes,
    )


def _nvml_library_missing() -> bool:
    """True on Linux when pynvml is installed and NVIDIA's library is not (no driver): what
    pynvml finds then (`NVMLError_LibraryNotFound`), known without importing it, which took
    20 ms of every `select` (it describes this machine)."""
    if not sys.platform.startswith("linux") or importlib.util.find_spec("pynvml") is None:
        return False
    try:
        ctypes.CDLL("libnvidia-ml.so.1")  # the name pynvml loads on Linux
    except OSError:
        return True
    return False


def target_hardware(spec: str | None) -> tuple[Device, int]:
    """A named device (`2x RTX-4090`), or this machine when `spec` is None or `detect`."""
    from llmselect.errors import UsageError
    from llmselect.sizing.hardware import find_device, parse_gpu

    if spec and spec.strip().lower() != "detect":
        return parse_gpu(spec)
    machine = detect()
    profiles = [g.profile for g in machine.gpus if g.profile]
    if profiles:
        return find_device(profiles[0]), len(profiles)
    if machine.gpus:
        raise UsageError(
            f"no hardware profile matches {machine.gpus[0].name!r}", hint="name one with --gpu"
        )
    # No GPU: the CPU and RAM of this machine, with the reference desktop's bandwidth.
    reference = find_device(CPU_REFERENCE)
    local = reference.model_copy(
        update={"id": LOCAL_CPU_ID, "name": machine.cpu, "memory_bytes": machine.ram_bytes}
    )
    return local, 1
