"""Prompts for a bench: synthetic ones of given token lengths, or the user's own texts.

A length is a number of tokens (`128`) or a distribution: `uniform:64-256`, `normal:128,32`
(clipped to at least 1 token). Each synthetic prompt is distinct (random common words, seeded),
so a server's prefix cache cannot answer one from another. With the model's tokenizer a prompt
is cut to its exact length; without it, one word is counted as one token, which holds for these
words in the usual vocabularies (Llama, Mistral, Qwen, GPT-2) give or take a few tokens.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from llmselect.errors import LLMSelectError
from llmselect.serving.tokenizers import Tokenizer

_COMMON_WORDS = (
    "the of and to in is was for on that with as by at from his it an were are which this "
    "be or has had not but first one their its new after who they have her she two been "
    "other when there all during into school time may years more most only over city some "
    "world would where later up such used many can state about national out known "
    "university united then made"
)
"""Common English words, each one token in the usual vocabularies."""
WORDS = tuple(_COMMON_WORDS.split())

_LENGTH = re.compile(
    r"^\s*(?:(?P<fixed>\d+)|uniform:(?P<low>\d+)-(?P<high>\d+)"
    r"|normal:(?P<mean>\d+(?:\.\d+)?),(?P<sd>\d+(?:\.\d+)?))\s*$"
)


@dataclass(frozen=True)
class Lengths:
    """A distribution of token counts, sampled with the run's seed."""

    text: str
    kind: str
    a: float
    b: float = 0.0

    def sample(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            return int(self.a)
        if self.kind == "uniform":
            return rng.randint(int(self.a), int(self.b))
        return max(1, round(rng.gauss(self.a, self.b)))

    @property
    def mean(self) -> float:
        return (self.a + self.b) / 2 if self.kind == "uniform" else self.a

    @property
    def most(self) -> int:
        """The longest it gives (a normal's: four standard deviations above the mean)."""
        if self.kind == "fixed":
            return int(self.a)
        if self.kind == "uniform":
            return int(self.b)
        return round(self.a + 4 * self.b)


def parse_lengths(text: str, option: str = "--prompt-tokens") -> Lengths:
    match = _LENGTH.match(text)
    if not match:
        raise LLMSelectError(
            f"{text!r} is not a token length",
            field=option,
            hint="write a number (128), uniform:LOW-HIGH (uniform:64-256) or normal:MEAN,SD "
            "(normal:128,32)",
        )
    if match["fixed"]:
        fixed = int(match["fixed"])
        if fixed < 1:
            raise LLMSelectError("a length is at least 1 token", field=option)
        return Lengths(text, "fixed", fixed)
    if match["low"]:
        low, high = int(match["low"]), int(match["high"])
        if not 1 <= low <= high:
            raise LLMSelectError(f"{text!r}: give 1 <= LOW <= HIGH", field=option)
        return Lengths(text, "uniform", low, high)
    mean, sd = float(match["mean"]), float(match["sd"])
    if mean < 1:
        raise LLMSelectError(f"{text!r}: the mean is at least 1 token", field=option)
    return Lengths(text, "normal", mean, sd)


class SyntheticPrompts:
    """Distinct prompts whose lengths follow a distribution, the same for the same seed."""

    def __init__(self, lengths: Lengths, seed: int, tokenizer: Tokenizer | None = None) -> None:
        self.lengths = lengths
        self.tokenizer = tokenizer
        self._rng = random.Random(seed)  # noqa: S311 (a seeded load, not a secret)

    def next(self) -> str:
        tokens = self.lengths.sample(self._rng)
        words = [self._rng.choice(WORDS) for _ in range(tokens + tokens // 4 + 8)]
        if self.tokenizer is None:
            return " ".join(words[:tokens])
        ids = self.tokenizer.encode(" ".join(words))
        return self.tokenizer.decode(ids[:tokens])

    def take(self, count: int) -> list[str]:
        return [self.next() for _ in range(count)]


class GivenPrompts:
    """The user's own prompts (a dataset through its template), in a seeded random order,
    round and round when more requests are sent than there are prompts."""

    def __init__(self, prompts: Sequence[str], seed: int) -> None:
        if not prompts:
            raise LLMSelectError("no prompts to send")
        self._prompts = list(prompts)
        random.Random(seed).shuffle(self._prompts)  # noqa: S311
        self._next = 0

    def next(self) -> str:
        prompt = self._prompts[self._next % len(self._prompts)]
        self._next += 1
        return prompt


class Prompts(Protocol):
    """What a load generator draws its prompts from, one at a time."""

    def next(self) -> str: ...
