"""The demo's study: the quiz measured on the demo models, next to the real catalog's models."""

from __future__ import annotations

from pathlib import Path

import yaml

from llmselect.demo.models import PROMPT, DemoBuild

DESCRIPTION = (
    "Demo: answer capital-city quiz questions. The measured models are small demo models "
    "trained on this machine a moment ago (quiz-base before and after fine-tuning shows what "
    "fine-tuning changes); the catalog's real models are judged on their licenses, their fit "
    "on this machine and their published scores."
)


def write_demo_study(dest: Path, build: DemoBuild) -> Path:
    """Write `dest/study.yaml` for the demo models in `build` and return its path."""
    study = {
        "name": "demo-capital-quiz",
        "description": DESCRIPTION,
        "dataset": {
            "path": str(build.eval_path.relative_to(dest)),
            "fields": {"input": "country", "reference": "capital", "id": "id"},
        },
        "finetune_dataset": {
            "path": str(build.train_path.relative_to(dest)),
            "fields": {"input": "country", "reference": "capital", "id": "id"},
        },
        "task": {
            "kind": "generate",
            "template": PROMPT.replace("{country}", "{{ input }}"),
            "max_tokens": 12,
            "stop": ["\n"],
        },
        "metrics": [{"name": "exact_match", "weight": 2}, {"name": "token_f1", "weight": 1}],
        "hardware": "detect",
        "targets": {"context": 128, "concurrent_users": 4, "tokens_per_s": 10},
        "license": {"use": {"commercial": True, "monthly_active_users": 10000}},
        "candidates": {
            "filter": {"max_params": "2B", "kind": "instruct"},
            "run": [
                {
                    "id": m.id,
                    "transformers": str(m.path.relative_to(dest)),
                    "demo": True,
                    "batch_size": 16,
                }
                for m in build.models
            ],
        },
        "ranking": {"quality": 0.7, "speed": 0.2, "cost": 0.1},
        "seed": 0,
    }
    path = dest / "study.yaml"
    header = "# Written by `llmselect demo`; run it again with `llmselect select study.yaml`.\n"
    path.write_text(header + yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path
