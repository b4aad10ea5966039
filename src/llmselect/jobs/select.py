"""The selection job: catalog → licensing → sizing → evaluation → fine-tunes → ranking.

It runs the judging stages of `selection/judging.py` in order over the pool, runs the study's
own models through the evaluation (stored as they come under `out_dir/evaluation`), and ranks
what is left (`selection/ranking.py`). The CLI's `select` and the demo call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmselect.catalog.catalog import Catalog
from llmselect.licensing.profile import UseProfile
from llmselect.selection import judging
from llmselect.selection.finetuned import collect_finetuned
from llmselect.selection.judging import Progress
from llmselect.selection.result import Selection
from llmselect.study import SelectStudy

if TYPE_CHECKING:
    # The evaluation pulls in numpy and scipy: only a study that measures pays for them.
    from llmselect.evaluation.executors import ClusterRun
    from llmselect.evaluation.results import EvalResults
    from llmselect.evaluation.study import EvalStudy


def select(
    study: SelectStudy,
    profile: UseProfile,
    study_path: Path,
    *,
    out_dir: Path,
    catalog: Catalog | None = None,
    measure: bool = True,
    store_path: str | Path | None = None,
    progress: Progress | None = None,
) -> tuple[Selection, ClusterRun | None]:
    """Run every stage and rank what is left. Measured results are stored under `out_dir`.
    With the selection comes where its models ran, when they ran on a Ray cluster."""
    from llmselect.catalog import load_catalog
    from llmselect.selection.ranking import rank
    from llmselect.sizing.detect import target_hardware

    catalog = catalog or load_catalog()
    device, devices = target_hardware(study.hardware)
    ctx = judging.Context(study, profile, study_path, catalog, device, devices)
    demo_ids = {r.id.lower() for r in study.candidates.run if r.demo}
    cards = judging.pool(ctx)
    entries = {c.id.lower(): judging.new_entry(c, c.id.lower() in demo_ids) for c in cards}
    stages = {"catalog": f"{len(cards)} of {len(catalog)} models in the pool"}

    for card in cards:
        judging.judge_license(ctx, entries[card.id.lower()], card)
    verdicts = [e.verdict for e in entries.values() if e.verdict]
    stages["license"] = ", ".join(
        f"{verdicts.count(v)} {v}" for v in ("allowed", "conditional", "blocked", "unknown")
    )

    engine_for = judging.engine_for(ctx)
    for card in cards:
        judging.judge_fit(ctx, entries[card.id.lower()], card, engine_for)
    hardware = f"{devices}x {device.id}" if devices > 1 else device.id
    fitting = sum(1 for e in entries.values() if e.fit and e.fit.fits)
    stages["sizing"] = f"{fitting} of {len(cards)} fit {hardware}"
    load_warnings = judging.attach_benches(ctx, entries)
    if study.bench:
        stages["sizing"] += f"; latency under load measured for {len(study.bench)}"

    results, cluster = None, None
    eval_study = study.eval_study()
    if not measure:
        stages["evaluation"] = "skipped (--no-measure)"
    elif eval_study is None:
        stages["evaluation"] = "skipped: no models to run (candidates.run) or no dataset"
    else:
        results, cluster = _evaluate(eval_study, ctx.base_dir, out_dir, store_path, progress)
        stages["evaluation"] = judging.attach_evaluation(ctx, entries, results)

    dataset_sha = results.dataset.sha256 if results else None
    finetuned, finetune_warnings = collect_finetuned(study_path, dataset_sha)
    stages["finetuning"] = judging.finetuning_summary(finetuned)
    added = sum(judging.add_finetuned(ctx, entries, tuned, engine_for) for tuned in finetuned)
    if added:
        stages["catalog"] += f", and {added} fine-tune{'s' * (added > 1)} found beside the study"

    benchmarks = {c.id: {b.name: b.value for b in c.benchmarks} for c in cards}
    ranked = rank(ctx.study, list(entries.values()), benchmarks)
    selection = Selection(
        study=study.name,
        description=study.description,
        hardware=hardware,
        targets=study.targets,
        profile=profile,
        ranking=study.ranking,
        entries=ranked.entries,
        comparisons=[c.model_dump() for c in results.comparisons] if results else [],
        recommendation=ranked.recommendation,
        finetuned=finetuned,
        stages=stages | {"ranking": ranked.summary},
        warnings=(results.dataset.warnings if results else [])
        + (_items_failed(results) if results else [])
        + load_warnings
        + ranked.warnings
        + finetune_warnings,
        reproducibility=judging.reproducibility(ctx, dataset_sha),
    )
    return selection, cluster


def _items_failed(results: EvalResults) -> list[str]:
    """A model that got no output for some items is scored on the others: say so, or its
    score reads as measured on the whole dataset."""
    from llmselect.selection import sentences

    items = results.dataset.items
    return [
        sentences.items_failed(name, model.failed, items)
        for name, model in results.models.items()
        if model.failed
    ]


def _evaluate(
    study: EvalStudy,
    base_dir: Path,
    out_dir: Path,
    store_path: str | Path | None,
    progress: Progress | None,
) -> tuple[EvalResults, ClusterRun | None]:
    """Run (or resume) the study's own models on its dataset; results under `evaluation/`,
    outputs in `store_path`, else the study's `store:`, else `evaluation/store.sqlite`. With
    the results, where each unit ran when the models ran on a Ray cluster."""
    from llmselect.evaluation.executors import ClusterRun, open_executor
    from llmselect.evaluation.runner import run_models, write_results
    from llmselect.evaluation.store import open_store
    from llmselect.evaluation.store_records import ProducedCounter, record_runs, store_location
    from llmselect.serving.engine import Launcher

    eval_dir = out_dir / "evaluation"
    db = open_store(store_location(store_path, study.store, base_dir, eval_dir / "store.sqlite"))
    count = ProducedCounter(progress)
    try:
        # Here, or on the Ray cluster the study's `executor:` (or `--ray`) names.
        executor = open_executor(study.executor)
        engines = Launcher(eval_dir / "engines")  # `serve` candidates' engines
        dataset = run_models(study, base_dir, db, count, executor, engines)
        results = write_results(study, base_dir, dataset, db, eval_dir)
        record_runs(db, results, count.produced)
        cluster = None
        if study.executor and study.executor.uses_ray:
            cluster = ClusterRun(address=executor.address, units=executor.units)
        return results, cluster
    finally:
        db.close()


@dataclass(frozen=True)
class SelectOutcome:
    """`select`: the selection, and the report files written (none with --no-report)."""

    selection: Selection
    files: dict[str, Path]
    cluster: ClusterRun | None = None
    """Where each unit ran, when the study's models ran on a Ray cluster."""

    def to_json(self) -> dict[str, Any]:
        """`select --json`: the selection, the files written, and `cluster` only when the
        models ran on a Ray cluster (a run here has no such key)."""
        files = {kind: str(path) for kind, path in self.files.items()}
        out = self.selection.model_dump(mode="json") | {"files": files}
        if self.cluster:
            out["cluster"] = self.cluster.model_dump(mode="json")
        return out


def select_study(
    study_file: Path,
    *,
    out_dir: Path | None = None,
    report: bool = True,
    measure: bool = True,
    fresh: bool = False,
    store: str | Path | None = None,
    progress: Progress | None = None,
    ray: str | None = None,
) -> SelectOutcome:
    """The `select` command's job: load the study, select, and write the report (under
    STUDY_DIR/selection unless `out_dir`). `fresh` drops the stored outputs first (a SQLite
    store; a shared PostgreSQL one is refused). `store` overrides the study's `store:`."""
    from llmselect.study import load_select_study

    study, profile = load_select_study(study_file)
    if ray is not None:  # --ray ADDRESS
        from llmselect.evaluation.executors import choose_executor

        study = study.model_copy(update={"executor": choose_executor(ray, study.executor)})
    out_dir = out_dir or study_file.resolve().parent / "selection"
    base_dir = study_file.resolve().parent
    location = store  # `_evaluate` falls back on the study's `store:`, then the default
    if fresh:
        # Only here: store_records imports the evaluation's statistics (numpy and scipy, over
        # a second), which a selection that measures nothing does without.
        from llmselect.evaluation.store import remove_store
        from llmselect.evaluation.store_records import store_location

        location = store_location(
            store, study.store, base_dir, out_dir / "evaluation" / "store.sqlite"
        )
        remove_store(location)
    selection, cluster = select(
        study,
        profile,
        study_file,
        out_dir=out_dir,
        measure=measure,
        store_path=location,
        progress=progress,
    )
    files: dict[str, Path] = {}
    if report:
        from llmselect.report import write_report

        files = write_report(selection, out_dir)
    return SelectOutcome(selection, files, cluster)
