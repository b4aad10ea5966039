"""The demo's fine-tune: `quiz-base` continues a quiz; tuned on answered questions, it answers."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from llmselect.demo.models import BASE

SETTINGS = {"method": "lora", "rank": 16, "steps": 300, "lr": 1e-2, "batch": 16}
"""Enough for the tiny base to learn the quiz's answers in seconds on a CPU."""


def finetune_demo(
    study_file: Path, *, rebuilt: bool, progress: Callable[[str], None] | None = None
) -> tuple[Path, bool]:
    """Fine-tune `quiz-base` with a learning curve, measured before and after on the quiz.

    Writes STUDY_DIR/finetuned/quiz-base, where `llmselect select` finds it; an earlier
    complete run on the same demo models is reused. Returns the folder and whether it trained."""
    from llmselect.finetune.config import TrainConfig
    from llmselect.jobs.finetune import Events, FinetuneRequest, finetune_study
    from llmselect.selection.finetuned import SUMMARY

    out = study_file.parent / "finetuned" / BASE
    if not rebuilt and (out / SUMMARY).is_file():
        return out, False
    shutil.rmtree(out, ignore_errors=True)  # checkpoints of other weights must not resume
    if progress:
        progress(
            f"fine-tuning llmselect-demo/{BASE} (LoRA rank {SETTINGS['rank']}, "
            f"{SETTINGS['steps']} steps, and a learning curve on parts of the data)"
        )
    request = FinetuneRequest(
        study=study_file,
        model=f"llmselect-demo/{BASE}",
        config=TrainConfig.model_validate(SETTINGS),
        out=out,
        curve=True,
    )
    finetune_study(request, Events())
    return out, True
