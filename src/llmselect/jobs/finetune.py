"""The `llmselect finetune` job: one of the orchestrators above the stages.

It reads the study, then runs the fine-tuning library's steps in order: license gate, memory
pre-flight (before any weights are loaded), training, model card, and the before/after
evaluation with the optional learning curve. It writes `finetune.json`, which `llmselect
select` reads back (`finetune.result`). The CLI and the demo call it; no stage imports it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from llmselect.errors import LLMSelectError, UsageError
from llmselect.finetune.checkpoints import checkpoint_dirs
from llmselect.finetune.config import BaseModelRef, StepCallback, TrainConfig, TrainRun
from llmselect.finetune.curve import DEFAULT_FRACTIONS, BeforeAfter, LearningCurve, curve_counts
from llmselect.finetune.data import TrainData, study_examples, subset, tokenize
from llmselect.finetune.gate import GateResult
from llmselect.finetune.loop import train
from llmselect.finetune.model import load_tokenizer, require_qlora
from llmselect.finetune.outputs import merged_model
from llmselect.finetune.preflight import Preflight, preflight, refusal
from llmselect.finetune.result import FinetuneResult
from llmselect.quiet import quiet_transformers as _quiet_loading
from llmselect.study import RunSpec, SelectStudy, load_select_study


class FinetuneRequest(BaseModel):
    study: Path
    model: str
    """The id (or name) of a `candidates.run` entry: its transformers folder is the base."""
    config: TrainConfig = Field(default_factory=TrainConfig)
    out: Path | None = None
    """Default: STUDY_DIR/finetuned/NAME."""
    seed: int | None = None
    """Overrides `config.seed`; default: the study's seed."""
    resume: bool = False
    curve: bool = False
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    gpu: str | None = None
    force: bool = False
    against: list[str] = Field(default_factory=list)
    """Other run entries evaluated as they are, to see whether the fine-tune beats them."""
    evaluate: bool = True


@dataclass
class Events:
    """What the CLI shows while the job runs; every callback is optional."""

    gate: Callable[[GateResult], None] | None = None
    preflight: Callable[[Preflight], None] | None = None
    step: StepCallback | None = None
    evaluation: Callable[[str, int, int], None] | None = None


def _run_entry(study: SelectStudy, wanted: str, study_file: Path) -> RunSpec:
    for run in study.candidates.run:
        if wanted.lower() in (run.id.lower(), run.name.lower()):
            if not run.transformers:
                raise UsageError(
                    f"{run.id} is not a local transformers folder: only those can be fine-tuned",
                    file=study_file,
                    field="candidates.run",
                )
            return run
    import difflib

    known = [r.id for r in study.candidates.run]
    close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.5)
    raise UsageError(
        f"{wanted!r} is not in the study's candidates.run",
        file=study_file,
        field="candidates.run",
        hint=(f"did you mean {', '.join(close)}?" if close else "")
        or ("known: " + ", ".join(known) if known else "add it under candidates.run"),
    )


def _ref(run: RunSpec, study_dir: Path) -> BaseModelRef:
    path = (study_dir / (run.transformers or "")).resolve()
    if not (path / "config.json").is_file():
        raise LLMSelectError("not a model folder (no config.json)", file=path)
    return BaseModelRef(
        id=run.id, path=path, allow_pickle=run.allow_pickle, trust_remote_code=run.trust_remote_code
    )


def finetune_study(request: FinetuneRequest, events: Events | None = None) -> FinetuneResult:
    """Gate, pre-flight, train, write the model card, then measure before and after."""
    from llmselect.catalog import load_catalog
    from llmselect.catalog.importers.hf_folder import import_hf_folder
    from llmselect.finetune.card import write_card
    from llmselect.finetune.gate import license_gate, stop_error

    events = events or Events()
    study, profile = load_select_study(request.study)
    study_dir = request.study.resolve().parent
    run = _run_entry(study, request.model, request.study)
    base = _ref(run, study_dir)
    out = (request.out or study_dir / "finetuned" / run.name).resolve()
    seed = request.seed if request.seed is not None else study.seed
    config = request.config.model_copy(update={"seed": seed})
    if config.method == "qlora":
        require_qlora()  # say so now, not after the checks
    if checkpoint_dirs(out) and not request.resume:
        raise UsageError(
            f"{out} holds checkpoints of an earlier run",
            file=out,
            hint="pass --resume to continue it, or choose another --out",
        )

    catalog = load_catalog()
    card = catalog.find(run.id)
    if card is None:
        # A local folder describes itself, as in `llmselect select`; the verdicts need it listed.
        card = import_hf_folder(base.path, model_id=run.id)
        catalog.add(card, replace=True)
    gate = license_gate(
        card,
        catalog,
        profile,
        derivative_name=out.name,
        accept_unknown_data=study.license.accept_unknown_data,
        force=request.force,
    )
    if events.gate:
        events.gate(gate)
    if not gate.proceeds:
        raise stop_error(gate)

    tokenizer = load_tokenizer(base)
    examples = study_examples(study, study_dir, tokenizer, study_file=request.study)
    data = tokenize(tokenizer, examples, config.max_length)
    check = preflight(
        base.path / "config.json",
        config,
        data,
        gpu=request.gpu,
        price_per_gpu_hour=study.targets.price_per_gpu_hour,
    )
    if events.preflight:
        events.preflight(check)
    if not check.memory.fits:
        raise refusal(check)

    if not request.resume:
        shutil.rmtree(out / "evaluation", ignore_errors=True)  # outputs of other weights
    out.mkdir(parents=True, exist_ok=True)
    training = train(
        base, data, out, config, resume=request.resume, label=run.name, progress=events.step
    )
    dataset_name = study.finetune_dataset.path if study.finetune_dataset else "unknown"
    files = {"model": str(out), "card": str(out / "README.md")}
    write_card(
        out, base=card, gate=gate, training=training, dataset=dataset_name, data_digest=data.digest
    )
    _write_json(out / "training.json", training.model_dump(mode="json"))
    files["training"] = str(out / "training.json")

    evaluation: BeforeAfter | None = None
    curve: LearningCurve | None = None
    leaked, leak_warnings = _leakage(study, study_dir)
    warnings = list(data.warnings) + leak_warnings
    if request.evaluate and study.dataset is None:
        warnings.append("the study has no evaluation `dataset`: no before/after comparison")
    elif request.evaluate:
        evaluation, curve = _measure(
            request, config, study, study_dir, run, base, out, data, training, events
        )
        write_card(
            out,
            base=card,
            gate=gate,
            training=training,
            dataset=dataset_name,
            data_digest=data.digest,
            evaluation=evaluation,
            curve=curve,
        )
        files["evaluation"] = str(out / "evaluation" / "results.json")
    files["summary"] = str(out / "finetune.json")
    result = FinetuneResult(
        study=study.name,
        base_model=run.id,
        output=str(out),
        gate=gate,
        preflight=check,
        training=training,
        evaluation=evaluation,
        curve=curve,
        leaked_eval_items=leaked,
        warnings=warnings,
        files=files,
    )
    # `llmselect select` shows the fine-tunes it finds beside the study (selection/finetuned.py).
    _write_json(out / "finetune.json", result.model_dump(mode="json"))
    return result


def _leakage(study: SelectStudy, study_dir: Path) -> tuple[int, list[str]]:
    """Evaluation items also in the training data, and the warning to show beside the numbers:
    on those items a before/after gain measures recall, not the task learned."""
    from llmselect.finetune.data_check import check_data

    train, evaluation = study.finetune_dataset, study.dataset
    if train is None or evaluation is None or train.fields != evaluation.fields:
        return 0, []  # `llmselect data check` compares sets with other field names
    report = check_data(study_dir / train.path, study_dir / evaluation.path, fields=train.fields)
    leak = report.leakage
    if leak is None or not leak.leaked:
        return 0, []
    return len(leak.leaked), [
        f"{len(leak.leaked)} of {leak.eval_rows} evaluation items are also in the training data "
        f"({leak.identical_input} with an identical input, {leak.near_input} near): on them the "
        "gain measures recall of what was trained, not how the model does on new items"
    ]


def _measure(
    request: FinetuneRequest,
    config: TrainConfig,
    study: SelectStudy,
    study_dir: Path,
    run: RunSpec,
    base: BaseModelRef,
    out: Path,
    data: TrainData,
    training: TrainRun,
    events: Events,
) -> tuple[BeforeAfter, LearningCurve | None]:
    from llmselect.evaluation.study import Candidate
    from llmselect.finetune.curve import before_after, evaluate_models, learning_curve

    eval_dir = out / "evaluation"
    tuned_name = f"{run.name}-{config.method}"

    def candidate(name: str, path: Path, entry: RunSpec = run) -> Candidate:
        # Merged and fully tuned folders are written here in safetensors: no pickle needed.
        own = path == _ref(entry, study_dir).path
        return Candidate(
            name=name,
            transformers=str(path),
            batch_size=entry.batch_size,
            allow_pickle=entry.allow_pickle and own,
            trust_remote_code=entry.trust_remote_code,
            compile=entry.compile,
        )

    tuned = out if config.method == "full" else merged_model(base, out, eval_dir)
    candidates = [candidate(run.name, base.path), candidate(tuned_name, tuned)]
    for other in request.against:
        entry = _run_entry(study, other, request.study)
        if entry.name in {c.name for c in candidates}:
            raise UsageError(
                f"--against {other}: {entry.name} is already measured", field="--against"
            )
        candidates.append(candidate(entry.name, _ref(entry, study_dir).path, entry))
    points: list[tuple[str, int]] = []
    if request.curve:
        counts = curve_counts(len(data.examples), request.fractions)
        for count in counts[:-1]:
            smaller = subset(data, count, config.seed)
            folder = out / "curve" / f"{count}-examples"
            folder.mkdir(parents=True, exist_ok=True)
            label = f"{run.name} on {count} examples"
            part = train(
                base,
                smaller,
                folder,
                config,
                resume=request.resume,
                label=label,
                progress=events.step,
            )
            name = f"{tuned_name}-{count}"
            path = folder if config.method == "full" else merged_model(base, folder, eval_dir)
            candidates.append(candidate(name, path))
            points.append((name, part.examples))
        points.append((tuned_name, training.examples))
    with _quiet_loading():
        results = evaluate_models(
            study, study_dir, candidates, eval_dir, progress=events.evaluation
        )
    others = [c.name for c in candidates[2 : 2 + len(request.against)]]
    comparison = before_after(results, study, run.name, tuned_name, others)
    curve = None
    if request.curve:
        curve = learning_curve(results.samples, study, run.name, points, seed=study.seed)
    return comparison, curve


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
