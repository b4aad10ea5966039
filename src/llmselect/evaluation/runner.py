"""Run a study: every candidate on every item, stored as it comes, then scored and compared.

Writes `results.json` (per model: each metric's value, 95% CI and n; latency; pairwise
comparisons) and `samples.jsonl` (one line per model x item) into the output folder.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import Any

from llmselect.evaluation.backends import GenerationSettings, backend_identity, open_backend
from llmselect.evaluation.datasets import Dataset, Item, load_dataset
from llmselect.evaluation.metrics import score
from llmselect.evaluation.statistics import bootstrap_ci, compare
from llmselect.evaluation.store import Sample, Store, cache_key
from llmselect.evaluation.study import EvalStudy
from llmselect.evaluation.templates import render

Progress = Callable[[str, int, int], None]
"""Called with (model, items done, items in all) as outputs are stored."""


def _prompts(study: EvalStudy, dataset: Dataset) -> tuple[list[Item], dict[str, str]]:
    examples = dataset.items[: study.task.few_shot]
    items = dataset.items[study.task.few_shot :]
    return items, {i.id: render(study.task.template, i, examples) for i in items}


def _settings(study: EvalStudy) -> dict[str, Any]:
    task = study.task
    # `chat` joins the key only when set, so stores written before it existed stay valid.
    chat = {"chat": True} if task.chat else {}
    if task.kind == "multiple_choice":
        return {"kind": task.kind, "choice_prefix": task.choice_prefix, **chat}
    return {
        "kind": task.kind,
        "max_tokens": task.max_tokens,
        "stop": task.stop,
        "temperature": task.temperature,
        **chat,
    }


def run_models(
    study: EvalStudy, base_dir: Path, store: Store, progress: Progress | None = None
) -> Dataset:
    """Produce (or find stored) outputs for every candidate and item."""
    dataset = load_dataset(base_dir / study.dataset.path, study.dataset.fields, study.dataset.limit)
    items, prompts = _prompts(study, dataset)
    settings = _settings(study)
    for candidate in study.candidates:
        backend = open_backend(candidate, base_dir)
        keys = {i.id: cache_key(backend.name, prompts[i.id], settings) for i in items}
        done = store.done(list(keys.values()))
        pending = [i for i in items if keys[i.id] not in done]
        if progress:
            progress(candidate.name, len(items) - len(pending), len(items))
        step = candidate.batch_size * 4
        for start in range(0, len(pending), step):
            chunk = pending[start : start + step]
            store.put(_run_chunk(study, backend, candidate.name, chunk, prompts, keys))
            if progress:
                progress(candidate.name, len(items) - len(pending) + start + len(chunk), len(items))
        backend.close()
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
    if task.kind == "multiple_choice":
        samples = []
        for item in chunk:
            context = backend.chat_prompt(prompts[item.id]) if task.chat else prompts[item.id]
            requests = [(context, task.choice_prefix + c) for c in item.choices or []]
            samples.append(
                Sample(
                    cache_key=keys[item.id],
                    model=model,
                    item_id=item.id,
                    prompt=prompts[item.id],
                    loglikelihoods=backend.loglikelihoods(requests),
                )
            )
        return samples
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
        )
        for item, out in zip(chunk, outputs, strict=True)
    ]


def _item_scores(study: EvalStudy, item: Item, sample: Sample) -> dict[str, float]:
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
        m.name: score(m.name, sample.output or "", item.reference, **m.options)
        for m in study.metrics
    }


def _percentile(values: list[float], q: float) -> float:
    import numpy

    return float(numpy.percentile(values, q * 100, method="nearest"))


def write_results(
    study: EvalStudy, base_dir: Path, dataset: Dataset, store: Store, out_dir: Path
) -> dict[str, Any]:
    items, prompts = _prompts(study, dataset)
    settings = _settings(study)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_model: dict[str, dict[str, list[float]]] = {}
    lines: list[str] = []
    results: dict[str, Any] = {
        "study": study.name,
        "dataset": {
            "path": dataset.path,
            "sha256": dataset.sha256,
            "items": len(items),
            "warnings": dataset.warnings,
        },
        "task": study.task.model_dump(),
        "models": {},
        "comparisons": [],
    }
    for candidate in study.candidates:
        backend_name = backend_identity(candidate, base_dir)
        keys = {i.id: cache_key(backend_name, prompts[i.id], settings) for i in items}
        stored = store.get(list(keys.values()))
        scores: dict[str, list[float]] = {}
        seconds: list[float] = []
        ttfts: list[float] = []
        tokens = 0
        for item in items:
            sample = stored.get(keys[item.id])
            if sample is None:
                continue
            item_scores = _item_scores(study, item, sample)
            for name, value in item_scores.items():
                scores.setdefault(name, []).append(value)
            if sample.seconds is not None:
                seconds.append(sample.seconds)
                tokens += sample.output_tokens or 0
            if sample.ttft_s is not None:
                ttfts.append(sample.ttft_s)
            lines.append(
                json.dumps(
                    {
                        "model": candidate.name,
                        "item_id": item.id,
                        "prompt": sample.prompt,
                        "output": sample.output,
                        "reference": item.reference,
                        "scores": item_scores,
                        "loglikelihoods": sample.loglikelihoods,
                    },
                    ensure_ascii=False,
                )
            )
        per_model[candidate.name] = scores
        summary: dict[str, Any] = {
            name: bootstrap_ci(values, seed=study.seed).model_dump()
            for name, values in scores.items()
        }
        latency = None
        if seconds:
            latency = {
                "p50_s": _percentile(seconds, 0.5),
                "p90_s": _percentile(seconds, 0.9),
                "p95_s": _percentile(seconds, 0.95),
                "p99_s": _percentile(seconds, 0.99),
                "mean_s": statistics.fmean(seconds),
                "tokens_per_s": tokens / sum(seconds) if sum(seconds) else None,
                "ttft_p50_s": _percentile(ttfts, 0.5) if ttfts else None,
                "ttft_p90_s": _percentile(ttfts, 0.9) if ttfts else None,
                "ttft_p95_s": _percentile(ttfts, 0.95) if ttfts else None,
                "ttft_p99_s": _percentile(ttfts, 0.99) if ttfts else None,
            }
        results["models"][candidate.name] = {
            "metrics": summary,
            "latency": latency,
            "backend": backend_name,
        }
    names = list(per_model)
    for a, b in combinations(names, 2):
        for metric in per_model[a]:
            if metric in per_model[b] and len(per_model[a][metric]) == len(per_model[b][metric]):
                binary = all(v in (0.0, 1.0) for v in per_model[a][metric] + per_model[b][metric])
                results["comparisons"].append(
                    compare(
                        a,
                        per_model[a][metric],
                        b,
                        per_model[b][metric],
                        metric=metric,
                        binary=binary,
                        seed=study.seed,
                    ).model_dump()
                )
    _atomic_write(out_dir / "samples.jsonl", "".join(line + "\n" for line in lines))
    _atomic_write(out_dir / "results.json", json.dumps(results, indent=2, ensure_ascii=False))
    return results


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
