"""Hardware bought in 2025-2026 (Blackwell, Blackwell Ultra, MI355X, DGX Spark, Strix Halo, M4,
Jetson) as the CLI finds it, what it fits, and invariants that hold over every profile."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()
HARDWARE_YAML = (
    Path(__file__).resolve().parents[2] / "src" / "llmselect" / "sizing" / "data" / "hardware.yaml"
)
GIB = 2**30

# id, an alias a user would type, marketed memory (GiB), bandwidth (bytes/s), dense bf16 (FLOP/s),
# each as read in the profile's sources (see hardware.yaml).
NEW_DEVICES = [
    ("GB200-NVL72-186GB", "GB200", 186, 8.0e12, 2.5e15),
    ("B300-HGX-270GB", "B300", 270, 7.7e12, 2.25e15),
    ("GB300-NVL72-279GB", "GB300", 279, 8.0e12, 2.5e15),
    ("RTX-PRO-6000-Blackwell-96GB", "RTX PRO 6000", 96, 1.792e12, 503.8e12),
    ("RTX-5080-16GB", "RTX-5080", 16, 960e9, 112.6e12),
    ("DGX-Spark-128GB", "GB10", 128, 273e9, 125e12),
    ("Jetson-AGX-Orin-64GB", "Jetson AGX Orin", 64, 204.8e9, 42.5e12),
    ("Jetson-AGX-Thor-128GB", "T5000", 128, 273e9, 258.75e12),
    ("MI355X-288GB", "MI355X", 288, 8.0e12, 2.5e15),
    ("Ryzen-AI-Max-395-128GB", "Strix-Halo", 128, 256e9, 59.4e12),
    ("M4-Max-36GB", "M4-Max-32c", 36, 410e9, 13.74e12),
    ("M4-Pro-64GB", "M4 Pro", 64, 273e9, 7.53e12),
    ("M4-32GB", "Apple-M4", 32, 120e9, 3.76e12),
]
# Devices the issue names that were already profiled; their aliases must keep resolving.
EXISTING = [
    ("B200-HGX-180GB", "B200"),
    ("RTX-5090-32GB", "RTX-5090"),
    ("M4-Max-128GB", "M4 Max"),
    ("M3-Ultra-512GB", "M3-Ultra"),
    ("DGX-Spark-128GB", "DGX-Spark"),
    ("Ryzen-AI-Max-395-128GB", "Ryzen AI Max+ 395"),
]


def hardware_json(gpu: str) -> dict[str, Any]:
    result = runner.invoke(app, ["hardware", "--gpu", gpu, "--json"])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    assert len(rows) == 1
    return rows[0]


def fit_json(*args: str, code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, ["fit", *args, "--json"])
    assert result.exit_code == code, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def raw_devices() -> list[dict[str, Any]]:
    """The file as written, without the pydantic model's own checks in between."""
    devices: list[dict[str, Any]] = yaml.safe_load(HARDWARE_YAML.read_text(encoding="utf-8"))[
        "devices"
    ]
    return devices


def num(value: Any) -> float:
    """A figure as pydantic reads it: YAML 1.1 leaves `600e+9` (no dot) a string."""
    return float(value)


def key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@pytest.mark.parametrize(
    ("device_id", "alias", "gib", "bandwidth", "bf16"),
    NEW_DEVICES,
    ids=[d[0] for d in NEW_DEVICES],
)
def test_new_device_by_id_and_alias_with_its_figures(
    device_id: str, alias: str, gib: int, bandwidth: float, bf16: float
) -> None:
    by_id = hardware_json(device_id)
    by_alias = hardware_json(alias)
    assert by_id["id"] == by_alias["id"] == device_id
    assert by_id["count"] == 1
    assert by_id["memory_bytes"] == gib * GIB
    assert by_id["memory_bandwidth"] == pytest.approx(bandwidth)
    assert by_id["bf16_flops"] == pytest.approx(bf16)
    assert {"memory", "bandwidth", "compute"} <= set(by_id["sources"])


@pytest.mark.parametrize(("device_id", "alias"), EXISTING, ids=[d[1] for d in EXISTING])
def test_aliases_people_type_resolve(device_id: str, alias: str) -> None:
    assert hardware_json(alias)["id"] == device_id


def test_rack_systems_are_profiled_per_gpu_and_counted() -> None:
    rack = hardware_json("GB200 x72")
    assert rack["id"] == "GB200-NVL72-186GB" and rack["count"] == 72
    # 72 GPUs x 186 GB is NVIDIA's 13.4 TB per NVL72 rack.
    assert 13.3e12 < rack["memory_bytes"] * 72 / GIB * 1e9 < 13.5e12


def test_blackwell_ultra_int8_is_far_below_fp8() -> None:
    b300 = hardware_json("B300")
    assert b300["int8_ops"] < b300["fp8_flops"] / 10


def test_70b_fits_a_b200_at_bf16_and_fp8_and_not_a_5090_at_bf16() -> None:
    model = "meta-llama/Llama-3.1-70B-Instruct"
    for quant in ("bf16", "fp8"):
        b200 = fit_json(model, "--gpu", "B200", "--quant", quant)
        assert b200["hardware"] == "B200-HGX-180GB"
        assert b200["fits"] is True and b200["margin_bytes"] > 0
    rtx = fit_json(model, "--gpu", "RTX-5090", "--quant", "bf16", code=4)
    assert rtx["hardware"] == "RTX-5090-32GB"
    assert rtx["fits"] is False and rtx["margin_bytes"] < 0
    # 128 GB of unified memory: a 70B model fits at fp8, not at bf16.
    fit_json(model, "--gpu", "DGX-Spark", "--quant", "bf16", code=4)
    assert fit_json(model, "--gpu", "DGX-Spark", "--quant", "fp8")["fits"] is True


def test_dense_bf16_never_exceeds_fp8() -> None:
    """Sparse figures halved wrongly (or an fp8 figure left sparse) break this ordering."""
    for d in raw_devices():
        if d.get("fp8_flops") is not None:
            assert num(d["bf16_flops"]) <= num(d["fp8_flops"]), d["id"]


def test_every_figure_is_positive_and_memory_is_whole_gib() -> None:
    for d in raw_devices():
        assert isinstance(d["memory_bytes"], int) and d["memory_bytes"] > 0, d["id"]
        # The file's convention: a marketed "N GB" is stored as N GiB.
        assert d["memory_bytes"] % GIB == 0, d["id"]
        assert num(d["memory_bandwidth"]) > 0, d["id"]
        assert num(d["bf16_flops"]) > 0, d["id"]
        for field in ("int8_ops", "fp8_flops", "tdp_watts"):
            assert d.get(field) is None or num(d[field]) > 0, (d["id"], field)
        assert d.get("released") is None or 2016 <= d["released"] <= datetime.date.today().year


def test_every_device_names_a_source_for_each_figure() -> None:
    for d in raw_devices():
        sources = d["sources"]
        for figure in ("memory", "bandwidth", "compute"):
            assert isinstance(sources.get(figure), str) and sources[figure].strip(), (
                d["id"],
                figure,
            )


def test_no_id_or_alias_is_shared_between_devices() -> None:
    owner: dict[str, str] = {}
    for d in raw_devices():
        for name in {key(n) for n in (d["id"], *d.get("aliases", []))}:
            assert name not in owner, f"{name!r} names both {owner[name]} and {d['id']}"
            owner[name] = d["id"]


def test_spaced_geforce_name_resolves() -> None:
    assert hardware_json("RTX 5090")["id"] == "RTX-5090-32GB"
    assert hardware_json("2x RTX 5090")["id"] == "RTX-5090-32GB"
