"""Each scored item's reference checked against what its metrics read, when the dataset loads.

A reference a metric cannot read (a number where text is compared, text that is not JSON where
JSON fields are) would otherwise fail only after every model ran, far from its line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from llmselect.errors import LLMSelectError
from llmselect.evaluation.datasets import Dataset
from llmselect.evaluation.study import EvalStudy, MetricSpec

TEXT_METRICS = (
    "exact_match",
    "contains",
    "token_f1",
    "rouge_l",
    "bleu",
    "chrf",
    "semantic_similarity",
)
"""Metrics that compare the output with a reference text, or the best of a list of texts."""


def _kind(value: object) -> str:
    return "but the item has none" if value is None else f"got {type(value).__name__} {value!r:.60}"


def reference_problem(metric: MetricSpec, reference: object) -> str | None:
    """Why this metric cannot read this reference, or None when it can (or does not read it)."""
    name = metric.name
    reads_text = name in TEXT_METRICS or (
        name == "regex" and "{reference}" in str(metric.options.get("pattern", ""))
    )
    if metric.python is None and reads_text:
        if isinstance(reference, str):
            return None
        if isinstance(reference, list) and all(isinstance(r, str) for r in reference):
            return (
                None if reference else f"metric {name!r} needs a reference text, got an empty list"
            )
        return (
            f"metric {name!r} compares text: the reference must be a string or a list of "
            f"strings, {_kind(reference)}"
        )
    if metric.python is None and name == "json_fields":
        if isinstance(reference, Mapping | list):
            return None
        if not isinstance(reference, str):
            return (
                f"metric 'json_fields' needs a JSON object or a string of JSON, {_kind(reference)}"
            )
        try:
            json.loads(reference)
        except ValueError as exc:
            return f"metric 'json_fields': the reference is not valid JSON ({exc})"
    return None


def check_references(study: EvalStudy, dataset: Dataset) -> None:
    """Raise for the first scored item whose reference one of the study's metrics cannot read."""
    if study.task.kind != "generate":
        return  # multiple choice checks its reference as it loads; perplexity has none
    field = study.dataset.fields.reference
    for item in dataset.items[study.task.few_shot :]:
        for metric in study.metrics:
            problem = reference_problem(metric, item.reference)
            if problem:
                where = f"row index {item.row}, " if item.row is not None else ""
                raise LLMSelectError(
                    f"{where}item {item.id!r}: {problem}",
                    file=item.file or dataset.path,
                    line=item.line if item.row is None else None,
                    field=field,
                    hint='text metrics read a string or a list of strings (in JSON, "4" rather '
                    "than 4); json_fields reads an object or a string of JSON",
                )
