"""Launch-bound latency on an H100: predicted against measured TTFT and decode speed.

    python benchmarks/h100_latency.py [--slice PATH/transformers_eager_generate.jsonl]

The rows are the runs llmselect ships as calibration for transformers-eager on H100-SXM-80GB
(src/llmselect/sizing/data/measurements.jsonl: Llama-2-7B and Mistral-7B-v0.1, from the shared
data set h100-measurements of 2026-11-22). `--slice` adds that data set's third shape, the first
20 layers of Llama-2-70B (no catalog model: its card here is Llama-2-70B's with 20 layers).

For each row the table prints the prediction of the default transformers-eager profile (before),
and of the profile calibrated on every shipped row (after), against the measured time to first
token and decode tokens per second per sequence, then the median absolute errors. Last, the
held-out check: calibrate on the rows of all shapes but one and predict the one left out.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
from pathlib import Path

from rich.console import Console
from rich.table import Table

from llmselect.catalog import Catalog, load_builtin
from llmselect.sizing.calibration import Measurement, builtin_measurements, calibrate
from llmselect.sizing.calibration import predict as predict_run
from llmselect.sizing.engines import Engine, get_engine
from llmselect.sizing.hardware import find_device

DEVICE = "H100-SXM-80GB"
ENGINE = "transformers-eager"
SLICE_ID = "llama-2-70b-first20layers"
SLICE_BASE = "meta-llama/Llama-2-70b-hf"
FORMER = {
    "bandwidth_efficiency": 0.10,
    "compute_efficiency": 0.35,
    "decode_overhead_per_layer_s": 0.0,
    "prefill_overhead_per_layer_s": 0.0,
}
"""transformers-eager before the fixed cost per layer (llmselect 2026-12-03)."""


def shipped_rows() -> list[Measurement]:
    return [m for m in builtin_measurements() if m.engine == ENGINE and m.device == DEVICE]


def slice_rows(path: Path) -> list[Measurement]:
    """The 20-layer slice of Llama-2-70B from the shared data set's file."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r.get("model") != SLICE_ID:
            continue
        rows.append(
            Measurement(
                model=SLICE_ID,
                device=DEVICE,
                engine=ENGINE,
                quant="bf16",
                batch=r["batch"],
                context=r["prompt"] + r["new_tokens"],
                prompt_tokens=r["prompt"],
                decode_tokens_per_s=r["decode_tok_s_per_seq"],
                ttft_s=r["ttft_s"],
                measured_at=datetime.datetime(2026, 11, 22, tzinfo=datetime.UTC),
                source=f"{path.name} (shared data set h100-measurements, 2026-11-22)",
            )
        )
    return rows


def catalog_with_slice() -> Catalog:
    catalog = load_builtin()
    base = catalog.get(SLICE_BASE)
    arch = base.architecture.model_copy(update={"num_hidden_layers": 20})
    catalog.add(base.model_copy(update={"id": SLICE_ID, "architecture": arch, "aliases": []}))
    return catalog


def predict(engine: Engine, m: Measurement, catalog: Catalog) -> tuple[float, float]:
    """(TTFT s, decode tokens/s per sequence) for a run's shape."""
    e = predict_run(m, catalog.get(m.model), find_device(DEVICE), engine)
    return e.ttft_s, e.decode_tokens_per_s


def error(predicted: float, measured: float | None) -> float:
    assert measured is not None
    return predicted / measured - 1


def held_out(rows: list[Measurement], catalog: Catalog) -> dict[str, tuple[float, float]]:
    """Per shape: median |error| of TTFT and decode when calibrated on the other shapes only."""
    device, base = find_device(DEVICE), get_engine(ENGINE)
    found = {}
    for shape in dict.fromkeys(m.model for m in rows):
        rest = [m for m in rows if m.model != shape]
        tuned, _ = calibrate(base, device, rest, catalog)
        mine = [m for m in rows if m.model == shape]
        ttft, tps = zip(*(predict(tuned, m, catalog) for m in mine), strict=True)
        found[shape] = (
            statistics.median(abs(error(p, m.ttft_s)) for p, m in zip(ttft, mine, strict=True)),
            statistics.median(
                abs(error(p, m.decode_tokens_per_s)) for p, m in zip(tps, mine, strict=True)
            ),
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slice", type=Path, help="the shared transformers_eager_generate.jsonl")
    args = parser.parse_args()
    catalog = catalog_with_slice()
    shipped = shipped_rows()
    rows = shipped + (slice_rows(args.slice) if args.slice else [])
    device, base = find_device(DEVICE), get_engine(ENGINE)
    tuned, cal = calibrate(base, device, [], catalog, shipped)
    assert cal is not None
    console = Console()
    console.print(
        f"{ENGINE} on {DEVICE}: default bandwidth {base.bandwidth_efficiency:.2f}, compute "
        f"{base.compute_efficiency:.2f}, decode {base.decode_overhead_per_layer_s * 1e3:.3f} ms"
        f"/layer, prefill {base.prefill_overhead_per_layer_s * 1e3:.3f} ms/layer; calibrated "
        f"from {len(shipped)} shipped run(s): bandwidth {tuned.bandwidth_efficiency:.2f}, "
        f"compute {tuned.compute_efficiency:.2f}, decode "
        f"{tuned.decode_overhead_per_layer_s * 1e3:.3f} ms/layer, prefill "
        f"{tuned.prefill_overhead_per_layer_s * 1e3:.3f} ms/layer"
    )
    table = Table(header_style="bold")
    for col in ("model", "batch", "prompt", "TTFT ms", "before", "after", "tok/s", "before"):
        table.add_column(col, justify="right" if col != "model" else "left")
    table.add_column("after", justify="right")
    errors: dict[str, list[float]] = {k: [] for k in ("tb", "ta", "db", "da")}
    for m in rows:
        assert m.ttft_s is not None and m.decode_tokens_per_s is not None
        (tb, db), (ta, da) = predict(base, m, catalog), predict(tuned, m, catalog)
        for key, p, measured in (
            ("tb", tb, m.ttft_s),
            ("ta", ta, m.ttft_s),
            ("db", db, m.decode_tokens_per_s),
            ("da", da, m.decode_tokens_per_s),
        ):
            errors[key].append(abs(error(p, measured)))
        table.add_row(
            m.model.split("/")[-1],
            str(m.batch),
            str(m.prompt_tokens),
            f"{m.ttft_s * 1e3:.1f}",
            f"{tb * 1e3:.1f} ({error(tb, m.ttft_s):+.0%})",
            f"{ta * 1e3:.1f} ({error(ta, m.ttft_s):+.0%})",
            f"{m.decode_tokens_per_s:.2f}",
            f"{db:.2f} ({error(db, m.decode_tokens_per_s):+.0%})",
            f"{da:.2f} ({error(da, m.decode_tokens_per_s):+.0%})",
        )
    console.print(table)
    med = {k: statistics.median(v) for k, v in errors.items()}
    console.print(
        f"median |error|  TTFT: before {med['tb']:.0%}, after {med['ta']:.0%}   "
        f"decode: before {med['db']:.0%}, after {med['da']:.0%}"
    )
    former = base.model_copy(update=FORMER)
    was_t, was_d = [], []
    for m in rows:
        t, d = predict(former, m, catalog)
        was_t.append(abs(error(t, m.ttft_s)))
        was_d.append(abs(error(d, m.decode_tokens_per_s)))
    console.print(
        "the former bandwidth-only profile (0.10 of bandwidth, 0.35 of compute, no fixed cost): "
        f"TTFT {statistics.median(was_t):.0%}, decode {statistics.median(was_d):.0%}"
    )
    console.print("held out (calibrated on the other shapes only): median |error|")
    for shape, (t, d) in held_out(rows, catalog).items():
        console.print(f"  {shape}: TTFT {t:.0%}, decode {d:.0%}")


if __name__ == "__main__":
    main()
