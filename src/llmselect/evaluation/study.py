"""The evaluation study file: dataset, task, metrics and the candidates to run.

```yaml
name: support-triage
dataset: {path: data/eval.jsonl, fields: {input: question, reference: answer}, limit: 200}
task: {kind: generate, template: "Q: {{ input }}\\nA:", max_tokens: 32, stop: ["\\n"]}
metrics: [exact_match, {name: regex, pattern: "^yes"}]
candidates:
  - {name: small, transformers: models/small}
seed: 0
```
Paths are relative to the study file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from llmselect.evaluation.datasets import MAX_LINE_BYTES, FieldMap
from llmselect.evaluation.executors import ExecutorSpec
from llmselect.evaluation.store import study_store
from llmselect.yamlfile import load_yaml, validate


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetSpec(Strict):
    path: str
    fields: FieldMap = Field(default_factory=FieldMap)
    limit: int | None = Field(default=None, ge=1)
    split: str | None = None
    """For a dataset folder: the split to read (default: test, then validation, then train)."""
    max_line_bytes: int = Field(default=MAX_LINE_BYTES, ge=1)
    """A longer line (JSONL, CSV) or item input is an error before any model runs."""


class TaskSpec(Strict):
    kind: Literal["generate", "multiple_choice", "perplexity"] = "generate"
    """`perplexity` scores each text's log-likelihood: word and byte perplexity, bits per byte."""
    template: str | None = None
    few_shot: int = Field(default=0, ge=0, le=64)
    """Examples taken from the start of the dataset and left out of the scored items."""
    max_tokens: int = Field(default=64, ge=1, le=32768)
    stop: list[str] = Field(default_factory=list)
    temperature: float = Field(default=0.0, ge=0, le=5)
    chat: bool = False
    """Send each prompt as a user message through the model's own chat template."""
    choice_prefix: str = " "
    """Put between the prompt and each choice when scoring log-likelihoods (lm-eval's default)."""
    max_length: int | None = Field(default=None, ge=2, le=1_048_576)
    """Perplexity: tokens per rolling window (default: the model's own maximum length)."""
    on_long_prompt: Literal["error", "truncate_left", "truncate_right", "skip"] = "error"
    """A prompt that does not fit the model's context with `max_tokens` (or its longest choice):
    stop before running and name it, keep its end or its start, or leave the item out."""

    @model_validator(mode="after")
    def _perplexity_scores_text_as_is(self) -> TaskSpec:
        # A perplexity is of a text alone: examples or a chat turn around it would change it.
        if self.kind == "perplexity" and (self.few_shot or self.chat):
            raise ValueError("a perplexity task takes neither few_shot nor chat")
        if self.max_length is not None and self.kind != "perplexity":
            raise ValueError("max_length applies to the perplexity task only")
        return self


SCORED_BY_TASK = ("acc", "acc_norm", "word_perplexity", "byte_perplexity", "bits_per_byte")
"""Metrics the multiple-choice and perplexity tasks compute themselves (named to weigh them)."""


class MetricSpec(Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    weight: float = Field(default=1.0, ge=0)
    """How much this metric counts in a selection's quality score (`llmselect select`)."""
    python: str | None = Field(default=None, pattern=r"^[^:]+\.py:[A-Za-z_]\w*$")
    """`path/to/file.py:function`, relative to the study: the user's own metric, called as
    `function(output, reference, **options)` for a number in [0, 1]. It runs as Python with
    the user's rights, so only a study that names it here runs it."""

    @model_validator(mode="after")
    def _known(self) -> MetricSpec:
        from difflib import get_close_matches

        from llmselect.evaluation.metrics import METRICS

        if self.python is None and self.name not in (*METRICS, *SCORED_BY_TASK):
            close = get_close_matches(self.name, [*METRICS, *SCORED_BY_TASK], n=1)
            raise ValueError(
                f"unknown metric {self.name!r}"
                + (f"; did you mean {close[0]!r}?" if close else "")
                + " (your own: `python: file.py:function`)"
            )
        return self


class Candidate(Strict):
    name: str = Field(pattern=r"^[\w.\-/]+$")
    transformers: str | None = None
    gguf: str | None = None
    openai: str | None = None
    serve: str | None = None
    """A serving engine to start for the run and evaluate through its OpenAI-compatible API: a
    command with `{model}`, `{file}` and `{port}`, e.g. `llama-server -m {file} --port {port}`
    (run without a shell; stopped when the candidate is done; its log kept)."""
    file: str | None = None
    """The model file `{file}` stands for in `serve` (relative to the study)."""
    startup_timeout_s: float = Field(default=600.0, gt=0)
    """How long `serve`'s engine may take to answer before the run gives up on it."""
    gpus: int | None = Field(default=None, ge=1, le=64)
    """GPUs `serve`'s engine is given on a Ray cluster with GPUs (default 1); Ray sets
    CUDA_VISIBLE_DEVICES for it."""
    model: str | None = None
    """The model name an OpenAI-compatible server knows (with `serve`: `{model}`, and by default
    the first model the engine lists)."""
    batch_size: int = Field(default=8, ge=1, le=1024)
    concurrency: int = Field(default=4, ge=1, le=256)
    """Requests in flight at once (HTTP backends)."""
    timeout_s: float = Field(default=120.0, gt=0)
    retries: int = Field(default=4, ge=0, le=20)
    retry_backoff_s: float = Field(default=0.5, ge=0, le=60)
    """First wait before a retry; it doubles each time."""
    allow_insecure_http: bool = False
    """Send OPENAI_API_KEY (or the URL's password) over plain http:// to a host that is neither
    this machine nor on a private network: only on a network you trust."""
    allow_pickle: bool = False
    trust_remote_code: bool = False
    compile: bool | Literal["auto"] = "auto"
    """transformers: decode with a static KV cache and a `torch.compile`d step. `auto`: on CUDA,
    for models transformers can compile whole; `true`: on any device, the CPU included (the
    first batch of each shape waits for the compiler); `false`: the dynamic cache, no compiling."""

    @field_validator("compile", mode="before")
    @classmethod
    def _compile_choice(cls, value: Any, info: ValidationInfo) -> Any:
        # Checked before pydantic's own union check, whose two messages would not say what fits.
        if not (value is True or value is False or value == "auto"):
            raise ValueError(f"compile must be auto, true or false, not {value!r}")
        if not info.data.get("transformers"):
            raise ValueError(
                "compile applies to transformers candidates only (llama.cpp and servers decode "
                "their own way): remove it"
            )
        return value

    @field_validator("allow_insecure_http")
    @classmethod
    def _insecure_http_is_for_servers(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not info.data.get("openai"):
            raise ValueError("allow_insecure_http applies to openai candidates only: remove it")
        return value

    @model_validator(mode="after")
    def _one_backend(self) -> Candidate:
        given = [b for b in ("transformers", "gguf", "openai", "serve") if getattr(self, b)]
        if len(given) != 1:
            raise ValueError("name exactly one of transformers, gguf, openai or serve")
        for option in ("file", "gpus"):
            if getattr(self, option) is not None and not self.serve:
                raise ValueError(f"{option} applies to serve candidates only: remove it")
        return self


def metric_shorthand(value: Any) -> Any:
    """`exact_match` or `{name: regex, pattern: ...}`: options sit beside the name."""
    if not isinstance(value, list):
        return value
    specs: list[Any] = []
    for entry in value:
        if isinstance(entry, str):
            specs.append({"name": entry})
        elif isinstance(entry, dict) and "options" not in entry:
            fixed = {k: entry[k] for k in ("name", "weight", "python") if k in entry}
            options = {k: v for k, v in entry.items() if k not in fixed}
            specs.append({**fixed, "options": options})
        else:
            specs.append(entry)
    return specs


class EvalStudy(Strict):
    name: str = "evaluation"
    dataset: DatasetSpec
    task: TaskSpec = Field(default_factory=TaskSpec)
    metrics: list[MetricSpec] = Field(default_factory=list)
    candidates: list[Candidate] = Field(min_length=1)
    seed: int = 0
    store: str | None = None
    """Where outputs are stored: a SQLite file (relative to the study) or a shared
    `postgresql://` URL (see docs/scale.md); `--store` overrides it."""
    executor: ExecutorSpec | None = None
    """Where the models run: here (default), or `{ray: ADDRESS}` on a Ray cluster (see
    docs/scale.md); `--ray` overrides it."""

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_shorthand(cls, value: Any) -> Any:
        return metric_shorthand(value)

    @field_validator("store")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        return study_store(value)

    @model_validator(mode="after")
    def _unique_names(self) -> EvalStudy:
        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            raise ValueError("candidate names must be unique")
        return self


def load_study(path: Path) -> EvalStudy:
    return validate(EvalStudy, load_yaml(path), file=path)
