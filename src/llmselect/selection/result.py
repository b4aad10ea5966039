"""What `llmselect select` decides, as plain data: the report renders it, `--json` prints it.

Every model considered appears once, as an `Entry`: ranked when it meets every constraint,
otherwise with the `Exclusion`s that keep it out (and what would let it in).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from llmselect.licensing.profile import UseProfile
from llmselect.licensing.verdicts import LicenseReport
from llmselect.sizing.estimate import Fit
from llmselect.study import Ranking, Targets

Stage = Literal["catalog", "license", "sizing", "targets", "evaluation"]


class Exclusion(BaseModel):
    stage: Stage
    reason: str
    """Why the model is out, with the numbers."""
    relax: str | None = None
    """What would let it in, in words ("if you relax targets.ttft_p95_s to 3.1")."""
    key: str
    """What the relaxation changes: a study key (`targets.ttft_p95_s`, `hardware`,
    `license.accept_conditional`), `license.use` for the use profile, `license.review`
    for a license nobody has read, `catalog` for missing facts."""


class MetricScore(BaseModel):
    name: str
    value: float
    low: float
    high: float
    n: int
    weight: float


class MeasuredLatency(BaseModel):
    """Measured on the machine that ran the evaluation (`Selection.reproducibility.machine`)."""

    p50_s: float
    p90_s: float
    p95_s: float
    p99_s: float
    ttft_p50_s: float | None = None
    ttft_p95_s: float | None = None
    tokens_per_s: float | None = None
    peak_memory_bytes: int | None = None


class LoadLevel(BaseModel):
    """One concurrency level of a bench (`llmselect bench`) against the model's server."""

    concurrency: int
    ttft_p95_s: float | None
    tokens_per_s: float | None
    """Decode tokens/s each user saw, median over requests (1 / TPOT)."""
    output_tokens_per_s: float
    """All users together."""
    requests_per_s: float
    errors: int


class MeasuredLoad(BaseModel):
    """Latency under load, measured by a bench on the study's hardware: what the targets and
    the ranking use instead of the estimate."""

    summary: str
    """The bench's summary.json."""
    url: str
    levels: list[LoadLevel]
    at: LoadLevel
    """The level the targets are judged at: the lowest concurrency at or above the study's
    concurrent users (the highest measured, when none reaches them)."""
    most_users: int | None = None
    """The highest concurrency measured at which the server met the study's speed targets (p95
    time to first token, tokens/s per user) with no errors; None when no level did, or the
    study sets no speed target."""


class Quality(BaseModel):
    value: float
    """0 to 1: the weighted task metrics when measured, else a published average over 100."""
    low: float | None = None
    high: float | None = None
    source: Literal["measured", "published"]
    detail: str
    """Which metrics or benchmark, in words."""
    benchmark: str | None = None
    """For a published score: the catalog benchmark it is (`open-llm-v1/average`)."""

    @property
    def where(self) -> str:
        """Where the score comes from, to end a sentence: 'on your task'."""
        if self.source == "measured":
            return "on your task"
        if self.benchmark in (None, "open-llm-v1/average"):
            return "on the published leaderboard"
        name = (self.benchmark or "").removeprefix("published/")
        return f"on {name} as its vendor published it"


class Entry(BaseModel):
    id: str
    name: str
    family: str
    organization: str | None = None
    params: int | None = None
    active_params: int | None = None
    kind: list[str] = Field(default_factory=list)
    context_length: int | None = None
    demo: bool = False
    """Its measurements come from a small demo model built on this machine."""
    license: LicenseReport | None = None
    verdict: Literal["allowed", "conditional", "blocked", "unknown"] | None = None
    """The license verdict for this study's use profile: the same `overall` that `license check`
    prints (`licensing.verdicts.overall_verdict`); the study's `license.accept_*` settings decide
    only whether the model stays in the pool."""
    duties: list[str] = Field(default_factory=list)
    """What the licenses require for this use (attribution, naming, user ceilings...)."""
    openness: str | None = None
    """Model Openness Framework class, when it can be told."""
    fit: Fit | None = None
    """The best precision that fits the target hardware and meets the targets."""
    tried: list[str] = Field(default_factory=list)
    """Precisions tried, best quality first."""
    backend: str | None = None
    metrics: list[MetricScore] = Field(default_factory=list)
    latency: MeasuredLatency | None = None
    examples: list[dict[str, str]] = Field(default_factory=list)
    """A few measured items as the model answered them: item_id, prompt, reference, output."""
    quality: Quality | None = None
    score: float | None = None
    """The ranking score (0 to 1) of a model that meets every constraint."""
    rank: int | None = None
    pareto: bool = False
    """Not beaten on quality, time per token and memory at once by any other ranked model."""
    exclusions: list[Exclusion] = Field(default_factory=list)
    load: MeasuredLoad | None = None
    """Latency under load from a bench of this model (study `bench:`), where one was given."""

    @property
    def qualified(self) -> bool:
        return not self.exclusions

    @property
    def tokens_per_s(self) -> float:
        """Decode tokens/s each user sees: measured under load where a bench exists, else the
        estimate."""
        if self.load is not None and self.load.at.tokens_per_s is not None:
            return self.load.at.tokens_per_s
        assert self.fit is not None
        return self.fit.estimates.decode_tokens_per_s

    @property
    def ttft_s(self) -> float:
        """Time to first token: the bench's p95 where one exists, else the estimate."""
        if self.load is not None and self.load.at.ttft_p95_s is not None:
            return self.load.at.ttft_p95_s
        assert self.fit is not None
        return self.fit.estimates.ttft_s


class Recommendation(BaseModel):
    model: str | None
    summary: str
    """The decision in plain words."""
    runners_up: list[str] = Field(default_factory=list)
    what_would_change: list[str] = Field(default_factory=list)
    """Relaxations that would bring in a better model, each in one sentence."""


class Reproducibility(BaseModel):
    created: datetime
    llmselect: str
    python: str
    platform: str
    packages: dict[str, str]
    machine: str
    """The machine the selection (and any measurement) ran on."""
    study_file: str
    study_sha256: str
    study_text: str
    dataset_sha256: str | None = None
    seed: int


class Finetuned(BaseModel):
    """A base model before and after fine-tuning, measured on the same items (`llmselect
    finetune`); the tuned model is also an entry, ranked or excluded like any other."""

    base: str
    tuned: str
    output: str = ""
    """The fine-tune's folder (its adapter or weights, model card and evaluation)."""
    leaked: int = 0
    """Evaluation items that were also training examples."""
    method: str
    """lora, qlora or full."""
    examples: int
    metric: str
    before: MetricScore
    after: MetricScore
    comparison: dict[str, Any]
    """The paired comparison after against before (`evaluation.statistics.Comparison`)."""
    samples: list[dict[str, str]] = Field(default_factory=list)
    """A few items with the base's and the tuned model's outputs: prompt, reference, before,
    after."""
    curve: list[dict[str, float]] = Field(default_factory=list)
    """The learning curve: examples, value, low, high per fraction of the data."""
    curve_verdict: str | None = None
    warnings: list[str] = Field(default_factory=list)
    """What to keep in mind reading the numbers (e.g. evaluation items seen in training)."""


class Selection(BaseModel):
    study: str
    description: str | None = None
    hardware: str
    """The target hardware the sizing stage judged against."""
    targets: Targets
    profile: UseProfile
    ranking: Ranking
    entries: list[Entry]
    """Ranked models first (best first), then the excluded ones."""
    comparisons: list[dict[str, Any]] = Field(default_factory=list)
    """Paired comparisons of the measured models (`evaluation.statistics.Comparison`)."""
    recommendation: Recommendation
    finetuned: list[Finetuned] = Field(default_factory=list)
    stages: dict[str, str]
    """What each stage did, in a line (or why it was skipped)."""
    warnings: list[str] = Field(default_factory=list)
    reproducibility: Reproducibility
