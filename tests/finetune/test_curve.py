"""The learning curve's statistics and the before/after summary, on scores written by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmselect.errors import LLMSelectError
from llmselect.evaluation.results import EvalResults, SampleLine
from llmselect.evaluation.statistics import compare
from llmselect.finetune.curve import before_after, curve_counts, learning_curve, primary_metric
from llmselect.study import SelectStudy

STUDY = SelectStudy.model_validate(
    {
        "dataset": {"path": "eval.jsonl"},
        "metrics": ["token_f1", {"name": "exact_match", "weight": 2}],
        "candidates": {"ids": ["x/y"]},
    }
)
SIZES = [25, 50, 100, 200]


def _samples(scores: dict[str, list[float]]) -> list[SampleLine]:
    """The samples as the evaluation gives them: one per model and item."""
    return [
        SampleLine(
            model=model,
            item_id=f"i{n:03d}",
            prompt="",
            output="",
            reference="",
            scores={"exact_match": value},
            loglikelihoods=None,
        )
        for model, values in scores.items()
        for n, value in enumerate(values)
    ]


def _pass_fail(rate: float, n: int, seed: int) -> list[float]:
    return [float(v) for v in np.random.default_rng(seed).random(n) < rate]


def _points() -> list[tuple[str, int]]:
    return [(f"tuned-{n}", n) for n in SIZES]


def test_the_main_metric_is_the_heaviest() -> None:
    assert primary_metric(STUDY) == "exact_match"
    mc = STUDY.model_copy(
        update={"task": STUDY.task.model_copy(update={"kind": "multiple_choice"})}
    )
    assert primary_metric(mc) == "acc"
    with pytest.raises(LLMSelectError, match="no metrics"):
        primary_metric(STUDY.model_copy(update={"metrics": []}))


def test_a_curve_still_rising_says_more_data_helps(tmp_path: Path) -> None:
    # Each doubling adds 20 points on 400 items: the last one is clearly real.
    scores = {"base": _pass_fail(0.05, 400, 0)}
    for (name, _), rate in zip(_points(), [0.2, 0.4, 0.6, 0.8], strict=True):
        scores[name] = _pass_fail(rate, 400, len(scores))
    curve = learning_curve(_samples(scores), STUDY, "base", _points())
    assert curve.outlook == "likely"
    assert curve.verdict.startswith("More data is likely to help: going from 100 to 200 examples")
    assert 0.15 < curve.slope_low < curve.slope_per_doubling < curve.slope_high < 0.25
    assert [p.examples for p in curve.points] == SIZES
    assert curve.base.mean == pytest.approx(np.mean(scores["base"]))
    assert curve.items == 400 and curve.last_doubling.significant


def test_a_flat_curve_says_more_of_the_same_will_not_help(tmp_path: Path) -> None:
    same = _pass_fail(0.6, 60, 1)
    scores = {"base": _pass_fail(0.1, 60, 0), **{name: same for name, _ in _points()}}
    curve = learning_curve(_samples(scores), STUDY, "base", _points())
    assert curve.outlook == "unlikely"
    assert curve.verdict.startswith("The curve has flattened: going from 100 to 200 examples")
    assert curve.slope_per_doubling == 0.0 and not curve.last_doubling.significant


def test_the_slope_is_per_doubling_of_the_examples(tmp_path: Path) -> None:
    # Partial-credit scores whose means rise exactly 0.1 per doubling.
    scores = {"base": [0.0] * 10}
    for (name, _), mean in zip(_points(), [0.3, 0.4, 0.5, 0.6], strict=True):
        scores[name] = [mean + (0.05 if i % 2 else -0.05) for i in range(10)]
    curve = learning_curve(_samples(scores), STUDY, "base", _points())
    assert curve.slope_per_doubling == pytest.approx(0.1)
    assert curve.slope_low == pytest.approx(0.1) and curve.slope_high == pytest.approx(0.1)


def test_items_missing_for_some_model_are_left_out(tmp_path: Path) -> None:
    scores = {"base": [0.0, 1.0, 1.0], "tuned-25": [0.0, 1.0], "tuned-50": [1.0, 1.0, 0.0]}
    points = [("tuned-25", 25), ("tuned-50", 50)]
    curve = learning_curve(_samples(scores), STUDY, "base", points)
    assert curve.items == 2
    with pytest.raises(LLMSelectError, match="no item"):
        learning_curve(_samples(scores), STUDY, "base", [("nobody", 1), ("tuned-25", 2)])


def test_curve_sizes_are_distinct_and_end_with_every_example() -> None:
    fractions = (0.125, 0.25, 0.5, 1.0)
    assert curve_counts(16, fractions) == [2, 4, 8, 16]
    assert curve_counts(3, fractions) == [1, 2, 3]
    assert curve_counts(10, (0.5,)) == [5, 10]
    with pytest.raises(LLMSelectError, match="two sizes"):
        curve_counts(1, fractions)


def test_before_after_picks_the_fine_tune_against_its_base_and_the_others() -> None:
    base, tuned, big = [0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0]
    comparisons = [
        compare("base", base, "tuned", tuned, metric="exact_match", binary=True),
        compare("base", base, "big", big, metric="exact_match", binary=True),
        compare("tuned", tuned, "big", big, metric="exact_match", binary=True),
    ]
    interval = {"mean": 0.5, "low": 0.0, "high": 1.0, "n": 4}
    model = {
        "metrics": {"exact_match": {**interval, "higher_is_better": True}},
        **{"latency": None, "backend": "b", "device": None, "dtype": None, "engine": None},
        **{"skipped": [], "failed": 0, "errors": []},
    }
    results = EvalResults.model_validate(
        {
            "study": "s",
            "dataset": {
                "items": 4,
                "path": "eval.jsonl",
                "sha256": "",
                "warnings": [],
                "split": None,
            },
            "task": {},
            "models": {m: model for m in ("base", "tuned", "big")},
            "comparisons": [c.model_dump() for c in comparisons],
        }
    )
    summary = before_after(results, STUDY, "base", "tuned", ["big"])
    assert [(c.a, c.b) for c in summary.comparisons] == [("base", "tuned"), ("tuned", "big")]
    assert summary.sentence == comparisons[0].sentence and summary.items == 4
    assert [o.model for o in summary.others] == ["big"]
    with pytest.raises(LLMSelectError, match="no exact_match scores"):
        before_after(results.model_copy(update={"comparisons": []}), STUDY, "base", "tuned", [])
