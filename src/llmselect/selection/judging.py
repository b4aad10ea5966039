"""Judging the candidates, stage by stage: the pool from the catalog, the license verdict, the
fit on the hardware, the measured scores, the fine-tunes found beside the study.

Each stage annotates an entry instead of dropping it, so every model that was considered is
reported with the reason it is out and what would let it in. `jobs/select.py` runs them in order.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmselect.catalog.catalog import Catalog, Criteria
from llmselect.catalog.schema import Architecture, ModelCard
from llmselect.errors import LLMSelectError
from llmselect.licensing.profile import UseProfile
from llmselect.selection.result import (
    Entry,
    Exclusion,
    Finetuned,
    LoadLevel,
    MeasuredLatency,
    MetricScore,
    Reproducibility,
)
from llmselect.sizing.engines import Engine
from llmselect.sizing.estimate import Fit, Shapes
from llmselect.sizing.hardware import Device
from llmselect.sizing.quant import gguf_file_scheme
from llmselect.study import RunSpec, SelectStudy, Targets, raw_line

if TYPE_CHECKING:
    # The evaluation stage pulls in numpy and scipy: only a study that measures pays for them.
    from llmselect.evaluation.results import EvalResults, ModelResult, SampleLine
    from llmselect.serving.results import BenchResult

Progress = Callable[[str, int, int], None]
"""Called with (what, done, total) while models are measured."""

PACKAGES = ("pydantic", "numpy", "scipy", "torch", "transformers", "peft", "llama_cpp_python")


class Context:
    """What every stage reads: the study, where it lives, the catalog, the target hardware."""

    def __init__(
        self,
        study: SelectStudy,
        profile: UseProfile,
        study_path: Path,
        catalog: Catalog,
        device: Device,
        devices: int,
    ) -> None:
        self.study = study
        self.profile = profile
        self.path = study_path
        self.base_dir = study_path.resolve().parent
        self.catalog = catalog
        self.device = device
        self.devices = devices
        self.file_quants: dict[str, str] = {}
        """Lower-cased id -> the precision of the GGUF file a candidate runs: what is measured
        is what is sized."""
        self._shapes: dict[str, Shapes] = {}

    def shapes(self, arch: Architecture) -> Shapes:
        """Sizing's work on an architecture, done once for every card that has it (fine-tunes
        and repacks share their base's: the catalog's 329 cards have 192). The key is every
        field's value, so only an identical architecture shares, and nothing changes an
        architecture while a selection runs."""
        key = arch.model_dump_json()
        if key not in self._shapes:
            self._shapes[key] = Shapes(arch)
        return self._shapes[key]


# -- catalog --------------------------------------------------------------------------------


def pool(ctx: Context) -> list[ModelCard]:
    """The candidate ids, the catalog filter's matches and the models to run, once each."""
    pool: dict[str, ModelCard] = {}
    for index, model_id in enumerate(ctx.study.candidates.ids):
        card = ctx.catalog.find(model_id)
        if card is None:
            raise _unknown(ctx, model_id, ("candidates", "ids", index))
        pool.setdefault(card.id.lower(), card)
    spec = ctx.study.candidates.filter
    if spec is not None:
        criteria = Criteria(
            min_params=spec.min_params,
            max_params=spec.max_params,
            max_active_params=spec.max_active_params,
            min_context=spec.min_context,
            family=spec.family,
            organization=spec.organization,
            kind=spec.kind,
            licenses={x.lower() for x in spec.licenses} if spec.licenses else None,
            released_after=spec.released_after,
            text=spec.text,
        )
        for card in ctx.catalog.search(criteria):
            pool.setdefault(card.id.lower(), card)
    for index, run in enumerate(ctx.study.candidates.run):
        card = ctx.catalog.find(run.id)
        if run.gguf or _served_gguf(run):
            header = _gguf_card(ctx, run, index)
            card = card or header
            scheme = gguf_file_scheme(header.quantization)
            if scheme:
                ctx.file_quants[card.id.lower()] = scheme
        card = card or _card_from_folder(ctx, run, index)
        pool[card.id.lower()] = card
    return list(pool.values())


def _card_from_folder(ctx: Context, run: RunSpec, index: int) -> ModelCard:
    """A local transformers folder not in the catalog describes itself (config + model card)."""
    if not run.transformers:
        raise _unknown(ctx, run.id, ("candidates", "run", index, "id"))
    from llmselect.catalog.importers.hf_folder import import_hf_folder

    card = import_hf_folder(ctx.base_dir / run.transformers, model_id=run.id)
    ctx.catalog.add(card, replace=True)
    return card


def _served_gguf(run: RunSpec) -> bool:
    """A served engine reads a GGUF file (llama.cpp's servers)."""
    return bool(run.serve and run.file and run.file.lower().endswith(".gguf"))


def _gguf_card(ctx: Context, run: RunSpec, index: int) -> ModelCard:
    """A GGUF file describes itself in its header (architecture, quantization, parameters)."""
    from llmselect.catalog.importers.gguf_file import import_gguf

    key = "gguf" if run.gguf else "file"
    given = run.gguf or run.file
    assert given is not None
    path = ctx.base_dir / given
    if not path.is_file():
        raise LLMSelectError(
            f"no such GGUF file: {path}",
            file=ctx.path,
            line=raw_line(ctx.path, "candidates", "run", index, key),
            field=f"candidates.run.{index}.{key}",
        )
    card = import_gguf(path, model_id=run.id)
    if not ctx.catalog.find(run.id):
        ctx.catalog.add(card, replace=True)
    return card


def _unknown(ctx: Context, model_id: str, keys: tuple[str | int, ...]) -> LLMSelectError:
    import difflib

    close = difflib.get_close_matches(model_id, [c.id for c in ctx.catalog], n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see `llmselect catalog search`"
    return LLMSelectError(
        f"unknown model {model_id!r}",
        file=ctx.path,
        line=raw_line(ctx.path, *keys),
        field=".".join(str(k) for k in keys),
        hint=hint,
    )


def new_entry(card: ModelCard, demo: bool) -> Entry:
    return Entry(
        id=card.id,
        name=card.display_name,
        family=card.family,
        organization=card.organization,
        params=card.params,
        active_params=card.active_params,
        kind=[str(k) for k in card.kind],
        context_length=card.architecture.context_length,
        demo=demo,
    )


# -- licensing ------------------------------------------------------------------------------

_RELAXABLE: list[tuple[str, Any, str]] = [
    ("commercial", False, "if your use were non-commercial"),
    ("hosted_service", False, "if you did not offer the model as a hosted service"),
    ("distribute_derivative", False, "if you did not distribute a modified model"),
    ("redistribute_weights", False, "if you did not redistribute the weights"),
    ("train_other_models_on_outputs", False, "if you did not train other models on its outputs"),
    ("monthly_active_users", None, "with no monthly-active-user figure to meet"),
    ("field_of_use", [], "outside your restricted fields of use"),
]
"""Profile changes tried, one at a time, to say what would lift a license block."""


def judge_license(ctx: Context, entry: Entry, card: ModelCard) -> None:
    from llmselect.licensing.openness import openness
    from llmselect.licensing.verdicts import license_report

    report = license_report(card, ctx.catalog, ctx.profile)
    entry.license = report
    entry.openness = openness(card, ctx.catalog).mof_class
    policy = ctx.study.license
    reasons = [r for c in report.components.values() for r in c.reasons]
    duties = list(
        dict.fromkeys(r.message for r in reasons if r.verdict == "conditional" and not r.review)
    )
    # The verdict is the licensing stage's own (one rule, `overall_verdict`); what the study
    # accepts decides only whether the model stays in the pool.
    data = report.components["data"].reasons
    unknown = [
        r
        for name, c in report.components.items()
        if not (name == "data" and policy.accept_unknown_data)
        for r in c.reasons
        if r.verdict == "unknown"
    ]
    if not policy.accept_unknown_data:
        unknown += [r for r in data if r.review]
    review = [
        r.message if r.review else "review the training data's terms: " + r.message
        for r in data
        if (r.review or r.verdict == "unknown") and policy.accept_unknown_data
    ]
    entry.duties = list(dict.fromkeys(duties + review))
    entry.verdict = report.overall
    if report.overall == "blocked":
        blocking = next(r.message for r in reasons if r.verdict == "blocked")
        entry.exclusions.append(
            Exclusion(
                stage="license",
                reason=blocking,
                relax=_license_relax(ctx, card),
                key="license.use",
            )
        )
    elif unknown:
        entry.exclusions.append(
            Exclusion(
                stage="license",
                reason=unknown[0].message,
                relax="if a lawyer clears the license",
                key="license.review",
            )
        )
    elif duties and not policy.accept_conditional:
        entry.exclusions.append(
            Exclusion(
                stage="license",
                reason="allowed only with duties: " + "; ".join(duties),
                relax="if you can accept its license duties",
                key="license.accept_conditional",
            )
        )


def _license_relax(ctx: Context, card: ModelCard) -> str | None:
    from llmselect.licensing.verdicts import license_report

    for field, value, words in _RELAXABLE:
        if getattr(ctx.profile, field) == value:
            continue
        relaxed = ctx.profile.model_copy(update={field: value})
        if license_report(card, ctx.catalog, relaxed).overall != "blocked":
            return words
    return None


# -- sizing and targets ---------------------------------------------------------------------


def engine_for(ctx: Context) -> Callable[[str, bool], Engine]:
    from llmselect.sizing.engines import EngineLookup

    return EngineLookup(ctx.device, ctx.catalog, ctx.study.targets.engine)


def _target_misses(ctx: Context, fit: Fit) -> list[tuple[str, str, str]]:
    """(reason, relax, key) for each target the estimate misses."""
    t = ctx.study.targets
    est = fit.estimates
    misses = []
    if t.ttft_p95_s is not None and est.ttft_s > t.ttft_p95_s:
        misses.append(
            (
                f"time to first token {est.ttft_s:.2g} s at {fit.quant} exceeds "
                f"the {t.ttft_p95_s:g} s target",
                f"if you relax targets.ttft_p95_s to {_round_up(est.ttft_s)}",
                "targets.ttft_p95_s",
            )
        )
    if t.tokens_per_s is not None and est.decode_tokens_per_s < t.tokens_per_s:
        misses.append(
            (
                f"{est.decode_tokens_per_s:.3g} tokens/s per user at {fit.quant} is under "
                f"the {t.tokens_per_s:g} target",
                f"if you relax targets.tokens_per_s to {_round_down(est.decode_tokens_per_s)}",
                "targets.tokens_per_s",
            )
        )
    cost = est.cost_per_million_tokens
    ceiling = t.max_cost_per_million_tokens
    if ceiling is not None and cost is not None and cost > ceiling:
        misses.append(
            (
                f"${cost:.3g} per million tokens exceeds the ${ceiling:g} ceiling",
                f"if you relax targets.max_cost_per_million_tokens to {_round_up(cost)}",
                "targets.max_cost_per_million_tokens",
            )
        )
    return misses


def _round_up(value: float) -> str:
    return f"{float(f'{value * 1.05:.2g}'):g}"


def _round_down(value: float) -> str:
    return f"{float(f'{value * 0.95:.2g}'):g}"


def judge_fit(
    ctx: Context, entry: Entry, card: ModelCard, engine_for: Callable[[str, bool], Engine]
) -> None:
    from llmselect.sizing.estimate import estimate, schemes_for_card

    t = ctx.study.targets
    arch = card.architecture
    if not arch.is_complete:
        entry.exclusions.append(
            Exclusion(
                stage="sizing",
                reason="its architecture is not fully known, so its memory cannot be estimated",
                relax="if its config.json were imported (`llmselect catalog import`)",
                key="catalog",
            )
        )
        return
    if arch.context_length and arch.context_length < t.context:
        entry.exclusions.append(
            Exclusion(
                stage="sizing",
                reason=f"its context is {arch.context_length:,} tokens; "
                f"the study needs {t.context:,}",
                relax=f"if you cut targets.context to {arch.context_length}",
                key="targets.context",
            )
        )
    shapes = ctx.shapes(arch)  # the same for every precision tried
    # A release below 16 bits (gpt-oss in MXFP4) starts at its own format.
    schemes = schemes_for_card(card, ctx.device, list(t.quant) if t.quant else None, shapes=shapes)
    measured = ctx.file_quants.get(card.id.lower())
    if measured:
        if t.quant and measured not in schemes:
            entry.exclusions.append(
                Exclusion(
                    stage="sizing",
                    reason=f"its GGUF file is {measured}, which targets.quant does not allow",
                    relax=f"if you add {measured} to targets.quant",
                    key="targets.quant",
                )
            )
        schemes = [measured]  # the file's own precision: its scores were measured at it
    fits: list[Fit] = []
    for scheme in schemes:
        fit = estimate(
            card,
            ctx.device,
            ctx.devices,
            engine_for(scheme, measured is not None),
            quant=scheme,
            context=t.context,
            batch=t.concurrent_users,
            prompt_tokens=t.prompt_tokens,
            price_per_device_hour=t.price_per_gpu_hour,
            shapes=shapes,
        )
        entry.tried.append(fit.quant)
        if not fit.fits:
            continue
        fits.append(fit)
        if not _target_misses(ctx, fit):
            entry.fit = fit
            return
    if fits:
        # It fits but misses a target at every precision: report the fastest one.
        entry.fit = max(fits, key=lambda f: f.estimates.decode_tokens_per_s)
        for reason, relax, key in _target_misses(ctx, entry.fit):
            entry.exclusions.append(Exclusion(stage="targets", reason=reason, relax=relax, key=key))
        return
    entry.fit = fit  # the smallest precision tried, to show how far it is
    need = fit.memory.total_bytes * ctx.devices
    have = fit.memory.available_bytes * ctx.devices
    relax = f"if you had {need / 2**30:.0f} GiB of accelerator memory"
    if fit.max_context >= 512:
        relax += f" (or cut targets.context to {fit.max_context})"
    elif fit.max_batch >= 1 and t.concurrent_users > 1:
        relax += f" (or cut targets.concurrent_users to {fit.max_batch})"
    entry.exclusions.append(
        Exclusion(
            stage="sizing",
            reason=f"does not fit even at {fit.quant}: needs {need / 2**30:.1f} GiB, "
            f"{have / 2**30:.1f} GiB available",
            relax=relax,
            key="hardware",
        )
    )


_MEASURED_BY_BENCH = ("targets.ttft_p95_s", "targets.tokens_per_s")


def attach_benches(ctx: Context, entries: dict[str, Entry]) -> list[str]:
    """Each bench of the study (`bench:`) onto its model's entry; the warnings they give."""
    from llmselect.catalog.catalog import UnknownModel
    from llmselect.serving.results import read_bench

    warnings = []
    for index, ref in enumerate(ctx.study.bench):
        keys: tuple[str | int, ...] = ("bench", index, "id")
        try:
            entry = entries.get(ctx.catalog.get(ref.id).id.lower())
        except UnknownModel:
            raise _unknown(ctx, ref.id, keys) from None
        if entry is None:
            raise LLMSelectError(
                f"the bench of {ref.id!r} is of a model that is not among the candidates",
                file=ctx.path,
                line=raw_line(ctx.path, *keys),
                field=".".join(str(k) for k in keys),
                hint="add it to candidates (ids, filter or run), or remove its bench",
            )
        summary = ctx.base_dir / ref.summary
        note = attach_load(ctx, entry, read_bench(summary), summary)
        if note:
            warnings.append(note)
    return warnings


def _meets(level: LoadLevel, targets: Targets) -> bool:
    """The level met the speed targets, with every request answered."""
    if level.errors:
        return False
    if targets.ttft_p95_s is not None and (
        level.ttft_p95_s is None or level.ttft_p95_s > targets.ttft_p95_s
    ):
        return False
    return targets.tokens_per_s is None or (
        level.tokens_per_s is not None and level.tokens_per_s >= targets.tokens_per_s
    )


def attach_load(ctx: Context, entry: Entry, bench: BenchResult, summary: Path) -> str | None:
    """A bench's latency under load onto the entry, and the speed targets judged on it instead
    of the estimate (at the level of the study's concurrent users). Says when the bench never
    reached that many users."""
    from llmselect.selection.result import MeasuredLoad

    levels = [
        LoadLevel(
            concurrency=level.concurrency,
            ttft_p95_s=level.ttft_s.p95,
            tokens_per_s=level.output_tokens_per_s_per_user.p50,
            output_tokens_per_s=level.output_tokens_per_s,
            requests_per_s=level.requests_per_s,
            errors=level.errors,
        )
        for level in bench.levels
        if level.profile == "concurrency" and level.concurrency and level.completed
    ]
    if not levels:
        raise LLMSelectError(
            "the bench has no concurrency level with completed requests",
            file=summary,
            hint="bench the server with --concurrency (a sweep such as 1,4,16)",
        )
    users = ctx.study.targets.concurrent_users
    levels.sort(key=lambda level: level.concurrency)
    at = next((level for level in levels if level.concurrency >= users), levels[-1])
    t = ctx.study.targets
    meeting = [level.concurrency for level in levels if _meets(level, t)]
    entry.load = MeasuredLoad(
        summary=str(summary),
        url=bench.url,
        levels=levels,
        at=at,
        most_users=max(meeting) if meeting and (t.ttft_p95_s or t.tokens_per_s) else None,
    )
    if entry.fit is None or not entry.fit.fits:
        return None
    entry.exclusions = [x for x in entry.exclusions if x.key not in _MEASURED_BY_BENCH]
    where = f"measured at {at.concurrency} concurrent requests"
    if t.ttft_p95_s is not None and at.ttft_p95_s is not None and at.ttft_p95_s > t.ttft_p95_s:
        entry.exclusions.append(
            Exclusion(
                stage="targets",
                reason=f"p95 time to first token {at.ttft_p95_s:.2g} s {where} exceeds "
                f"the {t.ttft_p95_s:g} s target",
                relax=f"if you relax targets.ttft_p95_s to {_round_up(at.ttft_p95_s)}",
                key="targets.ttft_p95_s",
            )
        )
    speed = at.tokens_per_s
    if t.tokens_per_s is not None and speed is not None and speed < t.tokens_per_s:
        entry.exclusions.append(
            Exclusion(
                stage="targets",
                reason=f"{speed:.3g} tokens/s per user {where} is under the "
                f"{t.tokens_per_s:g} target",
                relax=f"if you relax targets.tokens_per_s to {_round_down(speed)}",
                key="targets.tokens_per_s",
            )
        )
    if at.concurrency < users:
        return (
            f"{entry.id} was benched up to {at.concurrency} concurrent requests; the targets "
            f"ask for {users} users, so its speed there is read at {at.concurrency}"
        )
    return None


# -- evaluation -----------------------------------------------------------------------------


def attach_evaluation(ctx: Context, entries: dict[str, Entry], results: EvalResults) -> str:
    """Each run model's measured scores, latency and examples onto its entry; the stage's line."""
    per_item = _composite_per_item(ctx, results.samples)
    examples = _examples(results.samples)
    for run in ctx.study.candidates.run:
        measured = results.models.get(run.name)
        entry = entries[ctx.catalog.get(run.id).id.lower()]
        if measured:
            attach_measurements(ctx, entry, run.demo, measured, per_item.get(run.name, []))
            entry.examples = examples.get(run.name, [])
    n = results.dataset.items
    return f"{len(ctx.study.candidates.run)} model(s) measured on {n} items"


def _quality_metrics(ctx: Context, names: list[str]) -> dict[str, float]:
    """Metric name → weight for the quality score: the study's, or every metric equally."""
    weights = {m.name: m.weight for m in ctx.study.metrics}
    if ctx.study.task.kind == "multiple_choice":
        return {n: weights.get(n, 1.0) for n in names if n in weights} or {"acc_norm": 1.0}
    return {n: w for n, w in weights.items() if n in names and w > 0}


EXAMPLES = 3
"""Items shown per measured model in the report."""


def _examples(samples: list[SampleLine]) -> dict[str, list[dict[str, str]]]:
    shown: dict[str, list[dict[str, str]]] = {}
    for row in samples:
        mine = shown.setdefault(row.model, [])
        if len(mine) < EXAMPLES and row.output is not None:
            mine.append(
                {
                    "item_id": row.item_id,
                    "prompt": row.prompt,
                    "reference": str(row.reference),
                    "output": row.output,
                }
            )
    return shown


def _composite_per_item(ctx: Context, samples: list[SampleLine]) -> dict[str, list[float]]:
    """Each model's weighted quality per item, so its confidence interval is resampled too."""
    per_model: dict[str, list[float]] = {}
    for row in samples:
        scores = row.scores
        weights = _quality_metrics(ctx, list(scores))
        total = sum(weights.values())
        if not total or any(not 0 <= scores[n] <= 1 for n in weights):
            continue
        value = sum(scores[n] * w for n, w in weights.items()) / total
        per_model.setdefault(row.model, []).append(value)
    return per_model


def attach_measurements(
    ctx: Context, entry: Entry, demo: bool, measured: ModelResult, per_item: list[float]
) -> None:
    from llmselect.evaluation.statistics import bootstrap_ci
    from llmselect.selection.result import Quality

    entry.backend = measured.backend
    entry.demo = entry.demo or demo
    weights = _quality_metrics(ctx, list(measured.metrics))
    for name, ci in measured.metrics.items():
        entry.metrics.append(
            MetricScore(
                name=name,
                value=ci.mean,
                low=ci.low,
                high=ci.high,
                n=ci.n,
                weight=weights.get(name, 0.0),
            )
        )
    if per_item:
        quality = bootstrap_ci(per_item, seed=ctx.study.seed)
        detail = " + ".join(f"{w:g}×{n}" for n, w in weights.items())
        entry.quality = Quality(
            value=quality.mean,
            low=quality.low,
            high=quality.high,
            source="measured",
            detail=detail,
        )
    latency = measured.latency
    if latency:
        entry.latency = MeasuredLatency.model_validate(
            latency.model_dump(include=set(MeasuredLatency.model_fields))
        )
        target = ctx.study.targets.ttft_p95_s
        ttft = entry.latency.ttft_p95_s
        on_target = ctx.study.hardware.strip().lower() == "detect"
        if on_target and target is not None and ttft is not None and ttft > target:
            entry.exclusions.append(
                Exclusion(
                    stage="evaluation",
                    reason=f"measured p95 time to first token {ttft:.2g} s exceeds "
                    f"the {target:g} s target",
                    relax=f"if you relax targets.ttft_p95_s to {_round_up(ttft)}",
                    key="targets.ttft_p95_s",
                )
            )


# -- the whole -----------------------------------------------------------------------------


def add_finetuned(
    ctx: Context,
    entries: dict[str, Entry],
    tuned: Finetuned,
    engine_for: Callable[[str, bool], Engine],
) -> bool:
    """A fine-tune found beside the study joins the entries: the base's architecture and
    licenses (it is a derivative), its own measured scores, judged by every stage. False when
    it does not join."""
    base = ctx.catalog.find(tuned.base)
    if base is None or base.id.lower() not in entries or tuned.tuned.lower() in entries:
        return False  # its base left the study, or the study runs the tuned model itself
    card = ModelCard.model_validate(
        {
            **base.model_dump(exclude={"benchmarks", "release_date", "sources", "quantization"}),
            "id": tuned.tuned,
            "name": f"{base.display_name} + {tuned.method}",
            "base_model": base.id,
            "base_model_relation": "finetune" if tuned.method == "full" else "adapter",
            "notes": f"fine-tuned by `llmselect finetune` on {tuned.examples} examples",
            "origin": tuned.output,
        }
    )
    ctx.catalog.add(card, replace=True)
    entry = new_entry(card, entries[base.id.lower()].demo)
    judge_license(ctx, entry, card)
    judge_fit(ctx, entry, card, engine_for)
    evaluation = Path(tuned.output) / "evaluation"
    results = _read_results(evaluation)
    measured = results.models.get(tuned.tuned) if results else None
    if results and measured:
        samples = results.model_samples(tuned.tuned)
        per_item = _composite_per_item(ctx, samples).get(tuned.tuned, [])
        attach_measurements(ctx, entry, entry.demo, measured, per_item)
        entry.examples = _examples(samples).get(tuned.tuned, [])
    if tuned.leaked:
        # No relaxation lets it in: its score would change once the items are held out.
        entry.exclusions.append(
            Exclusion(
                stage="evaluation",
                reason=f"{tuned.leaked} of the {tuned.before.n} evaluation items were also in "
                "its training data, so its score measures recall: hold them out of "
                "finetune_dataset and fine-tune again",
                key="finetune_dataset",
            )
        )
    entries[card.id.lower()] = entry
    return True


def _read_results(folder: Path) -> EvalResults | None:
    """A fine-tune's own evaluation, or None where it is missing or unreadable (the fine-tune
    then joins with no measured scores)."""
    from llmselect.evaluation.results import EvalResults

    try:
        return EvalResults.read(folder)
    except LLMSelectError:
        return None


def finetuning_summary(finetuned: list[Finetuned]) -> str:
    if not finetuned:
        return "none found (`llmselect finetune STUDY --model M` adds one)"
    return "; ".join(
        f"{f.base} → {f.tuned}: {f.metric} {f.before.value:.3f} → {f.after.value:.3f}"
        for f in finetuned
    )


def installed_version(name: str) -> str | None:
    """`importlib.metadata.version(name)`, or None when it is not installed, read from the
    `Version:` header alone: `version` runs the whole metadata file through the email parser,
    long READMEs included (torch's, transformers'), which took longer than the rest of the
    record."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end at the first empty line
        field, _, value = line.partition(":")
        if field.strip().lower() == "version":
            return value.strip()
    return dist.version


def reproducibility(ctx: Context, dataset_sha256: str | None) -> Reproducibility:
    from llmselect import __version__
    from llmselect.sizing.detect import detect

    packages = {name: v for name in PACKAGES if (v := installed_version(name)) is not None}
    machine = detect()
    gpus = ", ".join(g.name for g in machine.gpus) or "no GPU"
    text = ctx.path.read_text(encoding="utf-8")
    return Reproducibility(
        created=datetime.now(UTC),
        llmselect=__version__,
        python=sys.version.split()[0],
        platform=platform.platform(),
        packages=packages,
        machine=f"{machine.cpu}, {machine.cores} cores, "
        f"{machine.ram_bytes / 2**30:.0f} GiB RAM, {gpus}",
        study_file=str(ctx.path),
        study_sha256=hashlib.sha256(text.encode()).hexdigest(),
        study_text=text,
        dataset_sha256=dataset_sha256,
        seed=ctx.study.seed,
    )
