"""A fine-tuning run as plain data: what it is asked to do, what it reports, what it did.

`TrainConfig` holds every setting that decides the trained weights (a resumed run must match
it), `BaseModelRef` the model the run starts from, `TrainStep` one step as a progress bar shows
it, and `TrainRun` the finished run as the model card and `training.json` record it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmselect.errors import LLMSelectError
from llmselect.sizing.finetune import Method, Targets, target_modules


class TrainConfig(BaseModel):
    """Everything that decides the trained weights (and so must match when resuming)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method = "lora"
    rank: int = Field(default=16, ge=1, le=4096)
    alpha: int | None = Field(default=None, ge=1)
    """LoRA scaling numerator (default: twice the rank)."""
    dropout: float = Field(default=0.05, ge=0, lt=1)
    targets: Targets = "all-linear"
    """attention, all-linear, or projection names (`q_proj,v_proj`)."""
    steps: int | None = Field(default=None, ge=1)
    epochs: float | None = Field(default=None, gt=0)
    """Passes over the data when `steps` is not given (default 3)."""
    lr: float | None = Field(default=None, gt=0)
    """Peak learning rate (default: 2e-4 for LoRA and QLoRA, 2e-5 for full fine-tuning)."""
    batch: int = Field(default=8, ge=1, le=65536)
    """Examples per forward pass (what must fit in memory)."""
    grad_accum: int = Field(default=1, ge=1, le=4096)
    """Forward passes per optimizer step: the effective batch is batch x grad_accum."""
    warmup: float = Field(default=0.1, ge=0, lt=1)
    """Share of the steps over which the learning rate rises linearly to its peak."""
    weight_decay: float = Field(default=0.0, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    max_length: int = Field(default=512, ge=8, le=1_000_000)
    seed: int = 0
    gradient_checkpointing: bool | None = None
    """Keep only each layer's input and recompute the rest in the backward pass: less memory,
    a third more compute (default: on when training on a GPU, off on a CPU)."""
    checkpoint_every: int = Field(default=50, ge=1)
    keep_checkpoints: int = Field(default=2, ge=1)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (2e-5 if self.method == "full" else 2e-4)

    @property
    def lora_alpha(self) -> int:
        return self.alpha if self.alpha is not None else 2 * self.rank

    def total_steps(self, examples: int) -> int:
        if self.steps is not None:
            return self.steps
        epochs = self.epochs if self.epochs is not None else 3.0
        return max(1, math.ceil(epochs * examples / (self.batch * self.grad_accum)))

    def checkpointing(self, where: str) -> bool:
        if self.gradient_checkpointing is not None:
            return self.gradient_checkpointing
        return where == "cuda"

    def fingerprint(self) -> dict[str, Any]:
        """The fields that change the result (how often checkpoints are written does not)."""
        return self.model_dump(exclude={"checkpoint_every", "keep_checkpoints"})

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, value: str) -> str:
        try:
            target_modules(value)
        except LLMSelectError as exc:
            raise ValueError(f"{exc.message}; {exc.hint}" if exc.hint else exc.message) from None
        return value


class BaseModelRef(BaseModel):
    """The model that is fine-tuned: its id (catalog or Hub) and its local folder."""

    id: str
    path: Path
    allow_pickle: bool = False
    trust_remote_code: bool = False


class TrainStep(BaseModel):
    """What a progress bar shows: one optimizer step done (step 0: the run starts)."""

    run: str
    step: int
    total: int
    loss: float | None = None
    lr: float | None = None


StepCallback = Callable[[TrainStep], None]


class TrainRun(BaseModel):
    output: str
    method: Method
    config: TrainConfig
    examples: int
    steps: int
    trainable_params: int
    losses: list[float]
    """Training loss of every step, from step 1 (steps before a resume come from the checkpoint)."""
    resumed_from: int | None
    seconds: float
    """Wall time of this process's share of the run."""
    device: str
