"""A realistic selection built by hand from the real catalog, license and sizing code.

Some strings in it are what a hostile model card, dataset or model output could hold: the
report must show them as text and never run or render them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from llmselect.catalog.catalog import Catalog
from llmselect.evaluation.statistics import compare
from llmselect.licensing.profile import UseProfile
from llmselect.licensing.verdicts import license_report
from llmselect.selection.result import (
    Entry,
    Exclusion,
    Finetuned,
    MeasuredLatency,
    MetricScore,
    Quality,
    Recommendation,
    Reproducibility,
    Selection,
)
from llmselect.sizing.engines import get_engine
from llmselect.sizing.estimate import Fit, estimate
from llmselect.sizing.hardware import find_device
from llmselect.study import Ranking, Targets

SCRIPT = "<script>alert(1)</script>"
HOSTILE_NAME = f"{SCRIPT} | Support 7B </script>"
"""A model name from a hostile card: a script, a table pipe and a stray closing tag."""
HOSTILE_OUTPUT = f"Sure! {SCRIPT} `rm -rf` | <img src=x onerror=alert(2)>"
HOSTILE_REFERENCE = "</script><b>bold</b> & | pipe"
HOSTILE_STUDY = "name: report-test\n# </script><script>alert(3)</script>\n~~~~\n"

MEASURED = "Qwen/Qwen2.5-7B-Instruct"
HOSTILE_ID = "acme/support-7b"
TARGETS = Targets(context=4096, concurrent_users=4, ttft_p95_s=2.0, price_per_gpu_hour=2.5)


def _fit(catalog: Catalog, model_id: str, quant: str = "bf16", devices: int = 1) -> Fit:
    return estimate(
        catalog.get(model_id),
        find_device("H100-80GB"),
        devices,
        get_engine("vllm"),
        quant=quant,
        context=TARGETS.context,
        batch=TARGETS.concurrent_users,
        price_per_device_hour=TARGETS.price_per_gpu_hour,
    )


def _entry(catalog: Catalog, model_id: str, **fields: object) -> Entry:
    card = catalog.get(model_id)
    report = license_report(card, catalog, UseProfile())
    data_only_unknown = report.overall == "unknown" and all(
        report.components[c].verdict != "unknown" for c in ("weights", "code")
    )
    values: dict[str, object] = {
        "id": card.id,
        "name": card.display_name,
        "family": card.family,
        "organization": card.organization,
        "params": card.params,
        "kind": [str(k) for k in card.kind],
        "context_length": card.architecture.context_length,
        "license": report,
        # As the pipeline judges it: training data's terms unknown is a duty to review them.
        "verdict": "conditional" if data_only_unknown else report.overall,
        "duties": list(
            dict.fromkeys(
                r.message
                for c in report.components.values()
                for r in c.reasons
                if r.verdict == "conditional"
            )
        ),
        "fit": _fit(catalog, model_id),
        "tried": ["bf16"],
    }
    return Entry.model_validate(values | fields)


def _published(catalog: Catalog, model_id: str) -> Quality | None:
    scores = {b.name: b.value for b in catalog.get(model_id).benchmarks}
    if "open-llm-v1/average" not in scores:
        return None
    return Quality(
        value=scores["open-llm-v1/average"] / 100,
        source="published",
        detail="Open LLM Leaderboard v1 average (published, not measured on your data)",
    )


def build_selection(catalog: Catalog) -> Selection:
    measured = _entry(
        catalog,
        MEASURED,
        backend="transformers",
        metrics=[
            MetricScore(name="exact_match", value=0.72, low=0.61, high=0.82, n=60, weight=2),
            MetricScore(name="token_f1", value=0.80, low=0.74, high=0.86, n=60, weight=1),
        ],
        latency=MeasuredLatency(
            p50_s=0.41,
            p90_s=0.62,
            p95_s=0.7,
            p99_s=0.9,
            ttft_p50_s=0.05,
            ttft_p95_s=0.08,
            tokens_per_s=38.5,
            peak_memory_bytes=16 * 2**30,
        ),
        examples=[
            {
                "item_id": "q1",
                "prompt": f"Q: what does {SCRIPT} do?\nA:",
                "reference": HOSTILE_REFERENCE,
                "output": HOSTILE_OUTPUT,
            }
        ],
        quality=Quality(
            value=0.746, low=0.66, high=0.83, source="measured", detail="exact_match ×2, token_f1"
        ),
        score=0.81,
        rank=1,
        pareto=True,
        openness="III",
    )
    hostile = _entry(
        catalog,
        "mistralai/Mistral-7B-Instruct-v0.2",
        id=HOSTILE_ID,
        name=HOSTILE_NAME,
        backend="openai",
        metrics=[MetricScore(name="exact_match", value=0.6, low=0.48, high=0.71, n=60, weight=2)],
        quality=Quality(value=0.6, low=0.48, high=0.71, source="measured", detail="exact_match"),
        score=0.66,
        rank=2,
    )
    vicuna = _entry(
        catalog,
        "lmsys/vicuna-7b-v1.5",
        quality=_published(catalog, "lmsys/vicuna-7b-v1.5"),
        score=0.52,
        rank=3,
        pareto=True,
    )
    small = _entry(
        catalog,
        "HuggingFaceTB/SmolLM2-360M-Instruct",
        quality=Quality(value=0.31, source="published", detail="a published benchmark average"),
        score=0.4,
        rank=4,
        pareto=True,
    )
    unscored = _entry(catalog, "Qwen/Qwen2-1.5B-Instruct", score=0.3, rank=5)
    blocked = _entry(
        catalog,
        "huggyllama/llama-7b",
        fit=None,
        tried=[],
        exclusions=[
            Exclusion(
                stage="license",
                reason="weights: commercial use is not granted (LLaMA-1 license)",
                relax="if your use were non-commercial",
                key="license.use",
            )
        ],
    )
    too_big = _entry(
        catalog,
        "meta-llama/Llama-2-70b-hf",
        exclusions=[
            Exclusion(
                stage="sizing",
                reason="needs 140 GiB per device at bf16; H100-SXM-80GB has 80 | no precision fits",
                relax="on 2x H100-80GB",
                key="hardware",
            )
        ],
    )
    catalog_only = Entry(
        id="EleutherAI/pythia-1.4b",
        name="Pythia 1.4B",
        family="pythia",
        exclusions=[
            Exclusion(
                stage="catalog",
                reason="its context is 2,048 tokens; the study needs 4,096",
                relax="if you cut targets.context to 2048",
                key="targets.context",
            )
        ],
    )
    a = [1.0] * 20
    b = [1.0] * 5 + [0.0] * 15
    f1_a = [0.8, 0.7, 0.9, 0.85] * 5
    f1_b = [0.82, 0.69, 0.88, 0.86] * 5
    comparisons = [
        compare(MEASURED, a, HOSTILE_NAME, b, metric="exact_match", binary=True).model_dump(),
        compare(MEASURED, f1_a, HOSTILE_NAME, f1_b, metric="token_f1").model_dump(),
    ]
    tuned = compare("base", [0.0] * 20, "tuned", [1.0] * 12 + [0.0] * 8, metric="exact_match")
    return Selection(
        study="report-test",
        description="Answer support questions | on our own <hardware>.",
        hardware="H100-SXM-80GB",
        targets=TARGETS,
        profile=UseProfile(),
        ranking=Ranking(),
        entries=[measured, hostile, vicuna, small, unscored, blocked, too_big, catalog_only],
        comparisons=comparisons,
        recommendation=Recommendation(
            model=MEASURED,
            summary="Choose Qwen2.5 7B Instruct: it scores 74.6 (66–83) on your data.",
            runners_up=[f"{HOSTILE_NAME}, -14.6 points"],
            what_would_change=["If you ran Llama 2 70B on 2x H100-80GB | it might score higher."],
        ),
        finetuned=[
            Finetuned(
                base="demo/base",
                tuned="demo/tuned",
                method="lora",
                examples=40,
                metric="exact_match",
                before=MetricScore(
                    name="exact_match", value=0.0, low=0.0, high=0.0, n=20, weight=1
                ),
                after=MetricScore(name="exact_match", value=0.6, low=0.4, high=0.8, n=20, weight=1),
                comparison=tuned.model_dump(),
                samples=[{"prompt": "Q?", "reference": "A", "before": "Q?", "after": SCRIPT}],
                curve=[
                    {"examples": 10, "value": 0.3, "low": 0.1, "high": 0.5},
                    {"examples": 40, "value": 0.6, "low": 0.4, "high": 0.8},
                ],
            )
        ],
        stages={
            "catalog": "8 models in the pool",
            "license": "1 blocked",
            "sizing": "7 fit H100-SXM-80GB",
            "evaluation": "2 models measured on 60 items",
        },
        warnings=["the measured items are few | widen the dataset"],
        reproducibility=Reproducibility(
            created=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
            llmselect="0.1.0",
            python="3.11.9",
            platform="Linux-6.1-x86_64",
            packages={"torch": "2.13.0", "transformers": "5.0.0"},
            machine="test machine (CPU)",
            study_file="/data/study.yaml",
            study_sha256="ab" * 32,
            study_text=HOSTILE_STUDY,
            dataset_sha256="cd" * 32,
            seed=7,
        ),
    )
