"""Is this data ready for fine-tuning? `check_data` answers with a `DataReport`.

It counts rows and usable rows, finds duplicates within the training set (identical, and near
identical by MinHash over character shingles, confirmed by exact Jaccard: `near_duplicates`),
finds evaluation rows that leak from the training set, measures token lengths against the
model's context, checks label balance when the references look like class labels, and ends with
a plain verdict and advice (judged and worded in `advice`). Files are read by the evaluation
loader (`load_dataset`), so formats, field mapping and line-numbered errors are those of
`llmselect eval`.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from llmselect.errors import LLMSelectError, UsageError
from llmselect.evaluation.datasets import FieldMap, Item, load_dataset
from llmselect.finetune.advice import Advice, Verdict, advise, verdict
from llmselect.finetune.near_duplicates import SHINGLE_CHARS, Sketch, near_pairs_in, sketch

DEFAULT_NEAR_THRESHOLD = 0.8
NOT_READY_EXIT_CODE = 5
"""`llmselect data check` exits with this when the verdict is `not ready` (errors exit 1 or 2)."""

EXAMPLE_SEPARATOR = " ␞ "
"""Joins the normalized input and reference: a boundary no normalized text can blur."""

CHARS_PER_TOKEN = 4
"""The usual estimate for English text with a BPE tokenizer."""
LABEL_MAX_DISTINCT = 20
LABEL_MAX_DISTINCT_SHARE = 0.05
LABEL_MIN_MEAN_COUNT = 5
"""References are labels only when each distinct value repeats this often on average."""
IMBALANCE_MAJORITY_SHARE = 0.8
IMBALANCE_RATIO = 10

Key = Literal["input", "input+reference"]
I64 = npt.NDArray[np.int64]


# --------------------------------------------------------------------------- report


class Match(BaseModel):
    """Row `line` repeats row `of_line` (an earlier training row, or a training row for leakage)."""

    line: int
    of_line: int
    similarity: float
    """Jaccard of the character 5-gram sets after normalization; 1.0 when identical."""
    on: Key
    identical: bool
    """Identical after normalizing Unicode forms, case and spacing."""


class Duplicates(BaseModel):
    identical: list[Match]
    """One per training row whose input and reference repeat an earlier row's."""
    near: list[Match]
    """One per training row (not identical) at least `near_threshold` alike to an earlier one."""
    conflicting: list[Match]
    """One per training row with the same input as an earlier row but another reference."""


class Leakage(BaseModel):
    eval: str
    eval_rows: int
    leaked: list[Match]
    """One per leaked evaluation row: `line` is in the evaluation set, `of_line` in training."""
    identical_input: int
    near_input: int
    identical_example: int
    near_example: int
    """Counts per kind; a row can count in several (an identical example has an identical input)."""


class TokenLengths(BaseModel):
    counted_with: str
    estimated: bool
    """True when tokens are characters / 4, not a tokenizer's count."""
    min: int
    p50: int
    p90: int
    p99: int
    max: int
    context: int | None
    context_source: str | None
    max_tokens: int | None
    limit: int | None
    """`max_tokens` when given, else the context."""
    over_limit_lines: list[int]


class LabelBalance(BaseModel):
    counts: dict[str, int]
    """Most frequent first."""
    majority: str
    majority_share: float
    minority: str
    minority_count: int
    imbalanced: bool
    unseen_eval_labels: list[str]
    """Evaluation references that no training row has."""


class DataReport(BaseModel):
    train: str
    train_sha256: str
    eval: str | None
    eval_sha256: str | None
    fields: FieldMap
    near_threshold: float
    rows: int
    usable_rows: int
    """Rows with an input and a non-empty reference: what training can use."""
    empty_reference_lines: list[int]
    duplicates: Duplicates
    leakage: Leakage | None
    lengths: TokenLengths
    labels: LabelBalance | None
    verdict: Verdict
    advice: list[Advice]


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class _Row:
    line: int
    input: str
    reference: str
    input_key: str
    example_key: str


def normalize(text: str) -> str:
    """Unicode compatibility forms, case and spacing do not make two examples different."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _reference_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _row(item: Item) -> _Row:
    reference = _reference_text(item.reference)
    input_key = normalize(item.input)
    return _Row(
        line=item.line,
        input=item.input,
        reference=reference,
        input_key=input_key,
        example_key=input_key + EXAMPLE_SEPARATOR + normalize(reference),
    )


# --------------------------------------------------------------------------- near duplicates


class _Sketches:
    """Sketches of the rows' inputs, and of their inputs joined to their references.

    A joined text's shingles are its input's plus those of its tail (the input's last k-1
    characters, the separator and the reference), and a MinHash of a union is the elementwise
    minimum of the parts' MinHashes: the inputs are hashed once for both keys."""

    def __init__(self, rows: Sequence[_Row]) -> None:
        self._input_index: dict[str, int] = {}
        self._input_of: dict[str, str] = {}
        for row in rows:
            if row.input_key:
                self._input_index.setdefault(row.input_key, len(self._input_index))
            self._input_of.setdefault(row.example_key, row.input_key)
        self._inputs = sketch(list(self._input_index))

    def inputs(self, texts: Sequence[str]) -> Sketch:
        index = [self._input_index[text] for text in texts]
        return Sketch(self._inputs.signatures[index], lambda i: self._inputs.shingle_set(index[i]))

    def examples(self, texts: Sequence[str]) -> Sketch:
        heads, tails = [], []
        for text in texts:
            head = self._input_of[text]
            whole = len(head) >= SHINGLE_CHARS  # else the input is no shingle of the example
            heads.append(self._input_index[head] if whole else -1)
            tails.append(text[max(0, len(head) - SHINGLE_CHARS + 1) :])
        tail = sketch(tails)
        signatures = tail.signatures.copy()
        has = np.array(heads, dtype=np.int64) >= 0
        picked = np.array(heads, dtype=np.int64)[has]
        signatures[has] = np.minimum(signatures[has], self._inputs.signatures[picked])

        def shingle_set(i: int) -> frozenset[int]:
            own = tail.shingle_set(i)
            return own | self._inputs.shingle_set(heads[i]) if heads[i] >= 0 else own

        return Sketch(signatures, cache(shingle_set))


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class _Matches:
    """For one key: each row's best earlier training match, in training and in evaluation."""

    train: dict[int, Match]
    eval: dict[int, Match]


def _match(
    train: list[_Row],
    evaluation: list[_Row],
    on: Key,
    sketch_of: Callable[[Sequence[str]], Sketch],
    threshold: float,
) -> _Matches:
    def key_of(row: _Row) -> str:
        return row.input_key if on == "input" else row.example_key

    distinct: dict[str, int] = {}
    for row in [*train, *evaluation]:
        if key_of(row):
            distinct.setdefault(key_of(row), len(distinct))
    first_train: dict[int, int] = {}  # distinct text -> index in `train` of its first row
    train_matches: dict[int, Match] = {}
    for index, row in enumerate(train):
        text = distinct.get(key_of(row))
        if text is None:
            continue
        if text in first_train:
            earlier = train[first_train[text]].line
            train_matches[index] = Match(
                line=row.line, of_line=earlier, similarity=1.0, on=on, identical=True
            )
        else:
            first_train[text] = index
    eval_matches: dict[int, Match] = {}
    for index, row in enumerate(evaluation):
        text = distinct.get(key_of(row))
        if text is not None and text in first_train:
            eval_matches[index] = Match(
                line=row.line,
                of_line=train[first_train[text]].line,
                similarity=1.0,
                on=on,
                identical=True,
            )

    eval_by_text: dict[int, list[int]] = {}
    for index, row in enumerate(evaluation):
        text = distinct.get(key_of(row))
        if text is not None and text not in first_train:
            eval_by_text.setdefault(text, []).append(index)
    for a, b, similarity in near_pairs_in(sketch_of(list(distinct)), threshold):
        for one, other in ((a, b), (b, a)):
            if other not in first_train:
                continue
            partner = train[first_train[other]]
            candidates: list[tuple[dict[int, Match], int, _Row]] = []
            if one in first_train and train[first_train[one]].line > partner.line:
                candidates.append((train_matches, first_train[one], train[first_train[one]]))
            candidates += [(eval_matches, i, evaluation[i]) for i in eval_by_text.get(one, [])]
            for matches, index, row in candidates:
                known = matches.get(index)
                if known is None or (not known.identical and known.similarity < similarity):
                    matches[index] = Match(
                        line=row.line,
                        of_line=partner.line,
                        similarity=round(similarity, 4),
                        on=on,
                        identical=False,
                    )
    return _Matches(train_matches, eval_matches)


def _duplicates(train: list[_Row], examples: dict[int, Match]) -> Duplicates:
    first_reference: dict[str, _Row] = {}
    conflicting = []
    for row in train:
        earlier = first_reference.setdefault(row.input_key, row)
        if earlier is not row and normalize(earlier.reference) != normalize(row.reference):
            conflicting.append(
                Match(
                    line=row.line, of_line=earlier.line, similarity=1.0, on="input", identical=True
                )
            )
    ordered = sorted(examples.values(), key=lambda m: m.line)
    # Same input with another answer is a conflict, not merely a near repeat.
    conflicts = {m.line for m in conflicting}
    return Duplicates(
        identical=[m for m in ordered if m.identical],
        near=[m for m in ordered if not m.identical and m.line not in conflicts],
        conflicting=conflicting,
    )


def _leakage(
    evaluation: list[_Row], path: Path, by_input: dict[int, Match], by_example: dict[int, Match]
) -> Leakage:
    leaked = []
    for index in sorted(by_input.keys() | by_example.keys()):
        options = [m for m in (by_example.get(index), by_input.get(index)) if m is not None]
        # An identical match says more than a near one, then the more alike; on a tie the
        # whole example (input and reference) says more than the input alone.
        leaked.append(max(options, key=lambda m: (m.identical, m.similarity)))
    return Leakage(
        eval=str(path),
        eval_rows=len(evaluation),
        leaked=leaked,
        identical_input=sum(m.identical for m in by_input.values()),
        near_input=sum(not m.identical for m in by_input.values()),
        identical_example=sum(m.identical for m in by_example.values()),
        near_example=sum(not m.identical for m in by_example.values()),
    )


# --------------------------------------------------------------------------- token lengths


@dataclass(frozen=True)
class _Model:
    tokenizer: Any
    name: str
    context: int | None
    context_source: str | None


def _local_model(folder: Path) -> _Model:
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise LLMSelectError(
            "counting tokens with a local tokenizer needs transformers",
            file=folder,
            hint="pip install -e '.[hf]', or pass a catalog id to estimate tokens",
        ) from exc
    try:
        tokenizer: Any = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise LLMSelectError(
            f"cannot load a tokenizer: {exc}",
            file=folder,
            hint="the folder needs tokenizer files as written by save_pretrained",
        ) from exc
    context, source = None, None
    config = folder / "config.json"
    if config.is_file():
        from llmselect.catalog.importers.hf_config import architecture_from_config, read_config

        context = architecture_from_config(read_config(config), file=config).context_length
        source = f"{config}" if context else None
    maximum = getattr(tokenizer, "model_max_length", None)
    if context is None and isinstance(maximum, int) and maximum < 10**8:
        context, source = maximum, f"model_max_length of the tokenizer in {folder}"
    return _Model(tokenizer, f"the tokenizer in {folder}", context, source)


def _catalog_model(model_id: str) -> _Model:
    from llmselect.catalog import load_catalog

    try:
        card = load_catalog().get(model_id)
    except UsageError as exc:
        raise UsageError(
            exc.message,
            hint=(exc.hint + "; " if exc.hint else "") + "--model also takes a local model folder",
        ) from None
    context = card.architecture.context_length
    return _Model(None, "", context, f"catalog card of {card.id}" if context else None)


def _token_counts(rows: list[_Row], model: _Model | None) -> tuple[I64, str]:
    """Prompt plus reference tokens per row, and how they were counted."""
    if model is not None and model.tokenizer is not None:
        if not rows:
            return np.zeros(0, dtype=np.int64), model.name
        from transformers.utils import logging as hf_logging

        # Long rows are what we are looking for: transformers' warning about them is noise.
        previous = hf_logging.get_verbosity()
        hf_logging.set_verbosity(logging.ERROR)
        try:
            prompts = model.tokenizer([r.input for r in rows], add_special_tokens=True)
            answers = model.tokenizer([r.reference for r in rows], add_special_tokens=False)
        finally:
            hf_logging.set_verbosity(previous)
        counts = [
            len(p) + len(a) for p, a in zip(prompts["input_ids"], answers["input_ids"], strict=True)
        ]
        return np.array(counts, dtype=np.int64), model.name
    chars = np.array([len(r.input) + len(r.reference) for r in rows], dtype=np.int64)
    return -(-chars // CHARS_PER_TOKEN), f"characters / {CHARS_PER_TOKEN} (an estimate)"


def _lengths(rows: list[_Row], model: _Model | None, max_tokens: int | None) -> TokenLengths:
    counts, counted_with = _token_counts(rows, model)
    context = model.context if model else None
    limit = max_tokens or context
    over = [r.line for r, n in zip(rows, counts.tolist(), strict=True) if limit and n > limit]

    def percentile(q: float) -> int:
        return int(np.percentile(counts, q, method="higher")) if len(counts) else 0

    return TokenLengths(
        counted_with=counted_with,
        estimated=model is None or model.tokenizer is None,
        min=int(counts.min()) if len(counts) else 0,
        p50=percentile(50),
        p90=percentile(90),
        p99=percentile(99),
        max=int(counts.max()) if len(counts) else 0,
        context=context,
        context_source=model.context_source if model else None,
        max_tokens=max_tokens,
        limit=limit,
        over_limit_lines=over,
    )


# --------------------------------------------------------------------------- labels


def _labels(train: list[_Row], evaluation: list[_Row]) -> LabelBalance | None:
    """Label counts when references look like classes: few distinct values, each repeated."""
    counts = Counter(r.reference.strip() for r in train)
    distinct, rows = len(counts), len(train)
    few = distinct <= LABEL_MAX_DISTINCT or distinct <= LABEL_MAX_DISTINCT_SHARE * rows
    if distinct < 2 or not few or rows < LABEL_MIN_MEAN_COUNT * distinct:
        return None
    ranked = counts.most_common()
    (majority, top), (minority, bottom) = ranked[0], ranked[-1]
    share = top / rows
    unseen = {r.reference.strip() for r in evaluation if r.reference.strip()} - counts.keys()
    return LabelBalance(
        counts=dict(ranked),
        majority=majority,
        majority_share=round(share, 4),
        minority=minority,
        minority_count=bottom,
        imbalanced=share >= IMBALANCE_MAJORITY_SHARE or top >= IMBALANCE_RATIO * bottom,
        unseen_eval_labels=sorted(unseen),
    )


# --------------------------------------------------------------------------- entry point


def check_data(
    train_path: Path,
    eval_path: Path | None = None,
    *,
    fields: FieldMap | None = None,
    near_threshold: float = DEFAULT_NEAR_THRESHOLD,
    model: str | None = None,
    max_tokens: int | None = None,
) -> DataReport:
    """Check a training set (and its evaluation set) before fine-tuning.

    `model` is a local Hugging Face folder (its tokenizer counts tokens, its config gives the
    context) or a catalog id (its card gives the context; tokens are estimated as characters
    / 4). `max_tokens` is the training sequence length; rows longer than it, or than the context
    when it is not given, are counted as truncated."""
    fields = fields or FieldMap()
    if not 0 < near_threshold <= 1:
        raise UsageError(
            f"near threshold {near_threshold} is not in (0, 1]",
            hint="0.8 finds small edits; 0.95 only typos",
        )
    if max_tokens is not None and max_tokens < 1:
        raise UsageError(f"--max-tokens {max_tokens} must be at least 1")
    # A dataset folder holds splits: training data is its train split, evaluation data the
    # loader's default (test, then validation).
    train_set = load_dataset(train_path, fields, split="train" if train_path.is_dir() else None)
    eval_set = load_dataset(eval_path, fields) if eval_path is not None else None
    resolved = None
    if model is not None:
        folder = Path(model).expanduser()
        resolved = _local_model(folder) if folder.is_dir() else _catalog_model(model)

    rows = [_row(item) for item in train_set.items]
    usable = [r for r in rows if r.reference.strip()]
    evaluation = [_row(item) for item in eval_set.items] if eval_set else []
    # Inputs are hashed once for both keys; each key's search finds repeats within training
    # and leaks into evaluation at once.
    sketches = _Sketches([*usable, *evaluation])
    examples = _match(usable, evaluation, "input+reference", sketches.examples, near_threshold)
    inputs = (
        _match(usable, evaluation, "input", sketches.inputs, near_threshold) if evaluation else None
    )
    report = DataReport(
        train=str(train_path),
        train_sha256=train_set.sha256,
        eval=str(eval_path) if eval_path is not None else None,
        eval_sha256=eval_set.sha256 if eval_set else None,
        fields=fields,
        near_threshold=near_threshold,
        rows=len(rows),
        usable_rows=len(usable),
        empty_reference_lines=[r.line for r in rows if not r.reference.strip()],
        duplicates=_duplicates(usable, examples.train),
        leakage=(
            _leakage(evaluation, eval_path, inputs.eval, examples.eval)
            if eval_path is not None and inputs is not None
            else None
        ),
        lengths=_lengths(usable, resolved, max_tokens),
        labels=_labels(usable, evaluation),
        verdict="ready",
        advice=[],
    )
    report.advice = advise(report)
    report.verdict = verdict(report.advice)
    return report
