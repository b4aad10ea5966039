"""Statistics of evaluation results: is one model really better than another on this dataset?

Every model is scored on the same items, so comparisons are paired: per-item differences carry
the signal and item difficulty cancels out. Intervals come from the percentile bootstrap, which
needs no assumption about the score distribution; pass/fail scores use McNemar's test, which
looks only at the items the two models disagree on. The minimum detectable difference tells
the user when a dataset is too small to separate two models, so "no significant difference" is
not read as "equally good".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict
from scipy import stats

from llmselect.evaluation import sentences

Scores = Sequence[float] | npt.NDArray[Any]
"""Scores per item, in the same item order for every model (bools count as 0/1)."""

FloatArray = npt.NDArray[np.float64]

_EXACT_PERMUTATION_MAX_N = 16
"""Up to 2**16 sign patterns are enumerated exactly; beyond that they are sampled."""
_EXACT_MCNEMAR_MAX_DISCORDANT = 25
"""Below this many discordant items the chi-square approximation is poor; use the binomial."""
_BATCH_ELEMENTS = 2_000_000
"""Resampled values held in memory at once, so large datasets do not exhaust RAM."""


class Interval(BaseModel):
    """A mean and its bootstrap confidence interval."""

    model_config = ConfigDict(frozen=True)

    mean: float
    low: float
    high: float
    n: int


class PairedDifference(BaseModel):
    """Mean of `b - a` over the items, its bootstrap interval and two-sided p-value."""

    model_config = ConfigDict(frozen=True)

    diff: float
    low: float
    high: float
    p_value: float
    n: int


class McNemar(BaseModel):
    """McNemar's test on pass/fail items: only the items where the models disagree count."""

    model_config = ConfigDict(frozen=True)

    only_a: int
    """Items that `a` passes and `b` fails."""
    only_b: int
    """Items that `b` passes and `a` fails."""
    p_value: float
    method: Literal["exact", "chi-square"]
    """`exact`: two-sided binomial test; `chi-square`: with continuity correction."""


class Comparison(BaseModel):
    """Everything needed to report `b` against `a` on one metric, in numbers and in words."""

    model_config = ConfigDict(frozen=True)

    a: str
    b: str
    metric: str
    diff: float
    """Mean of `b - a` in the metric's own units (not multiplied by `scale`)."""
    low: float
    high: float
    p_value: float
    test: Literal["McNemar", "paired bootstrap"]
    mdd: float
    """Minimum detectable difference, in the metric's own units (inf with a single item)."""
    n: int
    significant: bool
    sentence: str
    warning: str | None
    higher_is_better: bool = True
    """False for metrics where lower wins (perplexity): the sentence names the winner so."""


def _scores(values: Scores, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of scores, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} has no scores: at least one item is needed")
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"{name} has a NaN or infinite score at item {bad}: {array[bad]}")
    return array


def _paired(a: Scores, b: Scores, name_a: str = "a", name_b: str = "b") -> tuple[FloatArray, ...]:
    x, y = _scores(a, name_a), _scores(b, name_b)
    if x.size != y.size:
        raise ValueError(
            f"{name_a} has {x.size} scores but {name_b} has {y.size}: "
            "both must be scored on the same items"
        )
    return x, y


def _check_unit(value: float, name: str) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {value}")


def _check_resamples(resamples: int) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")


def _is_binary(*arrays: FloatArray) -> bool:
    return all(bool(np.all((x == 0.0) | (x == 1.0))) for x in arrays)


def _bootstrap(
    values: FloatArray, confidence: float, resamples: int, seed: int
) -> tuple[float, float, FloatArray]:
    """Percentile bootstrap of the mean: (low, high, the resampled means)."""
    result = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=resamples,
        batch=max(1, _BATCH_ELEMENTS // values.size),
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return float(low), float(high), np.asarray(result.bootstrap_distribution, dtype=np.float64)


def bootstrap_ci(
    values: Scores, *, confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> Interval:
    """Mean score with a percentile-bootstrap interval (a single item gives a zero-width one)."""
    _check_unit(confidence, "confidence")
    _check_resamples(resamples)
    x = _scores(values, "values")
    mean = float(np.mean(x))
    if x.size == 1:
        return Interval(mean=mean, low=mean, high=mean, n=1)
    low, high, _ = _bootstrap(x, confidence, resamples, seed)
    return Interval(mean=mean, low=low, high=high, n=int(x.size))


def _paired_bootstrap(
    x: FloatArray, y: FloatArray, confidence: float, resamples: int, seed: int
) -> PairedDifference:
    d = y - x
    diff, n = float(np.mean(d)), int(d.size)
    # One item is no evidence either way; the degenerate bootstrap would claim p = 1/resamples.
    if n == 1 or diff == 0.0:
        low, high = (diff, diff) if n == 1 else _bootstrap(d, confidence, resamples, seed)[:2]
        return PairedDifference(diff=diff, low=low, high=high, p_value=1.0, n=n)
    low, high, boot = _bootstrap(d, confidence, resamples, seed)
    # Resampled means that should be exactly 0 can come out as 1e-17; count them as ties.
    tolerance = 1e-12 * max(1.0, float(np.max(np.abs(d))))
    other_side = float(np.mean(boot * math.copysign(1.0, diff) <= tolerance))
    p_value = min(1.0, max(2.0 * other_side, 1.0 / boot.size))
    return PairedDifference(diff=diff, low=low, high=high, p_value=p_value, n=n)


def paired_bootstrap(
    a: Scores,
    b: Scores,
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> PairedDifference:
    """How much `b` beats `a` per item on average, resampling items with both scores together.

    The two-sided p-value is twice the share of resampled differences on the other side of 0
    (ties count against the observed sign), never below 1/resamples.
    """
    _check_unit(confidence, "confidence")
    _check_resamples(resamples)
    x, y = _paired(a, b)
    return _paired_bootstrap(x, y, confidence, resamples, seed)


def permutation_test(a: Scores, b: Scores, *, resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value that `b` and `a` have the same mean, by flipping per-item signs.

    Under the null each item's difference is as likely to be negative as positive. All 2**n
    sign patterns are enumerated when n <= 16; otherwise `resamples` random patterns are drawn.
    """
    _check_resamples(resamples)
    x, y = _paired(a, b)
    d = y - x
    if not np.any(d):
        return 1.0
    exact = d.size <= _EXACT_PERMUTATION_MAX_N
    result = stats.permutation_test(
        (d,),
        np.mean,
        permutation_type="samples",
        vectorized=True,
        n_resamples=2**d.size if exact else resamples,
        batch=max(1, _BATCH_ELEMENTS // d.size),
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)


def _pass_fail(values: Scores, name: str) -> npt.NDArray[np.bool_]:
    x = _scores(values, name)
    if not _is_binary(x):
        bad = int(np.flatnonzero((x != 0.0) & (x != 1.0))[0])
        raise ValueError(f"{name} must be pass/fail (0 or 1), got {x[bad]} at item {bad}")
    return np.asarray(x == 1.0, dtype=np.bool_)


def mcnemar(a_pass: Scores, b_pass: Scores) -> McNemar:
    """McNemar's test for pass/fail items: are the disagreements split evenly between models?"""
    x, y = _pass_fail(a_pass, "a_pass"), _pass_fail(b_pass, "b_pass")
    if x.size != y.size:
        raise ValueError(
            f"a_pass has {x.size} scores but b_pass has {y.size}: "
            "both must be scored on the same items"
        )
    only_a, only_b = int(np.sum(x & ~y)), int(np.sum(~x & y))
    discordant = only_a + only_b
    if discordant < _EXACT_MCNEMAR_MAX_DISCORDANT:
        p_value = 1.0 if discordant == 0 else stats.binomtest(only_b, discordant, 0.5).pvalue
        return McNemar(only_a=only_a, only_b=only_b, p_value=float(p_value), method="exact")
    # Edwards' continuity correction, floored at 0 so equal counts give p = 1.
    statistic = max(0.0, abs(only_a - only_b) - 1.0) ** 2 / discordant
    p_value = float(stats.chi2.sf(statistic, df=1))
    return McNemar(only_a=only_a, only_b=only_b, p_value=p_value, method="chi-square")


def _mdd(x: FloatArray, y: FloatArray, alpha: float, power: float) -> float:
    d = y - x
    binary = _is_binary(x, y)
    sd = float(np.std(d, ddof=1)) if d.size > 1 else 0.0
    if sd == 0.0 and binary:
        sd = 0.5  # no observed disagreement yet: assume the worst case for pass/fail scores
    elif d.size == 1:
        return math.inf  # one continuous item says nothing about how much scores vary
    z = float(stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power))
    return z * sd / math.sqrt(d.size)


def minimum_detectable_difference(
    a: Scores, b: Scores, *, alpha: float = 0.05, power: float = 0.80
) -> float:
    """Smallest mean paired difference these items detect with the given power.

    Normal approximation: (z_{1-alpha/2} + z_{power}) * sd(b - a) / sqrt(n). Pass/fail scores
    with no observed disagreement use the worst-case sd 0.5; a single non-binary item gives inf.
    """
    _check_unit(alpha, "alpha")
    _check_unit(power, "power")
    x, y = _paired(a, b)
    return _mdd(x, y, alpha, power)


def _described(
    name_a: str,
    name_b: str,
    metric: str,
    paired: PairedDifference,
    *,
    p_value: float,
    test: Literal["McNemar", "paired bootstrap"],
    mdd: float,
    confidence: float,
    scale: float,
    higher_is_better: bool,
    unit: str,
) -> Comparison:
    """The numbers of a paired comparison, and the sentence that says them (`sentences`)."""
    significant = p_value < 1.0 - confidence
    comparison = Comparison(
        a=name_a,
        b=name_b,
        metric=metric,
        diff=paired.diff,
        low=paired.low,
        high=paired.high,
        p_value=p_value,
        test=test,
        mdd=mdd,
        n=paired.n,
        significant=significant,
        sentence="",
        warning=None,
        higher_is_better=higher_is_better,
    )
    sentence = sentences.comparison(comparison, confidence=confidence, scale=scale, unit=unit)
    warning = (
        None
        if significant
        else sentences.dataset_too_small(paired.n, paired.diff, mdd, scale=scale, unit=unit)
    )
    return comparison.model_copy(update={"sentence": sentence, "warning": warning})


def compare(
    name_a: str,
    a: Scores,
    name_b: str,
    b: Scores,
    *,
    metric: str,
    binary: bool = False,
    scale: float = 100.0,
    confidence: float = 0.95,
    seed: int = 0,
    higher_is_better: bool = True,
    unit: str = "points",
) -> Comparison:
    """Compare `b` against `a` on one metric and say the result in plain words.

    The interval is always the paired bootstrap; the p-value comes from McNemar's test for
    pass/fail scores and from the paired bootstrap otherwise. `scale` converts the metric to
    points (100 for metrics in [0, 1]). The warning appears only when the difference is not
    significant and smaller than the minimum detectable difference: then the dataset, not the
    models, is the likely reason no winner emerged. With `higher_is_better=False` (a loss, a
    latency) the lower score wins; `diff` stays `b - a` either way. `unit` names what the
    sentence counts in: "points" (one decimal) or any other word, or "" (three digits).
    """
    _check_unit(confidence, "confidence")
    x, y = _paired(a, b, name_a, name_b)
    paired = _paired_bootstrap(x, y, confidence, 10_000, seed)
    test: Literal["McNemar", "paired bootstrap"]
    if binary:
        passes = _pass_fail(x, name_a), _pass_fail(y, name_b)
        p_value, test = mcnemar(*passes).p_value, "McNemar"
    else:
        p_value, test = paired.p_value, "paired bootstrap"
    mdd = _mdd(x, y, alpha=1.0 - confidence, power=0.80)
    return _described(
        name_a,
        name_b,
        metric,
        paired,
        p_value=p_value,
        test=test,
        mdd=mdd,
        confidence=confidence,
        scale=scale,
        higher_is_better=higher_is_better,
        unit=unit,
    )


# -- corpus-level metrics -------------------------------------------------------------------

CorpusStatistic = Callable[..., Any]
"""A corpus value from per-item columns, vectorized: `statistic(*columns, axis=-1)`, e.g.
`lambda ll, words, axis: np.exp(-ll.sum(axis) / words.sum(axis))` for word perplexity."""


def _columns(columns: Sequence[Scores], name: str) -> list[FloatArray]:
    arrays = [_scores(c, f"{name} column {i}") for i, c in enumerate(columns)]
    if not arrays or len({a.size for a in arrays}) != 1:
        raise ValueError(f"{name} needs one or more columns of the same length")
    return arrays


def corpus_ci(
    columns: Sequence[Scores],
    statistic: CorpusStatistic,
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> Interval:
    """A corpus-level value (a ratio of sums, such as perplexity) and its percentile-bootstrap
    interval: items are resampled with all their columns together and the value recomputed.
    `mean` holds the corpus value itself, not a mean of per-item values."""
    _check_unit(confidence, "confidence")
    _check_resamples(resamples)
    arrays = _columns(columns, "columns")
    value = float(statistic(*arrays, axis=-1))
    n = int(arrays[0].size)
    if n == 1:
        return Interval(mean=value, low=value, high=value, n=1)
    result = stats.bootstrap(
        tuple(arrays),
        statistic,
        n_resamples=resamples,
        batch=max(1, _BATCH_ELEMENTS // (n * len(arrays))),
        vectorized=True,
        paired=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return Interval(mean=value, low=float(low), high=float(high), n=n)


def compare_corpus(
    name_a: str,
    a: Sequence[Scores],
    name_b: str,
    b: Sequence[Scores],
    *,
    metric: str,
    statistic: CorpusStatistic,
    higher_is_better: bool = True,
    unit: str = "",
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Compare a corpus-level metric (see `corpus_ci`) of `b` against `a` on the same items.

    The paired bootstrap resamples items, recomputes both corpus values on the same resample and
    takes their difference; the p-value is read from that distribution as in `paired_bootstrap`,
    and the minimum detectable difference is (z_{1-alpha/2} + z_{0.8}) times its spread.
    """
    _check_unit(confidence, "confidence")
    _check_resamples(resamples)
    x, y = _columns(a, name_a), _columns(b, name_b)
    if x[0].size != y[0].size or len(x) != len(y):
        raise ValueError(
            f"{name_a} and {name_b} must have the same columns over the same items "
            f"({len(x)}x{x[0].size} against {len(y)}x{y[0].size})"
        )
    k = len(x)

    def difference(*columns: FloatArray, axis: int = -1) -> Any:
        return statistic(*columns[k:], axis=axis) - statistic(*columns[:k], axis=axis)

    diff, n = float(difference(*x, *y)), int(x[0].size)
    if n == 1:
        paired = PairedDifference(diff=diff, low=diff, high=diff, p_value=1.0, n=1)
        return _described(
            name_a,
            name_b,
            metric,
            paired,
            p_value=1.0,
            test="paired bootstrap",
            mdd=math.inf,
            confidence=confidence,
            scale=1.0,
            higher_is_better=higher_is_better,
            unit=unit,
        )
    result = stats.bootstrap(
        (*x, *y),
        difference,
        n_resamples=resamples,
        batch=max(1, _BATCH_ELEMENTS // (n * 2 * k)),
        vectorized=True,
        paired=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = (float(v) for v in result.confidence_interval)
    boot = np.asarray(result.bootstrap_distribution, dtype=np.float64)
    if diff == 0.0:
        p_value = 1.0
    else:
        tolerance = 1e-12 * max(1.0, abs(diff))
        other_side = float(np.mean(boot * math.copysign(1.0, diff) <= tolerance))
        p_value = min(1.0, max(2.0 * other_side, 1.0 / boot.size))
    alpha = 1.0 - confidence
    z = float(stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(0.80))
    mdd = z * float(np.std(boot, ddof=1))
    paired = PairedDifference(diff=diff, low=low, high=high, p_value=p_value, n=n)
    return _described(
        name_a,
        name_b,
        metric,
        paired,
        p_value=p_value,
        test="paired bootstrap",
        mdd=mdd,
        confidence=confidence,
        scale=1.0,
        higher_is_better=higher_is_better,
        unit=unit,
    )
