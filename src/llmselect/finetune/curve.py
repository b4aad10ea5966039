"""What fine-tuning bought: before and after on the same items, and the learning curve.

Every model runs through the evaluation stage (`llmselect eval`'s runner, store and statistics)
on the study's own evaluation items, so the base, the fine-tune and any larger model used as is
are compared item by item (paired tests, bootstrap intervals).

The learning curve trains on growing shares of the data and asks whether more data is likely to
help. Two numbers answer it: the paired difference over the last doubling (the same items scored
by both models, so item difficulty cancels) and the slope of score against log2(examples), with
an interval from resampling the evaluation items. A curve that is still rising says so; a flat
one says more of the same data will not buy much.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from llmselect.errors import LLMSelectError
from llmselect.evaluation.results import EvalResults, SampleLine
from llmselect.evaluation.statistics import Comparison, Interval, bootstrap_ci, compare
from llmselect.evaluation.study import Candidate
from llmselect.finetune.study import FinetuneStudy
from llmselect.units import signed

SCALE = 100.0
"""Metrics are in [0, 1]; differences are told in points."""
_RESAMPLES = 10_000
_BATCH_ELEMENTS = 2_000_000
DEFAULT_FRACTIONS = (0.125, 0.25, 0.5, 1.0)
"""Shares of the training examples the learning curve trains on (the full set is its last point)."""


class ModelScore(BaseModel):
    model: str
    scores: dict[str, Interval]
    """Each metric's mean over the items and its 95% bootstrap interval."""


class BeforeAfter(BaseModel):
    metric: str
    """The study's main metric (the highest weight), which `sentence` is about."""
    items: int
    before: ModelScore
    after: ModelScore
    others: list[ModelScore]
    """Models used as they are (`--against`), for "does it beat a larger model?"."""
    comparisons: list[Comparison]
    """The fine-tune against its base on every metric, then against each other model."""
    sentence: str
    warning: str | None


class CurvePoint(BaseModel):
    model: str
    examples: int
    score: Interval


class LearningCurve(BaseModel):
    metric: str
    items: int
    base: Interval
    """The model before fine-tuning (zero examples; not part of the fit)."""
    points: list[CurvePoint]
    slope_per_doubling: float
    """Change of the metric per doubling of the examples (least squares on log2 examples)."""
    slope_low: float
    slope_high: float
    last_doubling: Comparison
    """The largest training set against the one before it, on the same items."""
    outlook: Literal["likely", "unlikely", "unclear"]
    """Is more data of the same kind likely to help?"""
    verdict: str


def primary_metric(study: FinetuneStudy) -> str:
    if study.task.kind == "multiple_choice":
        return "acc"
    if not study.metrics:
        raise LLMSelectError(
            "the study names no metrics to compare the models on",
            field="metrics",
            hint="add e.g. `metrics: [exact_match]`",
        )
    return max(study.metrics, key=lambda m: m.weight).name  # the first one on ties


def evaluate_models(
    study: FinetuneStudy,
    study_dir: Path,
    candidates: list[Candidate],
    out_dir: Path,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> EvalResults:
    """Run every candidate on the study's evaluation items; `results.json` as `llmselect eval`."""
    from llmselect.evaluation.runner import run_models, write_results
    from llmselect.evaluation.store import Store
    from llmselect.evaluation.study import EvalStudy

    if study.dataset is None:
        raise LLMSelectError("the study has no evaluation `dataset`", field="dataset")
    evaluation = EvalStudy(
        name=f"{study.name}-finetune",
        dataset=study.dataset,
        task=study.task,
        metrics=study.metrics,
        candidates=candidates,
        seed=study.seed,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    store = Store(out_dir / "store.sqlite")
    try:
        dataset = run_models(evaluation, study_dir, store, progress)
        return write_results(evaluation, study_dir, dataset, store, out_dir)
    finally:
        store.close()


def _model_score(results: EvalResults, name: str) -> ModelScore:
    metrics = results.models[name].metrics
    return ModelScore(
        model=name,
        scores={
            k: Interval(mean=v.mean, low=v.low, high=v.high, n=v.n) for k, v in metrics.items()
        },
    )


def before_after(
    results: EvalResults, study: FinetuneStudy, base: str, tuned: str, others: list[str]
) -> BeforeAfter:
    """The base and the fine-tune (and other models) from one evaluation's results."""
    metric = primary_metric(study)
    wanted = [(base, tuned)] + [(tuned, other) for other in others]
    comparisons = [c for pair in wanted for c in results.comparisons if (c.a, c.b) == pair]
    main = next((c for c in comparisons if c.metric == metric), None)
    if main is None:
        raise LLMSelectError(
            f"no {metric} scores to compare: did every item get an output?",
            file=results.dataset.path,
        )
    return BeforeAfter(
        metric=metric,
        items=results.dataset.items,
        before=_model_score(results, base),
        after=_model_score(results, tuned),
        others=[_model_score(results, o) for o in others],
        comparisons=comparisons,
        sentence=main.sentence,
        warning=main.warning,
    )


def item_scores(samples: list[SampleLine], metric: str) -> dict[str, dict[str, float]]:
    """Per model, each item's score on `metric`, from the evaluation's samples."""
    table: dict[str, dict[str, float]] = {}
    for row in samples:
        if metric in row.scores:
            table.setdefault(row.model, {})[row.item_id] = float(row.scores[metric])
    return table


def learning_curve(
    samples: list[SampleLine],
    study: FinetuneStudy,
    base: str,
    points: list[tuple[str, int]],
    *,
    seed: int = 0,
) -> LearningCurve:
    """Score against training examples; `points` are (model, examples), smallest first."""
    metric = primary_metric(study)
    table = item_scores(samples, metric)
    models = [base, *(name for name, _ in points)]
    # The evaluation's item order (dicts keep it), so intervals match its results.json.
    items = [i for i in table.get(base, {}) if all(i in table.get(m, {}) for m in models)]
    if not items:
        raise LLMSelectError(f"no item has {metric} scores for every point of the curve")
    matrix = np.array([[table[m][i] for i in items] for m, _ in points], dtype=np.float64)
    examples = np.array([n for _, n in points], dtype=np.float64)
    slope, low, high = _slope(matrix, np.log2(examples), seed)
    (prev_name, prev_n), (last_name, last_n) = points[-2], points[-1]
    binary = bool(np.all((matrix == 0.0) | (matrix == 1.0)))
    last = compare(
        prev_name, matrix[-2], last_name, matrix[-1], metric=metric, binary=binary, seed=seed
    )
    outlook, verdict = _verdict(metric, last, prev_n, last_n, slope, low, high, len(items))
    return LearningCurve(
        metric=metric,
        items=len(items),
        base=bootstrap_ci([table[base][i] for i in items], seed=seed),
        points=[
            CurvePoint(model=m, examples=n, score=bootstrap_ci(row, seed=seed))
            for (m, n), row in zip(points, matrix, strict=True)
        ],
        slope_per_doubling=slope,
        slope_low=low,
        slope_high=high,
        last_doubling=last,
        outlook=outlook,
        verdict=verdict,
    )


def _slope(
    matrix: np.ndarray[Any, Any], x: np.ndarray[Any, Any], seed: int
) -> tuple[float, float, float]:
    """Least-squares slope of the mean score on x, and its 95% interval over resampled items."""
    centered = x - x.mean()
    denominator = float(np.sum(centered**2))
    slope = float(centered @ matrix.mean(axis=1)) / denominator
    n = matrix.shape[1]
    rng = np.random.default_rng(seed)
    slopes: list[np.ndarray[Any, Any]] = []
    chunk = max(1, _BATCH_ELEMENTS // (n * matrix.shape[0]))
    for start in range(0, _RESAMPLES, chunk):
        picks = rng.integers(0, n, size=(min(chunk, _RESAMPLES - start), n))
        means = matrix[:, picks].mean(axis=2)  # points x resamples
        slopes.append(centered @ means / denominator)
    # Rounded so that a flat curve's 1e-17 of float noise does not read as "still rising".
    resampled = np.round(np.concatenate(slopes), 12)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return round(slope, 12) + 0.0, float(low) + 0.0, float(high) + 0.0


def _points(value: float) -> str:
    return signed(value * SCALE, plus=True)


def _verdict(
    metric: str,
    last: Comparison,
    prev_n: int,
    last_n: int,
    slope: float,
    low: float,
    high: float,
    items: int,
) -> tuple[Literal["likely", "unlikely", "unclear"], str]:
    step = f"going from {prev_n} to {last_n} examples"
    p = "p < 0.001" if last.p_value < 0.001 else f"p = {last.p_value:.2g}"
    change = f"{_points(last.diff)} points, 95% CI {_points(last.low)} to {_points(last.high)}, {p}"
    trend = f"{_points(slope)} points per doubling, 95% CI {_points(low)} to {_points(high)}"
    if last.significant and last.diff > 0:
        return "likely", (
            f"More data is likely to help: {step} changed {metric} by {change}; over all "
            f"sizes the trend is {trend}."
        )
    if last.significant:
        return "unlikely", (
            f"More of the same data is unlikely to help: {step} changed {metric} by {change}; "
            "check the data and the training settings."
        )
    if low > 0:
        return "unclear", (
            f"More data may still help: over all sizes {metric} rises ({trend}), but {step} "
            f"({change}) is not significant with {items} evaluation items; more evaluation "
            "items would tell."
        )
    return "unlikely", (
        f"The curve has flattened: {step} changed {metric} by {change}, and the trend over all "
        f"sizes ({trend}) is not distinguishable from zero; more data of the same kind is "
        "unlikely to help much."
    )


def curve_counts(examples: int, fractions: tuple[float, ...]) -> list[int]:
    """Distinct example counts for the curve's points, the full set last."""
    counts = sorted({max(1, math.ceil(f * examples)) for f in fractions if 0 < f <= 1})
    if not counts or counts[-1] != examples:
        counts.append(examples)
    if len(counts) < 2:
        raise LLMSelectError(
            f"a learning curve needs at least two sizes; {examples} example(s) give one",
            field="finetune_dataset",
            hint="add training examples",
        )
    return counts
