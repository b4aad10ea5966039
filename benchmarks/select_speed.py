"""Selection speed: the whole catalog through licensing, sizing and ranking, as a user runs it.

    python benchmarks/select_speed.py [--runs 5]

Times `llmselect select` as a whole process (start-up included) on a study whose pool is the
entire built-in catalog, without measured evaluation, on three kinds of target hardware.
Reference: the one-second budget of the selection issue. Prints min/median/max per study and
the ratio median / budget (below 1 meets it).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

BUDGET_S = 1.0
STUDIES = {
    "1x H100, 8 users, targets": (
        "hardware: H100-80GB\n"
        "targets: {context: 4096, concurrent_users: 8, ttft_p95_s: 2, tokens_per_s: 20,"
        " price_per_gpu_hour: 2.5}\n"
    ),
    "2x RTX-4090, 32k context": "hardware: 2x RTX-4090\ntargets: {context: 32k}\n",
    "this machine (detect)": "hardware: detect\n",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("llmselect")
    table = Table(title=f"llmselect select over the whole catalog ({args.runs} runs each)")
    for column in ("study", "models", "min s", "median s", "max s", "median / 1 s budget"):
        table.add_column(column, justify="left" if column == "study" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        for label, text in STUDIES.items():
            study = Path(tmp) / f"{len(table.rows)}.yaml"
            study.write_text(
                text + "license: {use: {commercial: true}}\ncandidates: {filter: {}}\n"
            )
            times = []
            for _ in range(args.runs):
                began = time.perf_counter()
                done = subprocess.run(  # noqa: S603 (our own entry point)
                    [str(exe), "select", str(study), "--no-report", "--json"],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                times.append(time.perf_counter() - began)
                if done.returncode not in (0, 5):
                    raise SystemExit(done.stderr)
            models = done.stdout.count('"exclusions"')
            median = statistics.median(times)
            table.add_row(
                label,
                str(models),
                f"{min(times):.2f}",
                f"{median:.2f}",
                f"{max(times):.2f}",
                f"{median / BUDGET_S:.2f}",
            )
    Console().print(table)


if __name__ == "__main__":
    main()
