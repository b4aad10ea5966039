"""The fine-tune's model card: README.md with Hugging Face front matter and what it inherits.

The front matter records the lineage the way the Hub does (`base_model`, `base_model_relation`,
`datasets`, `license` inherited from the base weights), so `llmselect catalog import` reads the
folder back with its ancestry and the license verdicts walk up to the base. The body lists the
duties inherited from the base model's licenses, the license gate's decision (and any --force
override), how it was trained and what the evaluation measured.

Text that comes from a catalog, a dataset or a user is escaped: the card renders as Markdown
(often as HTML), and a model id must not be able to inject markup.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from llmselect import __version__
from llmselect.catalog import ModelCard

if TYPE_CHECKING:
    from llmselect.finetune.config import TrainRun
    from llmselect.finetune.curve import BeforeAfter, LearningCurve
    from llmselect.finetune.gate import GateResult


def _e(text: object) -> str:
    """Escape for Markdown rendered as HTML; also keep table cells in one cell."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def front_matter(
    base: ModelCard, gate: GateResult, training: TrainRun, dataset: str, data_digest: str
) -> dict[str, Any]:
    adapter = training.method != "full"
    config = training.config
    meta: dict[str, Any] = {
        "base_model": base.id,
        "base_model_relation": "adapter" if adapter else "finetune",
        "license": base.licenses.weights,
        "datasets": [dataset],
        "library_name": "peft" if adapter else "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["llmselect", training.method],
        "llmselect": {
            "version": __version__,
            "method": training.method,
            **(
                {"rank": config.rank, "alpha": config.lora_alpha, "targets": config.targets}
                if adapter
                else {}
            ),
            "steps": training.steps,
            "examples": training.examples,
            "seed": config.seed,
            "learning_rate": config.learning_rate,
            "batch": config.batch * config.grad_accum,
            "data_sha256": data_digest,
            "license_gate": {
                "decision": gate.decision,
                "forced": gate.forced,
                "stops": [r.message for r in gate.stops],
            },
            "license_obligations": [
                {
                    "duty": o.duty,
                    "license": o.license,
                    "origin": o.origin,
                    "when": o.when,
                    "clause": o.clause,
                }
                for o in gate.obligations
            ],
        },
    }
    return meta


def render_card(
    base: ModelCard,
    gate: GateResult,
    training: TrainRun,
    *,
    dataset: str,
    data_digest: str,
    evaluation: BeforeAfter | None = None,
    curve: LearningCurve | None = None,
) -> str:
    meta = front_matter(base, gate, training, dataset, data_digest)
    what = (
        "LoRA adapter"
        if training.method == "lora"
        else ("QLoRA adapter" if training.method == "qlora" else "full fine-tune")
    )
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(),
        "---",
        "",
        f"# {_e(Path(training.output).name)}",
        "",
        f"A {what} of `{_e(base.id)}`, trained by llmselect {__version__} on "
        f"{training.examples} examples from `{_e(dataset)}`. It inherits the license of its "
        f"base model's weights (`{_e(base.licenses.weights)}`) and every duty listed below.",
        "",
    ]
    if training.method != "full":
        lines += [
            "Load it on top of the base model:",
            "",
            "```python",
            "from peft import PeftModel",
            "from transformers import AutoModelForCausalLM",
            "",
            f'base = AutoModelForCausalLM.from_pretrained("{_e(base.id)}")',
            'model = PeftModel.from_pretrained(base, "path/to/this/folder")',
            "```",
            "",
        ]
    lines += _license_section(gate)
    lines += _training_section(training)
    if evaluation is not None:
        lines += _evaluation_section(evaluation)
    if curve is not None:
        lines += _curve_section(curve)
    return "\n".join(lines).rstrip() + "\n"


def _license_section(gate: GateResult) -> list[str]:
    lines = ["## License obligations inherited from the base model", ""]
    decision = {"pass": "passed", "warn": "passed with duties", "stop": "stopped"}[gate.decision]
    lines.append(f"License gate: **{decision}** (overall verdict for the base: {gate.verdict}).")
    if gate.forced:
        lines += [
            "",
            "**The gate stopped this fine-tune and was overridden with `--force`.** "
            "The reasons it stopped:",
            "",
        ]
        lines += [
            f"- {_e(r.message)} ({_e(r.license or '?')}, from {_e(r.origin)})" for r in gate.stops
        ]
    lines.append("")
    if gate.obligations:
        lines += ["| duty | when | license | clause | from |", "|---|---|---|---|---|"]
        for o in gate.obligations:
            clause = (o.clause or "").split(":", 1)[0]
            lines.append(
                f"| {_e(o.duty)} | {o.when} | {_e(o.license or '')} | {_e(clause)} | "
                f"{_e(o.origin)} |"
            )
    else:
        lines.append("No conditional duty was found for the use profile.")
    lines += ["", *[f"- note: {_e(n)}" for n in gate.notes]] if gate.notes else []
    lines.append("")
    return lines


def _training_section(training: TrainRun) -> list[str]:
    c = training.config
    losses = training.losses
    first = f"{losses[0]:.4f}" if losses else "–"
    last = f"{losses[-1]:.4f}" if losses else "–"
    rows = [
        ("method", training.method),
        ("steps", str(training.steps)),
        ("examples", str(training.examples)),
        ("effective batch", f"{c.batch} x {c.grad_accum}"),
        ("peak learning rate", f"{c.learning_rate:g}"),
        ("trainable parameters", f"{training.trainable_params:,}"),
        ("training loss", f"{first} (first step) → {last} (last step)"),
        ("seed", str(c.seed)),
        ("trained on", training.device),
    ]
    if training.method != "full":
        rows.insert(1, ("LoRA", f"rank {c.rank}, alpha {c.lora_alpha:g}, targets {c.targets}"))
    lines = ["## Training", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_e(v)} |" for k, v in rows]
    return [*lines, ""]


def _ci(interval: Any) -> str:
    return f"{interval.mean:.3f} ({interval.low:.3f}–{interval.high:.3f})"


def _evaluation_section(evaluation: BeforeAfter) -> list[str]:
    metrics = list(evaluation.after.scores)
    lines = [
        "## Evaluation",
        "",
        f"On {evaluation.items} evaluation items, with 95% bootstrap intervals:",
        "",
        "| model | " + " | ".join(_e(m) for m in metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    for score in [evaluation.before, evaluation.after, *evaluation.others]:
        cells = [(_ci(score.scores[m]) if m in score.scores else "") for m in metrics]
        lines.append(f"| {_e(score.model)} | " + " | ".join(cells) + " |")
    lines += ["", *[f"- {_e(c.sentence)}" for c in evaluation.comparisons]]
    if evaluation.warning:
        lines.append(f"- {_e(evaluation.warning)}")
    return [*lines, ""]


def _curve_section(curve: LearningCurve) -> list[str]:
    lines = [
        "## Learning curve",
        "",
        f"| examples | {_e(curve.metric)} (95% CI) |",
        "|---|---|",
        f"| 0 (base) | {_ci(curve.base)} |",
    ]
    lines += [f"| {p.examples} | {_ci(p.score)} |" for p in curve.points]
    return [*lines, "", _e(curve.verdict), ""]


def write_card(
    out: Path,
    *,
    base: ModelCard,
    gate: GateResult,
    training: TrainRun,
    dataset: str,
    data_digest: str,
    evaluation: BeforeAfter | None = None,
    curve: LearningCurve | None = None,
) -> Path:
    text = render_card(
        base,
        gate,
        training,
        dataset=dataset,
        data_digest=data_digest,
        evaluation=evaluation,
        curve=curve,
    )
    path = out / "README.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
