"""What the fine-tuning library reads of a study, as a protocol.

The selection study (`llmselect.study.SelectStudy`) has every one of these fields;
naming them here keeps `finetune` from importing `selection`, which imports `finetune` to show
the fine-tunes it finds.
"""

from __future__ import annotations

from typing import Protocol

from llmselect.evaluation.study import DatasetSpec, MetricSpec, TaskSpec


class FinetuneStudy(Protocol):
    """A study's name, seed, evaluation and training data, task and metrics."""

    @property
    def name(self) -> str: ...

    @property
    def seed(self) -> int: ...

    @property
    def dataset(self) -> DatasetSpec | None:
        """The evaluation set, on which the models are measured before and after."""

    @property
    def finetune_dataset(self) -> DatasetSpec | None:
        """The training examples."""

    @property
    def task(self) -> TaskSpec: ...

    @property
    def metrics(self) -> list[MetricSpec]: ...
