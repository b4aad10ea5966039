"""What the transformers backend hands to `model.generate`: a clock for the first token and a
stop-string criterion that looks at the generated tokens only.

Imported only when a local model runs, so the core install does not need transformers.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from transformers import StoppingCriteria, StopStringCriteria
from transformers.generation.streamers import BaseStreamer


class FirstTokenClock(BaseStreamer):
    """Notes when `generate` hands over the first generated tokens of a batch.

    `generate` puts the prompt first, then each step's new tokens (one per row); reading them
    to the host waits for the device, so the time is when the tokens exist.
    """

    def __init__(self) -> None:
        self.puts = 0
        self.first_token_at: float | None = None

    def put(self, value: Any) -> None:
        self.puts += 1
        if self.puts == 2:
            self.first_token_at = time.perf_counter()

    def end(self) -> None:
        pass


class StopInOutput(StoppingCriteria):
    """transformers' `StopStringCriteria` on the tokens generated after the prompt.

    Given the whole sequence, it would also stop on a stop string that begins in the prompt
    (a chat prompt ending in "\\n" and the stop "\\n\\n"), where `apply_stop`, which cuts the
    generated text alone, would not: the outputs would change. Here a row stops exactly when
    its generated text contains a stop string, so stopping early only saves the tokens after it.
    """

    def __init__(self, tokenizer: Any, stop: list[str], prompt_width: int) -> None:
        self.inner = StopStringCriteria(tokenizer=tokenizer, stop_strings=stop)
        self.prompt_width = prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        generated: Any = input_ids[:, self.prompt_width :]
        done: torch.BoolTensor = self.inner(generated, scores, **kwargs)
        return done


def stop_in_output(tokenizer: Any, stop: list[str], prompt_width: int) -> Any:
    """The `stopping_criteria` for `generate`: stop once each row's output holds a stop string."""
    from transformers import StoppingCriteriaList

    return StoppingCriteriaList([StopInOutput(tokenizer, stop, prompt_width)])
