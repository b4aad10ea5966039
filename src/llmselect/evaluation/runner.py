"""Run a study: every candidate on every item, stored as it comes, then scored and compared.

Writes `results.json` (per model: each metric's value, 95% CI and n; latency; pairwise
comparisons) and `samples.jsonl` (one line per model x item) into the output folder. Task kinds:
`generate` (scored by metrics per item), `multiple_choice` (log-likelihood of each choice) and
`perplexity` (each text's rolling log-likelihood, aggregated over the corpus as lm-eval does).
"""

from __future__ import annotations

import functools
import math
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from itertools import combinations, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from llmselect.errors import LLMSelectError
from llmselect.evaluation.backends import GenerationSettings, backend_identity, open_backend
from llmselect.evaluation.backends.base import (
    ItemFailed,
    local_device,
    local_dtype,
    local_engine,
    peak_memory_bytes,
    reset_peak_memory,
)
from llmselect.evaluation.datasets import Dataset, Item, load_dataset
from llmselect.evaluation.lengths import fit_prompts, tokens_of
from llmselect.evaluation.metrics import load_custom_metric, score
from llmselect.evaluation.prompts import stored_prompts
from llmselect.evaluation.references import check_references
from llmselect.evaluation.results import (
    DatasetInfo,
    EvalResults,
    Latency,
    MetricSummary,
    ModelResult,
    SampleLine,
)
from llmselect.evaluation.statistics import (
    Comparison,
    CorpusStatistic,
    Interval,
    bootstrap_ci,
    compare,
    compare_corpus,
    corpus_ci,
)
from llmselect.evaluation.store import Failure, RunInfo, Sample, Store, cache_key
from llmselect.evaluation.study import Candidate, EvalStudy, TaskSpec

if TYPE_CHECKING:
    from llmselect.evaluation.backends.served import Launch
    from llmselect.evaluation.executors import Executor

Progress = Callable[[str, int, int], None]
"""Called with (model, items done, items in all) as outputs are stored."""


def _prompts(study: EvalStudy, dataset: Dataset, store: Store) -> tuple[list[Item], dict[str, str]]:
    """The scored items and their prompts, rendered once and kept in the store: a run, its
    resume and its results all read the same text (see `prompts`)."""
    examples = dataset.items[: study.task.few_shot]
    items = dataset.items[study.task.few_shot :]
    return items, stored_prompts(store, study.task.template, items, examples, dataset.path)


def _fit(
    study: EvalStudy,
    backend: Any,
    candidate: Candidate,
    pending: list[Item],
    prompts: dict[str, str],
    keys: dict[str, str],
    file: str,
) -> tuple[dict[str, str], list[Item], list[Sample]]:
    """The prompts to send, fitted to the model's context before it runs (see `lengths`). An
    item the policy skips is stored with no output, so results list it and a rerun moves on."""
    if not pending:
        return {}, [], []
    chat = backend.chat_prompt if study.task.chat and candidate.transformers else None
    fitted = fit_prompts(study, tokens_of(backend, candidate), pending, prompts, chat, file)
    skipped = [
        Sample(cache_key=keys[i], model=candidate.name, item_id=i, prompt=prompts[i])
        for i in fitted.skipped
    ]
    return fitted.prompts, [i for i in pending if i.id in fitted.prompts], skipped


def _settings(study: EvalStudy) -> dict[str, Any]:
    task = study.task
    if task.kind == "perplexity":
        window = {"max_length": task.max_length} if task.max_length else {}
        return {"kind": task.kind, **window}
    # `chat` and the policy join the key only when set, so older stores stay valid; a policy
    # that cuts or skips long prompts changes what was measured.
    chat: dict[str, Any] = {"chat": True} if task.chat else {}
    if task.on_long_prompt != "error":
        chat["on_long_prompt"] = task.on_long_prompt
    if task.kind == "multiple_choice":
        return {"kind": task.kind, "choice_prefix": task.choice_prefix, **chat}
    return {
        "kind": task.kind,
        "max_tokens": task.max_tokens,
        "stop": task.stop,
        "temperature": task.temperature,
        **chat,
    }


def _keys(
    study: EvalStudy,
    backend: str,
    items: list[Item],
    prompts: dict[str, str],
    settings: dict[str, Any],
) -> dict[str, str]:
    """Each item's store key. A multiple-choice item's choices are part of what is scored, so
    two items with the same prompt and other choices must not share stored log-likelihoods."""
    if study.task.kind != "multiple_choice":
        return {i.id: cache_key(backend, prompts[i.id], settings) for i in items}
    return {
        i.id: cache_key(backend, prompts[i.id], {**settings, "choices": i.choices or []})
        for i in items
    }


def run_models(
    study: EvalStudy,
    base_dir: Path,
    store: Store,
    progress: Progress | None = None,
    executor: Executor | None = None,
    launch: Launch | None = None,
) -> Dataset:
    """Produce (or find stored) outputs for every candidate and item: here, or where
    `executor` runs them (see `executors`); either way they are stored here as they come.
    `launch` starts the engines of `serve` candidates (see `backends.served`)."""
    from llmselect.evaluation.executors import CandidateWork, Recorder, open_executor

    dataset = load_study_dataset(study, base_dir)
    items, prompts = _prompts(study, dataset, store)
    settings = _settings(study)
    work: list[CandidateWork] = []
    for candidate in study.candidates:
        backend = backend_identity(candidate, base_dir)
        keys = _keys(study, backend, items, prompts, settings)
        done = store.done(list(keys.values()))
        pending = [i for i in items if keys[i.id] not in done]
        work.append(
            CandidateWork(
                candidate=candidate,
                backend=backend,
                pending=pending,
                prompts={i.id: prompts[i.id] for i in pending},
                keys={i.id: keys[i.id] for i in pending},
                total=len(items),
                stored=len(items) - len(pending),
                file=dataset.path,
                launch=launch if candidate.serve else None,
            )
        )
    recorder = Recorder(store, settings, progress)
    (executor or open_executor(None)).run(study, base_dir, work, recorder)
    return dataset


def produce(
    study: EvalStudy,
    base_dir: Path,
    candidate: Candidate,
    pending: list[Item],
    prompts: dict[str, str],
    keys: dict[str, str],
    file: str,
    launch: Launch | None = None,
) -> Iterator[list[Sample] | Failure | RunInfo]:
    """One unit of work: open the candidate's backend, fit the prompts to its context, and
    yield its outputs as they are produced (items the policy skips first, with no output),
    each item's failure, and last where and how it ran. The caller stores them."""
    backend = open_backend(candidate, base_dir, launch)
    try:
        sent, pending, skipped = _fit(study, backend, candidate, pending, prompts, keys, file)
        if skipped:
            yield skipped
        if not pending:
            return
        reset_peak_memory(backend)
        yield from _produced(study, backend, candidate, pending, sent, keys)
        yield RunInfo(
            device=local_device(backend),
            dtype=local_dtype(backend),
            engine=local_engine(backend),
            peak_memory_bytes=peak_memory_bytes(backend),
        )
    finally:
        backend.close()


def _produced(
    study: EvalStudy,
    backend: Any,
    candidate: Candidate,
    pending: list[Item],
    prompts: dict[str, str],
    keys: dict[str, str],
) -> Iterator[list[Sample] | Failure]:
    """The outputs of `pending` as they are produced, or why an item got none.

    A server answers each item on its own: items go out one request each, `concurrency` at a
    time, and each comes back as soon as it is answered. A transformers model works on
    `batch_size` items at a time, sorted by prompt length first so that each batch pads little,
    and a batch comes back when it is done; llama.cpp works one item at a time.
    """

    def run(chunk: list[Item]) -> list[Sample]:
        return _run_chunk(study, backend, candidate.name, chunk, prompts, keys)

    def failed(chunk: list[Item], exc: ItemFailed) -> Iterator[Failure]:
        for item in chunk:
            yield Failure(
                cache_key=keys[item.id], model=candidate.name, item_id=item.id, error=str(exc)
            )

    if candidate.openai or candidate.serve:
        for chunk, answer in _as_answered(pending, run, candidate.concurrency):
            if isinstance(answer, ItemFailed):
                yield from failed(chunk, answer)
            else:
                yield answer
        return
    size = 1
    if candidate.transformers:
        size = candidate.batch_size
        pending = sorted(pending, key=lambda i: len(prompts[i.id]))
    for start in range(0, len(pending), size):
        chunk = pending[start : start + size]
        try:
            samples = run(chunk)
        except ItemFailed as exc:
            yield from failed(chunk, exc)
            continue
        yield samples


def _as_answered(
    items: list[Item], run: Callable[[list[Item]], list[Sample]], concurrency: int
) -> Iterator[tuple[list[Item], list[Sample] | ItemFailed]]:
    """`run` on each item alone, `concurrency` at once, each result yielded as it arrives.

    A few more are queued than run, so that no request waits for the store. Any other error
    stops the run: nothing more is sent, what is already on its way is waited for and yielded
    (so it is kept), then the error is raised.
    """
    waiting = iter(items)
    running: dict[Future[list[Sample]], Item] = {}
    stop: BaseException | None = None
    pool = ThreadPoolExecutor(max_workers=concurrency)
    try:
        while True:
            if stop is None:
                for item in islice(waiting, 2 * concurrency - len(running)):
                    running[pool.submit(run, [item])] = item
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                item = running.pop(future)
                answer: list[Sample] | ItemFailed
                try:
                    answer = future.result()
                except ItemFailed as exc:
                    answer = exc
                except Exception as exc:
                    stop = stop or exc
                    for queued in [f for f in running if f.cancel()]:
                        del running[queued]
                    continue
                yield [item], answer
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if stop is not None:
        raise stop


def load_study_dataset(study: EvalStudy, base_dir: Path) -> Dataset:
    spec = study.dataset
    fields = spec.fields
    if study.task.kind == "perplexity":
        # A text to score has no reference: do not warn that every one is empty.
        fields = fields.model_copy(update={"reference": None})
    dataset = load_dataset(
        base_dir / spec.path, fields, spec.limit, spec.split, max_line_bytes=spec.max_line_bytes
    )
    check_references(study, dataset)  # before any model runs, not when scoring
    return dataset


def _run_chunk(
    study: EvalStudy,
    backend: Any,
    model: str,
    chunk: list[Item],
    prompts: dict[str, str],
    keys: dict[str, str],
) -> list[Sample]:
    task = study.task
    if task.kind in ("perplexity", "multiple_choice"):
        began = time.perf_counter()
        scores = _loglikelihoods(task, backend, [prompts[i.id] for i in chunk], chunk)
        # Every item of the chunk waited for all of it: scores come back together.
        seconds = time.perf_counter() - began
        return [
            Sample(
                cache_key=keys[item.id],
                model=model,
                item_id=item.id,
                prompt=prompts[item.id],
                loglikelihoods=lls,
                seconds=seconds,
                batch_rows=len(chunk),
            )
            for item, lls in zip(chunk, scores, strict=True)
        ]
    settings = GenerationSettings(
        max_tokens=task.max_tokens, stop=task.stop, temperature=task.temperature, chat=task.chat
    )
    outputs = backend.generate([prompts[i.id] for i in chunk], settings)
    return [
        Sample(
            cache_key=keys[item.id],
            model=model,
            item_id=item.id,
            prompt=prompts[item.id],
            output=out.text,
            prompt_tokens=out.prompt_tokens,
            output_tokens=out.output_tokens,
            seconds=out.seconds,
            ttft_s=out.ttft_s,
            batch_rows=out.batch_rows,
        )
        for item, out in zip(chunk, outputs, strict=True)
    ]


def _loglikelihoods(
    task: TaskSpec, backend: Any, texts: list[str], chunk: list[Item]
) -> list[list[float]]:
    """Per item: its text's rolling log-likelihood (perplexity), or each choice's after the
    prompt (multiple choice), every choice of the chunk scored in one call."""
    if task.kind == "perplexity":
        return [[ll] for ll in backend.loglikelihood_rolling(texts, task.max_length)]
    requests: list[tuple[str, str]] = []
    for text, item in zip(texts, chunk, strict=True):
        context = backend.chat_prompt(text) if task.chat else text
        requests += [(context, task.choice_prefix + c) for c in item.choices or []]
    scores = backend.loglikelihoods(requests)
    split, start = [], 0
    for item in chunk:
        split.append(scores[start : start + len(item.choices or [])])
        start += len(item.choices or [])
    return split


# -- perplexity -----------------------------------------------------------------------------


def count_words(text: str) -> int:
    """Words as lm-evaluation-harness counts them (`len(re.split(r"\\s+", text))`)."""
    return len(re.split(r"\s+", text))


def count_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _perplexity(ll: Any, units: Any, axis: int = -1) -> Any:
    return np.exp(-np.sum(ll, axis=axis) / np.sum(units, axis=axis))


def _bits_per_byte(ll: Any, n_bytes: Any, axis: int = -1) -> Any:
    return -np.sum(ll, axis=axis) / np.sum(n_bytes, axis=axis) / math.log(2)


PERPLEXITY_METRICS: dict[str, tuple[str, CorpusStatistic]] = {
    "word_perplexity": ("words", _perplexity),
    "byte_perplexity": ("bytes", _perplexity),
    "bits_per_byte": ("bytes", _bits_per_byte),
}
"""Corpus-level, as lm-evaluation-harness aggregates them: exp(-Σ ll / Σ words),
exp(-Σ ll / Σ bytes) and -Σ ll / Σ bytes / ln 2 (lower is better for all three)."""


def _perplexity_parts(sample: Sample) -> dict[str, float]:
    text = sample.prompt
    ll = (sample.loglikelihoods or [0.0])[0]
    return {"loglikelihood": ll, "words": count_words(text), "bytes": count_bytes(text)}


def _perplexity_scores(parts: dict[str, float]) -> dict[str, float]:
    """One item's own values, for reading the samples; results aggregate over the corpus."""
    return {
        name: float(statistic(np.array([parts["loglikelihood"]]), np.array([parts[unit]])))
        for name, (unit, statistic) in PERPLEXITY_METRICS.items()
    }


Scorer = Callable[[str, object], float]


def _scorers(study: EvalStudy, base_dir: Path) -> dict[str, Scorer]:
    """Each metric's scorer: a built-in with its options, or the user's own function (loaded
    once, from the file the study names)."""
    scorers: dict[str, Scorer] = {}
    for m in study.metrics:
        if m.python:
            custom = load_custom_metric(m.python, base_dir)
            scorers[m.name] = functools.partial(_call, custom, m.options)
        else:
            scorers[m.name] = functools.partial(_builtin, m.name, m.options)
    return scorers


def _call(fn: Callable[..., float], options: dict[str, Any], output: str, ref: object) -> float:
    return fn(output, ref, **options)


def _builtin(name: str, options: dict[str, Any], output: str, ref: object) -> float:
    return score(name, output, ref, **options)


def _item_scores(
    study: EvalStudy, item: Item, sample: Sample, scorers: dict[str, Scorer], file: str
) -> dict[str, float]:
    if study.task.kind == "perplexity":
        return _perplexity_scores(_perplexity_parts(sample))
    if study.task.kind == "multiple_choice":
        lls = sample.loglikelihoods or []
        choices = item.choices or []
        best = max(range(len(lls)), key=lls.__getitem__)
        # acc_norm divides by the choice's length in characters, as lm-evaluation-harness does.
        normed = [ll / max(1, len(c)) for ll, c in zip(lls, choices, strict=True)]
        best_norm = max(range(len(normed)), key=normed.__getitem__)
        return {
            "acc": float(best == item.reference),
            "acc_norm": float(best_norm == item.reference),
        }
    return {
        name: _score(name, scorer, sample.output or "", item, file)
        for name, scorer in scorers.items()
    }


def _score(name: str, scorer: Scorer, output: str, item: Item, file: str) -> float:
    """One metric on one item; a metric that fails names the item, and the outputs stay stored."""
    try:
        return scorer(output, item.reference)
    except Exception as exc:  # a user's metric may raise anything
        known = isinstance(exc, LLMSelectError)
        why = exc.message if isinstance(exc, LLMSelectError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, LLMSelectError) and exc.file:
            why += f" ({exc.file})"
        raise LLMSelectError(
            f"metric {name!r} failed on item {item.id!r}: {why}",
            file=item.file or file,
            line=item.line,
            field=f"metrics.{name}",
            hint=(exc.hint if isinstance(exc, LLMSelectError) and exc.hint else None)
            or "fix the metric; every output is kept in the store, so the next run scores them "
            "without running the models again"
            + ("" if known else " (the metric's traceback: rerun with `llmselect --debug`)"),
        ) from exc


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q * 100, method="nearest"))


def _latency(samples: list[Sample], run: RunInfo | None) -> Latency | None:
    """Percentiles of the seconds each item waited and of time to first token; throughput,
    each batch's time counted once; peak memory."""
    timed = [s for s in samples if s.seconds is not None]
    if not timed:
        return None
    seconds = [s.seconds for s in timed if s.seconds is not None]
    # The time the run spent: a batch's seconds shared among the items it produced.
    busy = sum((s.seconds or 0.0) / (s.batch_rows or 1) for s in timed)
    ttfts = [s.ttft_s for s in timed if s.ttft_s is not None]
    tokens = sum(s.output_tokens or 0 for s in timed)
    per_token = [
        s.seconds / s.output_tokens for s in timed if s.seconds is not None and s.output_tokens
    ]
    prompt_tokens = [s.prompt_tokens for s in timed if s.prompt_tokens is not None]
    output_tokens = [s.output_tokens for s in timed if s.output_tokens is not None]

    def pick(values: list[float], q: float) -> float | None:
        return _percentile(values, q) if values else None

    return Latency(
        p50_s=_percentile(seconds, 0.5),
        p90_s=_percentile(seconds, 0.9),
        p95_s=_percentile(seconds, 0.95),
        p99_s=_percentile(seconds, 0.99),
        mean_s=statistics.fmean(seconds),
        tokens_per_s=tokens / busy if tokens and busy else None,
        items_per_s=len(timed) / busy if busy else None,
        batch_p50=_percentile([float(s.batch_rows or 1) for s in timed], 0.5),
        ttft_p50_s=pick(ttfts, 0.5),
        ttft_p90_s=pick(ttfts, 0.9),
        ttft_p95_s=pick(ttfts, 0.95),
        ttft_p99_s=pick(ttfts, 0.99),
        s_per_output_token_p50=pick(per_token, 0.5),
        prompt_tokens_p50=pick([float(t) for t in prompt_tokens], 0.5),
        output_tokens_p50=pick([float(t) for t in output_tokens], 0.5),
        output_tokens=tokens,
        n=len(timed),
        peak_memory_bytes=run.peak_memory_bytes if run else None,
    )


def _metric_summary(interval: Interval, higher_is_better: bool) -> MetricSummary:
    return MetricSummary(**interval.model_dump(), higher_is_better=higher_is_better)


def check_out_dir(out_dir: Path) -> None:
    """Fail before anything runs where results could not be written: `--out` is a file, or a
    folder that cannot be made or written to."""
    if out_dir.exists() and not out_dir.is_dir():
        raise LLMSelectError(
            "--out names a file; results go into a folder",
            file=out_dir,
            field="--out",
            hint="give a folder (it is made if it does not exist)",
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise LLMSelectError(
            f"cannot write results into this folder: {exc.strerror or exc}",
            file=out_dir,
            field="--out",
            hint="give a folder you can write to",
        ) from None


def write_results(
    study: EvalStudy, base_dir: Path, dataset: Dataset, store: Store, out_dir: Path
) -> EvalResults:
    """Score every stored output, compare the models, and write `results.json` and
    `samples.jsonl` into `out_dir`."""
    items, prompts = _prompts(study, dataset, store)
    settings = _settings(study)
    perplexity = study.task.kind == "perplexity"
    scorers = _scorers(study, base_dir) if study.task.kind == "generate" else {}
    per_model: dict[str, dict[str, list[float]]] = {}
    parts_per_model: dict[str, dict[str, list[float]]] = {}
    ids_per_model: dict[str, list[str]] = {}
    """The items each model's scores are of, in order: comparisons pair on those both have."""
    lines: list[SampleLine] = []
    models: dict[str, ModelResult] = {}
    for candidate in study.candidates:
        backend_name = backend_identity(candidate, base_dir)
        keys = _keys(study, backend_name, items, prompts, settings)
        stored = store.get(list(keys.values()))
        scores: dict[str, list[float]] = {}
        parts: dict[str, list[float]] = {"loglikelihood": [], "words": [], "bytes": []}
        found: list[Sample] = []
        ids: list[str] = []
        skipped: list[str] = []
        for item in items:
            sample = stored.get(keys[item.id])
            if sample is None:
                continue
            if sample.output is None and sample.loglikelihoods is None:
                skipped.append(item.id)  # too long for the context: `on_long_prompt: skip`
                continue
            found.append(sample)
            ids.append(item.id)
            item_scores = _item_scores(study, item, sample, scorers, dataset.path)
            for name, value in item_scores.items():
                scores.setdefault(name, []).append(value)
            item_parts = _perplexity_parts(sample) if perplexity else {}
            for name, value in item_parts.items():
                parts[name].append(value)
            lines.append(
                SampleLine(
                    model=candidate.name,
                    item_id=item.id,
                    prompt=sample.prompt,
                    output=sample.output,
                    reference=item.reference,
                    scores=item_scores,
                    loglikelihoods=sample.loglikelihoods,
                    **item_parts,
                )
            )
        per_model[candidate.name] = scores
        parts_per_model[candidate.name] = parts
        ids_per_model[candidate.name] = ids
        if perplexity:
            summary = {
                name: _metric_summary(
                    corpus_ci([parts["loglikelihood"], parts[unit]], statistic, seed=study.seed),
                    higher_is_better=False,
                )
                for name, (unit, statistic) in PERPLEXITY_METRICS.items()
                if parts["loglikelihood"]
            }
        else:
            summary = {
                name: _metric_summary(bootstrap_ci(values, seed=study.seed), higher_is_better=True)
                for name, values in scores.items()
            }
        run = store.run_info(backend_name, settings)
        failures = _failed(store, [keys[i.id] for i in items if keys[i.id] not in stored])
        models[candidate.name] = ModelResult(
            metrics=summary,
            latency=_latency(found, run),
            backend=backend_name,
            device=run.device if run else None,
            dtype=run.dtype if run else None,
            engine=run.engine if run else None,
            skipped=skipped,
            **failures,
        )
    comparisons: list[Comparison] = []
    names = list(per_model)
    for a, b in combinations(names, 2):
        both = set(ids_per_model[a]) & set(ids_per_model[b])
        in_a, in_b = _paired(ids_per_model[a], both), _paired(ids_per_model[b], both)
        if perplexity:
            comparisons += _perplexity_comparisons(
                a, _pick(parts_per_model[a], in_a), b, _pick(parts_per_model[b], in_b), study.seed
            )
            continue
        scores_a, scores_b = _pick(per_model[a], in_a), _pick(per_model[b], in_b)
        for metric in scores_a:
            if metric in scores_b and scores_a[metric]:
                binary = all(v in (0.0, 1.0) for v in scores_a[metric] + scores_b[metric])
                comparisons.append(
                    compare(
                        a,
                        scores_a[metric],
                        b,
                        scores_b[metric],
                        metric=metric,
                        binary=binary,
                        seed=study.seed,
                    )
                )
    results = EvalResults(
        study=study.name,
        dataset=DatasetInfo(
            path=dataset.path,
            sha256=dataset.sha256,
            items=len(items),
            warnings=dataset.warnings,
            split=dataset.split,
        ),
        task=study.task.model_dump(),
        models=models,
        comparisons=comparisons,
        samples=lines,
    )
    results.write(out_dir)
    return results


def _paired(ids: list[str], both: set[str]) -> list[int]:
    return [index for index, item_id in enumerate(ids) if item_id in both]


def _pick(values: dict[str, list[float]], positions: list[int]) -> dict[str, list[float]]:
    """Each list at the positions of the items both models have, so pairs are of one item."""
    return {name: [column[i] for i in positions] for name, column in values.items()}


ERRORS_LISTED = 10
"""Failed items whose error results.json lists (`failed` counts them all)."""


def _failed(store: Store, missing: list[str]) -> dict[str, Any]:
    """How many items got no output in the last run, and the first ones' errors."""
    failures = store.failures(missing)
    listed = [failures[key] for key in missing if key in failures][:ERRORS_LISTED]
    return {
        "failed": len(failures),
        "errors": [{"item_id": f.item_id, "error": f.error} for f in listed],
    }


def _perplexity_comparisons(
    a: str, parts_a: dict[str, list[float]], b: str, parts_b: dict[str, list[float]], seed: int
) -> list[Comparison]:
    """Paired on the same texts; both models count the same words and bytes in each."""
    n = len(parts_a["loglikelihood"])
    if not n or n != len(parts_b["loglikelihood"]):
        return []
    return [
        compare_corpus(
            a,
            [parts_a["loglikelihood"], parts_a[unit]],
            b,
            [parts_b["loglikelihood"], parts_b[unit]],
            metric=name,
            statistic=statistic,
            higher_is_better=False,
            seed=seed,
        )
        for name, (unit, statistic) in PERPLEXITY_METRICS.items()
    ]
