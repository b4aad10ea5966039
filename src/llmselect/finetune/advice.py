"""From a data check's numbers to advice in words and a verdict: what blocks fine-tuning, what
deserves a warning, what is worth a note. `data_check` measures; this module judges and words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    from llmselect.finetune.data_check import DataReport

Verdict = Literal["ready", "usable with warnings", "not ready"]
Severity = Literal["blocker", "warning", "note"]

MIN_EXAMPLES = 10
"""Below this many usable rows fine-tuning is not worth starting."""
FEW_EXAMPLES = 100
TRUNCATED_BLOCKER_SHARE = 0.5
LINES_SHOWN = 8


class Advice(BaseModel):
    severity: Severity
    """blocker: makes the verdict `not ready`; warning: `usable with warnings`; note: neither."""
    check: str
    message: str


def _lines(lines: Sequence[int]) -> str:
    """`line 4` or `lines 4, 9, … (+3 more)`."""
    shown = ", ".join(str(n) for n in lines[:LINES_SHOWN])
    more = f", … (+{len(lines) - LINES_SHOWN} more)" if len(lines) > LINES_SHOWN else ""
    return ("line " if len(lines) == 1 else "lines ") + shown + more


def _rows(count: int, singular: str = "", plural: str = "") -> str:
    """`1 row has`, `3 rows have`: a count with its noun and verb agreeing."""
    if count == 1:
        return f"1 row{' ' + singular if singular else ''}"
    return f"{count} rows{' ' + plural if plural else ''}"


def advise(report: DataReport) -> list[Advice]:
    """What to fix before training, most serious first within each check."""
    advice: list[Advice] = []

    def add(severity: Severity, check: str, message: str) -> None:
        advice.append(Advice(severity=severity, check=check, message=message))

    usable = report.usable_rows
    empty = report.empty_reference_lines
    if usable == 0:
        add(
            "blocker",
            "references",
            f"no row has a reference in field {report.fields.reference!r}: "
            "map the answer column with --reference-field",
        )
    elif empty:
        add(
            "warning",
            "references",
            f"{_rows(len(empty), 'has', 'have')} an empty reference and cannot be trained on "
            f"({_lines(empty)}): fill in or remove",
        )
    if 0 < usable < MIN_EXAMPLES:
        add(
            "blocker",
            "size",
            f"only {_rows(usable)} to train on: collect at least {FEW_EXAMPLES} examples",
        )
    elif MIN_EXAMPLES <= usable < FEW_EXAMPLES:
        add(
            "warning",
            "size",
            f"fewer than {FEW_EXAMPLES} examples ({usable}): expect LoRA to learn the format, "
            "not new knowledge",
        )

    leakage = report.leakage
    if leakage is None:
        add(
            "note",
            "leakage",
            "no evaluation set given (--eval): hold out about 10% of the rows, never trained "
            "on, to measure the model before and after",
        )
    elif leakage.leaked:
        lines = [m.line for m in leakage.leaked]
        near = sum(not m.identical for m in leakage.leaked)
        kind = f"; {near} near-identical" if near else ""
        add(
            "blocker",
            "leakage",
            f"remove {len(lines)} evaluation {'row' if len(lines) == 1 else 'rows'} also found in "
            f"the training set ({_lines(lines)} of {leakage.eval}{kind}): they inflate the "
            "measured score",
        )

    dup = report.duplicates
    if dup.identical:
        lines = [m.line for m in dup.identical]
        add(
            "warning",
            "duplicates",
            f"remove {_rows(len(lines), 'that repeats', 'that repeat')} an earlier example "
            f"({_lines(lines)}): repeats weigh some examples more than others",
        )
    if dup.near:
        lines = [m.line for m in dup.near]
        add(
            "warning",
            "duplicates",
            f"review {_rows(len(lines))} nearly identical to an earlier example "
            f"({_lines(lines)}; similarity >= {report.near_threshold:g})",
        )
    if dup.conflicting:
        lines = [m.line for m in dup.conflicting]
        add(
            "warning",
            "duplicates",
            f"{_rows(len(lines), 'repeats', 'repeat')} an earlier input with another reference "
            f"({_lines(lines)}): decide which answer is right",
        )

    lengths = report.lengths
    over = lengths.over_limit_lines
    if lengths.limit is None:
        add(
            "note",
            "length",
            "no context to check lengths against: pass --model (a local folder or a catalog id) "
            "or --max-tokens",
        )
    elif over and usable:
        share = len(over) / usable
        add(
            "blocker" if share >= TRUNCATED_BLOCKER_SHARE else "warning",
            "length",
            f"{_percent(share)} of rows ({len(over)}) exceed {lengths.limit} tokens: they will be "
            f"truncated ({_lines(over)})",
        )
    if lengths.context and lengths.max_tokens and lengths.max_tokens > lengths.context:
        add(
            "warning",
            "length",
            f"--max-tokens {lengths.max_tokens} is more than the model's context "
            f"({lengths.context})",
        )
    if lengths.estimated and lengths.limit is not None and usable:
        add(
            "note",
            "length",
            "token counts are estimated as characters / 4: pass a local model folder to "
            "--model to count them with its tokenizer",
        )

    labels = report.labels
    if labels and labels.imbalanced:
        add(
            "warning",
            "labels",
            f"label {labels.majority!r} is {labels.majority_share:.0%} of the rows and "
            f"{labels.minority!r} has {labels.minority_count}: a model that always answers "
            f"{labels.majority!r} is right {labels.majority_share:.0%} of the time; balance "
            "the classes or add examples of the rare ones",
        )
    if labels and labels.unseen_eval_labels:
        unseen = ", ".join(repr(v) for v in labels.unseen_eval_labels[:LINES_SHOWN])
        add("warning", "labels", f"evaluation labels never seen in training: {unseen}")
    return advice


def _percent(share: float) -> str:
    return "<1%" if 0 < share < 0.01 else f"{share:.0%}"


def verdict(advice: list[Advice]) -> Verdict:
    if any(a.severity == "blocker" for a in advice):
        return "not ready"
    if any(a.severity == "warning" for a in advice):
        return "usable with warnings"
    return "ready"
