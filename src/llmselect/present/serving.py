"""The terminal view of a bench: one row per load level, the knee, and what stopped a run.

Every text from outside (the URL, the model's name, an error, a log's path) is a `Text`, never
read as markup.
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from llmselect.present import Screen
from llmselect.serving.results import BenchResult, LevelSummary


def _short(value: float | None) -> str:
    """Three significant digits, whole numbers from 100 on: 0.84, 14.1, 315, 1,002."""
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _ms(seconds: float | None) -> str:
    return _short(None if seconds is None else seconds * 1000)


_PROFILES = {
    "concurrency": "load = requests in flight",
    "constant": "load = requests a second, evenly spaced",
    "poisson": "load = requests a second, Poisson arrivals",
}


def _load(level: LevelSummary) -> str:
    if level.profile == "concurrency":
        return str(level.concurrency)
    cap = f" ≤{level.concurrency}" if level.concurrency else ""
    return f"{level.rate:g}/s{cap}"


def bench_table(result: BenchResult) -> Screen:
    """The levels as a table (milliseconds and tokens a second) and the knee; on stderr, what
    to read them by (how tokens were counted, the targets, where the files are)."""
    profile = result.levels[0].profile if result.levels else "concurrency"
    title = Text.assemble(
        (result.model, "bold cyan"),
        " at ",
        result.url,
        f" ({result.endpoint}); {_PROFILES[profile]}; times in ms",
    )
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 0, 0, 1),
        pad_edge=False,
    )
    has_goodput = any(level.goodput is not None for level in result.levels)
    headers = [
        "load",
        "reqs",
        "errs",
        "TTFT\np50",
        "TTFT\np95",
        "ITL\np50",
        "TPOT\np50",
        "E2E\np95",
        "tok/s",
        "tok/s\n/user",
        "req/s",
        *(["good-\nput"] if has_goodput else []),
    ]
    for name in headers:
        table.add_column(name, justify="left" if name == "load" else "right", no_wrap=True)
    for level in result.levels:
        row: list[RenderableType] = [
            _load(level),
            str(level.requests),
            Text(str(level.errors), style="red" if level.errors else ""),
            _ms(level.ttft_s.p50),
            _ms(level.ttft_s.p95),
            _ms(level.itl_s.p50),
            _ms(level.tpot_s.p50),
            _ms(level.e2e_s.p95),
            _short(level.output_tokens_per_s),
            _short(level.output_tokens_per_s_per_user.p50),
            _short(level.requests_per_s),
        ]
        if has_goodput:
            met = level.meets_targets
            mark = "" if met is None else (" ✓" if met else " ✗")
            share = "-" if level.goodput is None else f"{level.goodput:.0%}"
            row.append(Text(share + mark, style="green" if met else "red"))
        table.add_row(*row)
    shown: list[RenderableType] = [table]
    notes: list[str] = []
    for level in result.levels:
        if level.errors:
            kinds = ", ".join(f"{n} {kind}" for kind, n in level.error_kinds.items())
            notes.append(f"{_load(level)}: {level.errors} errors ({kinds})")
    sources = {level.tokens_source for level in result.levels if level.tokens_source}
    if sources:
        said = {
            "usage": "the server's usage",
            "tokenizer": "the model's tokenizer",
            "chunks": "one per streamed chunk (the server reported no usage)",
        }
        notes.append("output tokens counted from " + "; ".join(said[s] for s in sorted(sources)))
    if result.targets is not None and result.targets.given:
        wanted = []
        if result.targets.ttft_p95_s is not None:
            wanted.append(f"TTFT p95 ≤ {result.targets.ttft_p95_s:g} s")
        if result.targets.tokens_per_s is not None:
            wanted.append(f"≥ {result.targets.tokens_per_s:g} tokens/s per user")
        notes.append("targets: " + ", ".join(wanted))
    if result.knee is not None:
        if result.knee.concurrency is None:
            shown.append(
                Text("no load met the targets, not even one request at a time", style="bold red")
            )
        else:
            miss = (
                f" (missed at {result.knee.first_miss})"
                if result.knee.first_miss
                else " (the highest tried)"
            )
            shown.append(
                Text.assemble(
                    ("knee: ", "bold"),
                    (
                        f"{result.knee.concurrency} concurrent "
                        + ("request" if result.knee.concurrency == 1 else "requests"),
                        "bold green",
                    ),
                    (" meets" if result.knee.concurrency == 1 else " meet") + f" the targets{miss}",
                )
            )
    if result.engine is not None:
        startup = f" (up in {result.engine.startup_s:.1f} s)" if result.engine.startup_s else ""
        notes.append(f"engine log: {result.engine.log}{startup}")
    if result.out:
        notes.append(f"requests.jsonl and summary.json in {result.out}")
    return Screen(Group(*shown), notes)
