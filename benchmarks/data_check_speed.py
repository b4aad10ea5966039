"""Data check speed and recall: a synthetic training set with planted repeats and leaks.

    python benchmarks/data_check_speed.py [--rows 50000] [--eval-rows 5000] [--runs 3]

Writes a JSONL training set of `--rows` rows (random words, 10 to 60 per input) with 1% exact
repeats, 1% near repeats (one word changed) and an evaluation set with 2% of its rows copied or
lightly edited from training, then times `check_data` (loading included, no tokenizer). Prints
min/median wall and CPU time per run and how many planted repeats and leaks were found; the
budget is a few seconds for 50k rows.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from llmselect.finetune.data_check import check_data

BUDGET_S = 5.0


def _sentence(rng: random.Random, words: list[str]) -> str:
    return " ".join(rng.choice(words) for _ in range(rng.randint(10, 60)))


def _edit(rng: random.Random, text: str, words: list[str]) -> str:
    tokens = text.split()
    tokens[rng.randrange(len(tokens))] = rng.choice(words)
    return " ".join(tokens)


def write_sets(folder: Path, rows: int, eval_rows: int) -> tuple[Path, Path, int, int, int]:
    rng = random.Random(7)  # noqa: S311 (test data, not secrets)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(20_000)]
    train = [
        {"input": _sentence(rng, words), "reference": rng.choice(["yes", "no", "maybe"])}
        for _ in range(rows)
    ]
    exact = near = 0
    for index in range(100, rows, 100):
        source = train[rng.randrange(index)]
        if index % 200:
            train[index] = dict(source)
            exact += 1
        elif len(source["input"].split()) >= 40:  # one word in 40+ stays above 0.8 alike
            edited = _edit(rng, source["input"], words)
            train[index] = {"input": edited, "reference": source["reference"]}
            near += 1
    evaluation = [
        {"input": _sentence(rng, words), "reference": rng.choice(["yes", "no", "maybe"])}
        for _ in range(eval_rows)
    ]
    leaks = 0
    for index in range(0, eval_rows, 50):
        evaluation[index] = dict(train[rng.randrange(rows)])
        leaks += 1
    train_path, eval_path = folder / "train.jsonl", folder / "eval.jsonl"
    train_path.write_text("".join(json.dumps(r) + "\n" for r in train))
    eval_path.write_text("".join(json.dumps(r) + "\n" for r in evaluation))
    return train_path, eval_path, exact, near, leaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--eval-rows", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        train, evaluation, exact, near, leaks = write_sets(Path(tmp), args.rows, args.eval_rows)
        times, cpu = [], []
        for _ in range(args.runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            report = check_data(train, evaluation if args.eval_rows else None, max_tokens=4096)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    median = statistics.median(times)
    print(f"{args.rows} training rows, {args.eval_rows} evaluation rows, {args.runs} runs")
    print(f"time: min {min(times):.2f} s, median {median:.2f} s (budget {BUDGET_S:g} s)")
    # CPU time is what a busy shared machine inflates least.
    print(f"CPU time: min {min(cpu):.2f} s, median {statistics.median(cpu):.2f} s")
    dup = report.duplicates
    print(f"identical repeats: planted {exact}, found {len(dup.identical)}")
    print(f"near repeats: planted {near}, found {len(dup.near)}")
    if report.leakage is not None:
        print(f"leaks: planted {leaks}, found {len(report.leakage.leaked)}")


if __name__ == "__main__":
    main()
