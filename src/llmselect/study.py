"""The study file: the user's input that every job reads (select, finetune, bench) — a use case,
its data, hardware, targets, license profile and candidates.

```yaml
name: support-answers
dataset: {path: data/eval.jsonl, fields: {input: question, reference: answer}}
task: {kind: generate, template: "Q: {{ input }}\\nA:", max_tokens: 32, stop: ["\\n"]}
metrics: [{name: exact_match, weight: 2}, token_f1]
hardware: 2x RTX-4090            # or `detect`: this machine
targets: {context: 4096, concurrent_users: 8, ttft_p95_s: 2, tokens_per_s: 20}
license: {profile: profile.yaml, accept_conditional: true}
candidates:
  ids: [mistralai/Mistral-7B-Instruct-v0.2]
  filter: {min_params: 1B, max_params: 15B, kind: chat}
  run:
    - {id: acme/support-7b, transformers: models/support-7b}
ranking: {quality: 0.7, speed: 0.2, cost: 0.1}
```
`dataset`, `task` and `metrics` are those of an evaluation study (`llmselect eval`); paths are
relative to the study file.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from llmselect.catalog.schema import Kind
from llmselect.evaluation.executors import ExecutorSpec
from llmselect.evaluation.store import study_store
from llmselect.evaluation.study import (
    Candidate,
    DatasetSpec,
    EvalStudy,
    MetricSpec,
    Strict,
    TaskSpec,
    metric_shorthand,
)
from llmselect.licensing.profile import UseProfile, load_profile
from llmselect.units import parse_count
from llmselect.yamlfile import load_yaml, validate


def _count(value: Any) -> Any:
    return parse_count(value) if isinstance(value, str) else value


class PoolFilter(Strict):
    """Catalog models to consider; every field left out matches everything."""

    min_params: int | None = Field(default=None, ge=0)
    max_params: int | None = Field(default=None, ge=0)
    max_active_params: int | None = Field(default=None, ge=0)
    min_context: int | None = Field(default=None, ge=1)
    family: str | None = None
    organization: str | None = None
    kind: Kind | None = None
    licenses: list[str] | None = None
    released_after: date | None = None
    text: str | None = None

    @field_validator("min_params", "max_params", "max_active_params", "min_context", mode="before")
    @classmethod
    def _counts(cls, value: Any) -> Any:
        return _count(value)


class RunSpec(Candidate):
    """How to run one candidate that should be measured; `id` names it in the catalog.

    A local transformers folder whose id is not in the catalog is read from its own
    `config.json` and model card."""

    name: str = Field(default="", pattern=r"^[\w.\-/]*$")
    id: str
    demo: bool = False
    """A small demo model built on this machine: its results say so."""

    @model_validator(mode="after")
    def _name_from_id(self) -> RunSpec:
        if not self.name:
            self.name = self.id
        return self


class Pool(Strict):
    ids: list[str] = Field(default_factory=list)
    filter: PoolFilter | None = None
    run: list[RunSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> Pool:
        if not (self.ids or self.filter or self.run):
            raise ValueError("name candidate ids, a catalog filter, or models to run")
        ids = [r.id.lower() for r in self.run]
        if len(set(ids)) != len(ids):
            raise ValueError("each model may be run once")
        return self


class Targets(Strict):
    """What the deployment must deliver; the estimates on the target hardware are held to it."""

    context: int = Field(default=4096, ge=16)
    """Tokens per sequence, prompt plus generated."""
    prompt_tokens: int | None = Field(default=None, ge=1)
    """Tokens of a typical prompt, for the time to first token (default: half the context)."""
    concurrent_users: int = Field(default=1, ge=1, le=65536)
    """Sequences decoded at once (the batch)."""
    ttft_p95_s: float | None = Field(default=None, gt=0)
    tokens_per_s: float | None = Field(default=None, gt=0)
    """Decode speed each user must see."""
    price_per_gpu_hour: float | None = Field(default=None, ge=0)
    max_cost_per_million_tokens: float | None = Field(default=None, gt=0)
    engine: str | None = None
    """The serving engine (default: vLLM on GPUs, llama.cpp for GGUF, the CPU profile on CPUs)."""
    quant: list[str] | None = None
    """Precisions allowed (default: every one the hardware supports, best first)."""

    @field_validator("context", "prompt_tokens", mode="before")
    @classmethod
    def _counts(cls, value: Any) -> Any:
        return _count(value)

    @model_validator(mode="after")
    def _prompt_inside(self) -> Targets:
        if self.prompt_tokens is not None and self.prompt_tokens >= self.context:
            raise ValueError("prompt_tokens must be smaller than context")
        if self.max_cost_per_million_tokens is not None and self.price_per_gpu_hour is None:
            raise ValueError("max_cost_per_million_tokens needs price_per_gpu_hour")
        return self


class LicensePolicy(Strict):
    profile: str | None = None
    """A use-profile YAML file (relative to the study file)."""
    use: UseProfile | None = None
    """The profile written inline (instead of `profile`)."""
    accept_conditional: bool = True
    """Keep models whose licenses allow the use only with duties (attribution, naming...)."""
    accept_unknown_data: bool = True
    """Keep models whose training data's terms are unknown (most models'), marked for review.
    Unknown weights or code licenses always exclude: nobody can tell whether the use is allowed."""

    @model_validator(mode="after")
    def _one_profile(self) -> LicensePolicy:
        if self.profile and self.use:
            raise ValueError("give either profile (a file) or use (inline), not both")
        return self


class Ranking(Strict):
    """Weights of the score that orders the models that meet every constraint."""

    quality: float = Field(default=0.7, ge=0)
    speed: float = Field(default=0.2, ge=0)
    cost: float = Field(default=0.1, ge=0)
    published_benchmark: str = Field(default="open-llm-v1/average", min_length=1)
    """The catalog score that stands in for quality where nothing was measured: the Open LLM
    Leaderboard v1 average (2023 models), or a score vendors publish, e.g.
    `published/mmlu-pro` (2025-26 models; each vendor's own setup)."""

    @model_validator(mode="after")
    def _some_weight(self) -> Ranking:
        if self.quality + self.speed + self.cost <= 0:
            raise ValueError("at least one weight must be above zero")
        return self


class BenchRef(Strict):
    """A bench of one candidate's server on the study's hardware (`llmselect bench --out DIR`):
    its latency under load replaces the estimate in the targets and the ranking."""

    id: str
    """The catalog id of the model the server served."""
    summary: Path
    """The bench's summary.json, or the folder that holds it (relative to the study)."""


class SelectStudy(Strict):
    name: str = "selection"
    description: str | None = None
    dataset: DatasetSpec | None = None
    """The evaluation set; without it, quality comes from published benchmarks only."""
    task: TaskSpec = Field(default_factory=TaskSpec)
    metrics: list[MetricSpec] = Field(default_factory=list)
    finetune_dataset: DatasetSpec | None = None
    """Optional training examples (`llmselect finetune`)."""
    hardware: str = "detect"
    """A device from `llmselect hardware --list` with an optional count (`2x RTX-4090`),
    or `detect` for this machine."""
    targets: Targets = Field(default_factory=Targets)
    license: LicensePolicy = Field(default_factory=LicensePolicy)
    candidates: Pool
    ranking: Ranking = Field(default_factory=Ranking)
    seed: int = 0
    store: str | None = None
    """The evaluation's result store, as in an evaluation study (`--store` overrides it)."""
    executor: ExecutorSpec | None = None
    """Where the measured models run, as in an evaluation study (`--ray` overrides it)."""
    bench: list[BenchRef] = Field(default_factory=list)
    """Benches of candidates' servers on this hardware: measured latency under load."""

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_shorthand(cls, value: Any) -> Any:
        return metric_shorthand(value)

    @field_validator("store")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        return study_store(value)

    @field_validator("hardware")
    @classmethod
    def _known_hardware(cls, value: str) -> str:
        if value.strip().lower() != "detect":
            from llmselect.errors import LLMSelectError
            from llmselect.sizing.hardware import parse_gpu

            try:
                parse_gpu(value)
            except LLMSelectError as exc:  # an unknown device: say which and what was meant
                raise ValueError(exc.message + (f"; {exc.hint}" if exc.hint else "")) from exc
        return value

    @model_validator(mode="after")
    def _measured_needs_data(self) -> SelectStudy:
        if self.candidates.run and self.dataset is None:
            raise ValueError("candidates.run needs a dataset to measure the models on")
        return self

    def eval_study(self) -> EvalStudy | None:
        """The measured part, as an evaluation study (None when nothing is run)."""
        if self.dataset is None or not self.candidates.run:
            return None
        return EvalStudy(
            name=self.name,
            dataset=self.dataset,
            task=self.task,
            metrics=self.metrics,
            candidates=list(self.candidates.run),
            seed=self.seed,
            store=self.store,
            executor=self.executor,
        )


def load_select_study(path: Path) -> tuple[SelectStudy, UseProfile]:
    """Read a study and its use profile; errors name the file, the line and the key."""
    raw = load_yaml(path)
    study = validate(SelectStudy, raw, file=path)
    policy = study.license
    if policy.profile:
        profile = load_profile(path.resolve().parent / policy.profile)
    else:
        profile = policy.use or UseProfile()
    return study, profile


def raw_line(path: Path, *keys: str | int) -> int | None:
    """The line of a key in the study file, for errors found after validation."""
    from llmselect.yamlfile import line_of

    return line_of(load_yaml(path), list(keys))[1]
