"""Fine-tunes of a study's candidates, as the selection report shows them.

`llmselect finetune STUDY --model M` leaves `finetune.json` in its output folder (by default
STUDY_DIR/finetuned/NAME). The selection picks those up, so one report holds the whole
decision; a fine-tune measured on another version of the evaluation data is left out with a
warning rather than shown next to numbers it cannot be compared with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmselect.selection.result import Finetuned, MetricScore

SUMMARY = "finetune.json"
_SAMPLES_SHOWN = 6


def collect_finetuned(
    study_path: Path, dataset_sha256: str | None
) -> tuple[list[Finetuned], list[str]]:
    """Every fine-tune under STUDY_DIR/finetuned/, and warnings about those left out."""
    found: list[Finetuned] = []
    warnings: list[str] = []
    root = study_path.resolve().parent / "finetuned"
    # The default output is finetuned/NAME, and a name like `org/model` is two folders deep.
    summaries = sorted([*root.glob(f"*/{SUMMARY}"), *root.glob(f"*/*/{SUMMARY}")])
    if not summaries:
        return found, warnings
    # Imported only when needed: it brings scipy, and selection alone must start fast.
    from llmselect.finetune.result import FinetuneResult

    for path in summaries:
        try:
            result = FinetuneResult.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError) as exc:
            warnings.append(f"{path}: not a readable fine-tuning summary ({type(exc).__name__})")
            continue
        if result.evaluation is None:
            continue  # trained without `--eval`: nothing measured to show
        results = _read_json(path.parent / "evaluation" / "results.json")
        measured_on = (results or {}).get("dataset", {}).get("sha256")
        if dataset_sha256 is not None and measured_on != dataset_sha256:
            warnings.append(
                f"the fine-tune in {path.parent} was measured on another version of the "
                "evaluation data: run `llmselect finetune` again to include it"
            )
            continue
        found.append(to_finetuned(result, path.parent))
    return found, warnings


def to_finetuned(result: Any, folder: Path) -> Finetuned:
    """The report's view of a `FinetuneResult` in `folder` that was evaluated before and after."""
    evaluation = result.evaluation
    metric = evaluation.metric
    base, tuned = evaluation.before.model, evaluation.after.model
    main = next(c for c in evaluation.comparisons if (c.a, c.b, c.metric) == (base, tuned, metric))

    def score(scores: dict[str, Any]) -> MetricScore:
        s = scores[metric]
        return MetricScore(name=metric, value=s.mean, low=s.low, high=s.high, n=s.n, weight=1.0)

    curve = result.curve
    return Finetuned(
        base=result.base_model,
        tuned=tuned,
        method=result.training.method,
        examples=result.training.examples,
        metric=metric,
        before=score(evaluation.before.scores),
        after=score(evaluation.after.scores),
        comparison=main.model_dump(mode="json"),
        output=str(folder),
        leaked=result.leaked_eval_items,
        samples=_samples(folder / "evaluation" / "samples.jsonl", base, tuned),
        curve=[
            {
                "examples": float(p.examples),
                "value": p.score.mean,
                "low": p.score.low,
                "high": p.score.high,
            }
            for p in (curve.points if curve else [])
        ],
        curve_verdict=curve.verdict if curve else None,
        warnings=list(result.warnings),
    )


def _samples(path: Path, base: str, tuned: str) -> list[dict[str, str]]:
    """A few items with both models' outputs, those where the two differ first."""
    outputs: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        row = json.loads(line)
        if row.get("model") in (base, tuned):
            outputs.setdefault(str(row["item_id"]), {})[row["model"]] = row
    pairs = [(o[base], o[tuned]) for o in outputs.values() if base in o and tuned in o]
    pairs.sort(key=lambda p: p[0].get("output") == p[1].get("output"))  # stable: file order
    return [
        {
            "prompt": str(b.get("prompt", "")),
            "reference": _text(b.get("reference")),
            "before": str(b.get("output") or ""),
            "after": str(t.get("output") or ""),
        }
        for b, t in pairs[:_SAMPLES_SHOWN]
    ]


def _text(reference: Any) -> str:
    if isinstance(reference, list):
        return " | ".join(str(r) for r in reference)
    return "" if reference is None else str(reference)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
