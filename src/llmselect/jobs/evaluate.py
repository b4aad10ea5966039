"""The evaluation job: run a study's candidates, write the results, and record the speed the
local ones measured on this machine for `fit`'s calibration."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from llmselect.catalog import Catalog, ModelCard, load_catalog
from llmselect.errors import LLMSelectError
from llmselect.evaluation.executors import ClusterRun, choose_executor, open_executor
from llmselect.evaluation.results import EvalResults
from llmselect.evaluation.runner import Progress, check_out_dir, run_models, write_results
from llmselect.evaluation.store import open_store, remove_store
from llmselect.evaluation.store_records import ProducedCounter, record_runs, store_location
from llmselect.evaluation.study import Candidate, EvalStudy, load_study
from llmselect.serving.engine import Launcher
from llmselect.sizing import detect
from llmselect.sizing.calibration import Measurement, record
from llmselect.sizing.quant import gguf_file_scheme, normalize


class NotRecorded(BaseModel):
    candidate: str
    card: str | None
    """The catalog card the candidate was matched to, if it was."""
    reason: str


class SpeedRecords(BaseModel):
    """What this run recorded for `fit`'s calibration, and why the rest was not."""

    recorded: list[Measurement]
    skipped: list[NotRecorded]


@dataclass
class Evaluation:
    results: EvalResults
    calibration: SpeedRecords | None
    """None when nothing local produced new outputs, or recording was off."""
    cluster: ClusterRun | None = None
    """Where each unit ran, for a run on a Ray cluster."""

    def to_json(self) -> dict[str, Any]:
        """`eval --json`: results.json, plus what was recorded for calibration."""
        out = self.results.to_json()
        if self.calibration:
            out["calibration"] = self.calibration.model_dump(mode="json")
        if self.cluster:
            out["cluster"] = self.cluster.model_dump(mode="json")
        return out


def evaluate(
    study_file: Path,
    out: Path,
    *,
    store: str | Path | None = None,
    fresh: bool = False,
    record_speed: bool = True,
    progress: Progress | None = None,
    ray: str | None = None,
) -> Evaluation:
    """Run (or resume) the study, write `results.json` and `samples.jsonl` into `out`.

    Outputs go to `store` (a SQLite path or a `postgresql://` URL), else the study's `store:`,
    else `out/store.sqlite`; `fresh` deletes a SQLite store first and refuses a shared one."""
    check_out_dir(out)  # results that could not be written: say so before anything runs
    study = load_study(study_file)
    base_dir = study_file.resolve().parent
    location = store_location(store, study.store, base_dir, out / "store.sqlite")
    if fresh:
        remove_store(location)
    db = open_store(location)
    # Items produced in this run, per model: only new measurements go to calibration.
    count = ProducedCounter(progress)
    spec = choose_executor(ray, study.executor)  # `ray`: --ray ADDRESS
    executor = open_executor(spec)
    try:
        # `serve` candidates' engines: started where their units run, logs in out/engines.
        engines = Launcher(out / "engines")
        dataset = run_models(study, base_dir, db, count, executor, engines)
        results = write_results(study, base_dir, dataset, db, out)
        record_runs(db, results, count.produced)
    finally:
        db.close()
    produced = count.produced
    if spec and spec.uses_ray:
        # Measured on the cluster's nodes, not on this machine: nothing for its calibration.
        cluster = ClusterRun(address=executor.address, units=executor.units)
        return Evaluation(results, None, cluster)
    speeds = record_local_speed(study, study_file, results, produced) if record_speed else None
    return Evaluation(results, speeds)


def record_local_speed(
    study: EvalStudy, study_file: Path, results: EvalResults, produced: dict[str, int]
) -> SpeedRecords | None:
    """Record each local candidate's measured speed in the sizing calibration store.

    Only models that generated new outputs here in this process (transformers, or a GGUF file
    through llama.cpp) and that match a catalog card (see `_transformers_card`, `_gguf_card`),
    on this machine as `fit` sees it (a listed GPU, or this CPU). Each is recorded under the
    engine profile its run measured, as the backend reported it: `cpu` on a CPU (the profile
    `fit` uses for any CPU), `transformers-compiled` or `transformers-eager` on CUDA (the decode
    path that ran), `llama.cpp` for a GGUF file on a GPU; and at the precision that ran (the
    torch dtype, or the GGUF file type). Servers are skipped: their hardware is unknown.
    None when no local model generated anything new.
    """
    local = [c for c in study.candidates if (c.transformers or c.gguf) and produced.get(c.name)]
    timed = [c for c in local if (lat := results.models[c.name].latency) and lat.tokens_per_s]
    if not timed:
        return None
    skipped: list[NotRecorded] = []
    try:
        catalog = load_catalog()
    except LLMSelectError as exc:
        return SpeedRecords(
            recorded=[], skipped=[NotRecorded(candidate="*", card=None, reason=str(exc))]
        )
    matched: list[tuple[Candidate, ModelCard, str | None]] = []
    for candidate in timed:
        quant: str | None = None
        if candidate.gguf:
            card, quant, reason = _gguf_card(candidate.name, candidate.gguf, study_file, catalog)
        else:
            card, reason = _transformers_card(
                candidate.name, candidate.transformers, study_file, catalog
            )
        if card is None:
            skipped.append(NotRecorded(candidate=candidate.name, card=None, reason=reason))
        else:
            matched.append((candidate, card, quant))
    if not matched:
        return SpeedRecords(recorded=[], skipped=skipped)
    try:
        # One process runs on one of the machine's devices; without a GPU, on this CPU (the
        # device `fit` sizes for here, `this-machine-cpu`).
        device, _ = detect.target_hardware(None)
    except LLMSelectError as exc:
        reason = f"this machine has no hardware profile ({exc.message})"
        skipped += [
            NotRecorded(candidate=c.name, card=card.id, reason=reason) for c, card, _ in matched
        ]
        return SpeedRecords(recorded=[], skipped=skipped)
    recorded: list[Measurement] = []
    for candidate, card, gguf_quant in matched:
        model = results.models[candidate.name]
        latency = model.latency
        assert latency is not None and latency.tokens_per_s  # `timed` above
        ran_on_gpu = (model.device or "cpu").startswith(("cuda", "gpu"))
        if ran_on_gpu != (device.kind == "gpu"):
            reason = f"it ran on {model.device}, not on {device.id}"
            skipped.append(NotRecorded(candidate=candidate.name, card=card.id, reason=reason))
            continue
        if not model.engine:
            reason = "its run recorded no engine profile"
            skipped.append(NotRecorded(candidate=candidate.name, card=card.id, reason=reason))
            continue
        # The sequences generated together (llama-cpp-python answers one prompt at a time).
        batch = max(1, round(latency.batch_p50))
        prompt = max(1, round(latency.prompt_tokens_p50 or 1))
        try:
            quant = gguf_quant or normalize(model.dtype or "")
        except LLMSelectError as exc:
            skipped.append(NotRecorded(candidate=candidate.name, card=card.id, reason=exc.message))
            continue
        measurement = Measurement(
            model=card.id,
            device=device.id,
            devices=1,
            engine=model.engine,
            quant=quant,
            batch=batch,
            context=prompt + max(1, round(latency.output_tokens_p50 or 1)),
            prompt_tokens=prompt,
            # The batch's tokens over its time (prefill included), shared by its sequences.
            decode_tokens_per_s=latency.tokens_per_s / batch,
            ttft_s=latency.ttft_p50_s or None,
            peak_memory_bytes=latency.peak_memory_bytes or None,
            measured_at=datetime.datetime.now(datetime.UTC),
            source=f"llmselect eval {study_file.name} ({candidate.name})",
        )
        record(measurement)
        recorded.append(measurement)
    return SpeedRecords(recorded=recorded, skipped=skipped)


def _transformers_card(
    name: str, folder: str | None, study_file: Path, catalog: Catalog
) -> tuple[ModelCard | None, str]:
    """The catalog card of a local transformers candidate, or why there is none."""
    from llmselect.catalog.importers.hf_config import read_config

    path = (study_file.resolve().parent / (folder or "")).resolve() / "config.json"
    try:
        config = read_config(path)
    except LLMSelectError as exc:
        return None, exc.message
    card = _card_of_shape((name, str(config.get("_name_or_path") or "")), config.get, catalog)
    if card:
        return card, ""
    return None, (
        "no catalog card with this id and shape: name the candidate by its catalog id, "
        "or `llmselect catalog import` the folder"
    )


def _card_of_shape(ids: tuple[str, ...], shape: Any, catalog: Catalog) -> ModelCard | None:
    """The first card among `ids` whose layer count and width are `shape`'s (a getter): a name
    alone is not proof that a local model is that catalog model."""
    for model_id in ids:
        card = catalog.find(model_id) if model_id else None
        if card and all(
            getattr(card.architecture, k, None) in (None, shape(k))
            for k in ("num_hidden_layers", "hidden_size")
        ):
            return card
    return None


def _gguf_card(
    name: str, file: str, study_file: Path, catalog: Catalog
) -> tuple[ModelCard | None, str | None, str]:
    """The catalog card of a GGUF candidate (by its name, or the base model its header names,
    with the header's shape) and the file's precision; or why there is none."""
    from llmselect.catalog.importers.gguf_file import import_gguf

    path = (study_file.resolve().parent / file).resolve()
    try:
        header = import_gguf(path, model_id=name)
    except LLMSelectError as exc:
        return None, None, exc.message
    quant = gguf_file_scheme(header.quantization)
    if quant is None:
        return None, None, f"its file type {header.quantization!r} is not one `fit` sizes"
    ids = (name, header.base_model or "")
    card = _card_of_shape(ids, lambda k: getattr(header.architecture, k, None), catalog)
    if card:
        return card, quant, ""
    return (
        None,
        None,
        "no catalog card with this id and shape: name the candidate by its catalog id, "
        "or `llmselect catalog import` the file",
    )
