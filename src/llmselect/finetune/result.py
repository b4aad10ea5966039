"""The fine-tuning job's summary (`finetune.json`): what `llmselect finetune` prints with
--json, and what `llmselect select` reads back to show the fine-tunes beside the study."""

from __future__ import annotations

from pydantic import BaseModel

from llmselect.finetune.config import TrainRun
from llmselect.finetune.curve import BeforeAfter, LearningCurve
from llmselect.finetune.gate import GateResult
from llmselect.finetune.preflight import Preflight


class FinetuneResult(BaseModel):
    study: str
    base_model: str
    output: str
    gate: GateResult
    preflight: Preflight
    training: TrainRun
    evaluation: BeforeAfter | None
    curve: LearningCurve | None
    leaked_eval_items: int = 0
    """Evaluation items also in the training data (identical or near): a selection does not
    rank a fine-tune on items it was trained on."""
    warnings: list[str]
    files: dict[str, str]
