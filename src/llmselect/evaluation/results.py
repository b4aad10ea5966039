"""What an evaluation produced, as one typed object: the runner builds it, selection, the
fine-tuning curve and the presentation read it, and `results.json` and `samples.jsonl` are its
serialisation (`write`, `read`). Field names and order are the files' JSON contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmselect.atomicfile import write_text_atomic
from llmselect.errors import LLMSelectError
from llmselect.evaluation.statistics import Comparison

RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.jsonl"


class MetricSummary(BaseModel):
    """A metric's mean over the items (or the corpus, for perplexity) and its 95% interval."""

    mean: float
    low: float
    high: float
    n: int
    higher_is_better: bool


class Latency(BaseModel):
    """How long items waited for their outputs, and how fast the run went (see the runner)."""

    p50_s: float
    p90_s: float
    p95_s: float
    p99_s: float
    mean_s: float
    tokens_per_s: float | None
    items_per_s: float | None
    batch_p50: float
    ttft_p50_s: float | None
    ttft_p90_s: float | None
    ttft_p95_s: float | None
    ttft_p99_s: float | None
    s_per_output_token_p50: float | None
    prompt_tokens_p50: float | None
    output_tokens_p50: float | None
    output_tokens: int
    n: int
    peak_memory_bytes: int | None


class ItemError(BaseModel):
    item_id: str
    error: str


class ModelResult(BaseModel):
    metrics: dict[str, MetricSummary]
    latency: Latency | None
    backend: str
    device: str | None
    dtype: str | None
    engine: str | None
    """The sizing engine profile the run measured (`cpu`, `transformers-eager`...)."""
    skipped: list[str]
    """Items `on_long_prompt: skip` left out."""
    failed: int
    """Items that got no output in the last run."""
    errors: list[ItemError]
    """The first failed items' errors."""


class DatasetInfo(BaseModel):
    path: str
    sha256: str
    items: int
    warnings: list[str]
    split: str | None


class SampleLine(BaseModel):
    """One model's output on one item, as `samples.jsonl` holds it."""

    model_config = ConfigDict(extra="forbid")

    model: str
    item_id: str
    prompt: str
    output: str | None
    reference: Any
    scores: dict[str, float]
    loglikelihoods: list[float] | None
    # Perplexity only: the text's log-likelihood and its length in words and bytes.
    loglikelihood: float | None = None
    words: float | None = None
    bytes: float | None = None


class EvalResults(BaseModel):
    study: str
    dataset: DatasetInfo
    task: dict[str, Any]
    models: dict[str, ModelResult]
    comparisons: list[Comparison]
    samples: list[SampleLine] = Field(default=[], exclude=True)
    """Written to `samples.jsonl`, not to `results.json`."""

    def model_samples(self, model: str) -> list[SampleLine]:
        return [s for s in self.samples if s.model == model]

    def to_json(self) -> dict[str, Any]:
        """`results.json`'s content."""
        return self.model_dump(mode="json")

    def write(self, folder: Path) -> None:
        """Both files, each replaced whole (a reader never sees half of one)."""
        folder.mkdir(parents=True, exist_ok=True)
        lines = [
            json.dumps(s.model_dump(mode="json", exclude_unset=True), ensure_ascii=False) + "\n"
            for s in self.samples
        ]
        write_text_atomic(folder / SAMPLES_FILE, "".join(lines))
        text = json.dumps(self.to_json(), indent=2, ensure_ascii=False)
        write_text_atomic(folder / RESULTS_FILE, text)

    @classmethod
    def read(cls, folder: Path) -> EvalResults:
        """The results an evaluation wrote into `folder`; an error names the file and line."""
        path = folder / RESULTS_FILE
        try:
            results = cls.model_validate_json(path.read_bytes())
        except OSError as exc:
            raise LLMSelectError(f"cannot read the evaluation results: {exc}", file=path) from None
        except ValidationError as exc:
            raise _invalid(exc, path, None) from None
        samples = folder / SAMPLES_FILE
        try:
            text = samples.read_text(encoding="utf-8")
        except OSError as exc:
            raise LLMSelectError(
                f"cannot read the evaluation samples: {exc}", file=samples
            ) from None
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    results.samples.append(SampleLine.model_validate_json(line))
                except ValidationError as exc:
                    raise _invalid(exc, samples, number) from None
        return results


def _invalid(exc: ValidationError, path: Path, line: int | None) -> LLMSelectError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or None
    return LLMSelectError(
        f"not an llmselect evaluation result: {first['msg']}",
        file=path,
        line=line,
        field=where,
        hint="run `llmselect eval` again to write it anew",
    )
