"""What a bench measures, as typed data: one record per request, one summary per load level.

Units are seconds and tokens per second, always. Names follow `vllm bench serve`: TTFT (time to
first token), ITL (the gaps between successive tokens, pooled over a level's requests), TPOT
(time per output token after the first, one value per request), E2E (request sent to last
byte).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

TokensSource = Literal["usage", "tokenizer", "chunks"]
"""Where an output token count comes from: the server's `usage` in the stream; the model's
tokenizer over the text; or one token per streamed chunk (servers that send no usage stream one
token per chunk: llama.cpp's servers and vLLM do)."""

Profile = Literal["concurrency", "constant", "poisson"]
"""A level holds `concurrency` requests in flight, or sends `rate` requests a second, evenly
spaced (`constant`) or as a seeded Poisson process (`poisson`)."""


class RequestRecord(BaseModel):
    """One request's timings (every offset in seconds from the level's start)."""

    level: int
    """The level's index in the run (0-based)."""
    repeat: int = 0
    index: int
    """The request's order at its level (warm-up ones first)."""
    warmup: bool = False
    """Sent to reach steady load; in requests.jsonl, left out of every figure."""
    start_s: float
    ttft_s: float | None = None
    e2e_s: float | None = None
    token_times_s: list[float] = Field(default_factory=list)
    """When each token (or chunk of tokens) arrived, from the request's start."""
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    tokens_source: TokensSource | None = None
    finish_reason: str | None = None
    status: int | None = None
    """The HTTP status (None when no answer came)."""
    error: str | None = None
    """Why it failed (`timeout`, `http 500`, `stream ended early`...); None if it did not."""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first: (E2E - TTFT) / (tokens - 1)."""
        if self.e2e_s is None or self.ttft_s is None or not self.output_tokens:
            return None
        if self.output_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)


class Stats(BaseModel):
    """A distribution's mean and percentiles (linear interpolation, as numpy and vLLM do);
    all None when nothing was measured."""

    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    min: float | None = None
    max: float | None = None
    count: int = 0


class Targets(BaseModel):
    """What each request must see to count in the goodput (a study's `targets`)."""

    ttft_p95_s: float | None = Field(default=None, gt=0)
    """Time to first token, seconds (95% of requests within it meets the target)."""
    tokens_per_s: float | None = Field(default=None, gt=0)
    """Tokens a second each user sees while the answer streams (1 / TPOT)."""

    @property
    def given(self) -> bool:
        return self.ttft_p95_s is not None or self.tokens_per_s is not None


class Interval(BaseModel):
    """A 95% confidence interval of the mean over repeats (Student's t)."""

    mean: float
    low: float
    high: float


class LevelSummary(BaseModel):
    """One load level's figures, over its measured requests (warm-up excluded)."""

    profile: Profile
    concurrency: int | None
    """Requests in flight at once (for a rate level: the cap, None if none)."""
    rate: float | None = None
    """Requests sent a second (rate levels)."""
    repeats: int = 1
    requests: int
    """Measured requests sent (errors included; warm-up excluded)."""
    completed: int
    errors: int
    """Requests that failed, timeouts included."""
    timeouts: int
    error_kinds: dict[str, int] = Field(default_factory=dict)
    duration_s: float
    """From the first measured request sent to the last one finished."""
    ttft_s: Stats
    itl_s: Stats
    tpot_s: Stats
    e2e_s: Stats
    output_tokens: int
    prompt_tokens: int | None
    tokens_source: TokensSource | None
    """How the output tokens were counted (the most common source at this level)."""
    output_tokens_per_s: float
    """Output tokens of completed requests over the level's duration (all users together)."""
    output_tokens_per_s_per_user: Stats
    """Each completed request's decode speed, 1 / TPOT."""
    requests_per_s: float
    goodput: float | None
    """Share of measured requests (errors count against it) that met the targets; None without
    targets."""
    goodput_requests_per_s: float | None
    """Requests a second that met the targets (vLLM's goodput)."""
    meets_targets: bool | None
    """TTFT p95 within `ttft_p95_s`, per-user tokens/s at its 5th percentile at least
    `tokens_per_s`, and no errors; None without targets."""
    ci95: dict[str, Interval] = Field(default_factory=dict)
    """Over repeats (two or more): ttft_p50, ttft_p95, itl_p50, tpot_p50, e2e_p50,
    output_tokens_per_s, requests_per_s."""


class Knee(BaseModel):
    """The highest load that met the targets, found by doubling then bisecting."""

    concurrency: int | None
    """None when even the lowest load missed them."""
    first_miss: int | None
    """The lowest load tried that missed them (None if none did up to the limit)."""


class Engine(BaseModel):
    """A server llmselect started for the bench."""

    command: list[str]
    log: str
    """Its stdout and stderr, kept."""
    startup_s: float | None = None
    """From start to healthy."""


class BenchResult(BaseModel):
    """A bench run: the target, how it was loaded, and the figures per level."""

    url: str
    model: str
    endpoint: Literal["completions", "chat"]
    prompt_source: str
    """`synthetic` or the dataset file the prompts came from."""
    prompt_tokens: str | None = None
    """The synthetic prompt length asked for (`128`, `uniform:64-256`...)."""
    output_tokens: str | None = None
    seed: int
    targets: Targets | None = None
    levels: list[LevelSummary]
    knee: Knee | None = None
    engine: Engine | None = None
    complete: bool = True
    """False when the run stopped early (`error` says why); the levels are those measured."""
    error: str | None = None
    out: str | None = None
    """The folder with requests.jsonl and summary.json, when written."""


def read_bench(path: Path) -> BenchResult:
    """A bench's summary.json (or the folder `--out` wrote it in), checked; errors name it."""
    from pydantic import ValidationError

    from llmselect.errors import LLMSelectError

    file = path / "summary.json" if path.is_dir() else path
    try:
        return BenchResult.model_validate_json(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LLMSelectError(f"cannot read {file}: {exc.strerror}", file=file) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise LLMSelectError(
            f"not a bench summary: {first['msg']}",
            file=file,
            field=".".join(str(part) for part in first["loc"]),
            hint="give the summary.json that `llmselect bench --out DIR` wrote",
        ) from None
