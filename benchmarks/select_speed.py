"""Selection speed: the whole catalog through licensing, sizing and ranking, as a user runs it.

    python benchmarks/select_speed.py [--runs 5] [--no-json]

Times `llmselect select` as a whole process (start-up included) on studies whose pool is the
entire built-in catalog, without measured evaluation, on three kinds of target hardware, two
ways each:

- `report`: `select STUDY --out DIR`, what a user types: the terminal summary, and report.html,
  report.md and results.json written;
- `--json`: `select STUDY --no-report --json`, what a script reads.

Each study runs once with empty caches (`first`: the parse cache of the built-in YAML files
and the compiled report template, in a fresh XDG_CACHE_HOME, as after an install or an
upgrade), then `--runs` times more (min, median, max). Python byte code is compiled first, as
an installed package's is. Reference: the one-second target of the selection issue (`target`);
`/ target` is the median over the target (below 1 meets it). `CPU` is the median of the
process's user and system seconds, with its own ratio: on a machine other work shares, it moves
less than the wall clock. The caption gives the load average before and after, to tell a quiet
run from a busy one.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

TARGET_S = 1.0
STUDIES = {
    "H100, 8 users, targets": (
        "hardware: H100-80GB\n"
        "targets: {context: 4096, concurrent_users: 8, ttft_p95_s: 2, tokens_per_s: 20,"
        " price_per_gpu_hour: 2.5}\n"
    ),
    "2x RTX-4090, 32k": "hardware: 2x RTX-4090\ntargets: {context: 32k}\n",
    "detect (this machine)": "hardware: detect\n",
}
POOL = "license: {use: {commercial: true}}\ncandidates: {filter: {}}\n"


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user and system) and the output of one run."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(  # noqa: S603 (our own entry point)
        command, capture_output=True, text=True, check=False, env=env
    )
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - used.ru_utime + after.ru_stime - used.ru_stime
    if done.returncode not in (0, 5):
        raise SystemExit(done.stderr)
    return seconds, cpu, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-json", action="store_true", help="Time the report runs only.")
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("llmselect")
    import llmselect

    compileall.compile_dir(Path(llmselect.__file__).parent, quiet=1)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    table = Table(
        title=f"llmselect select over the whole catalog, seconds (first run, then {args.runs})"
    )
    columns: tuple[str, ...] = (
        "study",
        "mode",
        "models",
        "first",
        "min",
        "median",
        "max",
        "target",
    )
    columns += ("/ target", "CPU", "CPU / target")
    for column in columns:
        table.add_column(column, justify="left" if column in ("study", "mode") else "right")
    modes = ["report"] + ([] if args.no_json else ["--json"])
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for index, (label, text) in enumerate(STUDIES.items()):
            study = Path(tmp) / f"{index}.yaml"
            study.write_text(text + POOL)
            out = Path(tmp) / f"out-{index}"
            for mode in modes:
                command = [str(exe), "select", str(study)]
                command += ["--out", str(out)] if mode == "report" else ["--no-report", "--json"]
                env["XDG_CACHE_HOME"] = str(Path(tmp) / f"cache-{index}-{mode}")
                first, _, _ = _timed(command, env)
                times, cpus = [], []
                for _ in range(args.runs):
                    seconds, cpu, stdout = _timed(command, env)
                    times.append(seconds)
                    cpus.append(cpu)
                selection = stdout if mode == "--json" else (out / "results.json").read_text()
                models = len(json.loads(selection)["entries"])
                median, cpu = statistics.median(times), statistics.median(cpus)
                table.add_row(
                    label,
                    mode,
                    str(models),
                    f"{first:.2f}",
                    f"{min(times):.2f}",
                    f"{median:.2f}",
                    f"{max(times):.2f}",
                    f"{TARGET_S:.2f}",
                    f"{median / TARGET_S:.2f}",
                    f"{cpu:.2f}",
                    f"{cpu / TARGET_S:.2f}",
                )
    table.caption = (
        f"{os.cpu_count()} CPUs; load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    Console(width=None if sys.stdout.isatty() else 150).print(table)  # piped: not squeezed


if __name__ == "__main__":
    main()
