"""Levels one after another: a sweep of given loads, or the search for the knee (the highest
concurrency that still meets the targets), each level summarized as it ends.

A server that stops answering ends the sweep (the levels measured are kept, and the result
says why it stopped); a level that only records errors does not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import httpx

from llmselect.serving.client import RequestSettings, base_url
from llmselect.serving.load import Level, OnDone, run_level
from llmselect.serving.metrics import summarize
from llmselect.serving.prompts import Prompts
from llmselect.serving.results import Knee, LevelSummary, RequestRecord, Targets
from llmselect.serving.tokenizers import Tokenizer

OnLevel = Callable[[Level, list[RequestRecord], LevelSummary], None]
"""Called as each level ends with its records and its summary (to write them at once)."""

Check = Callable[[], str | None]
"""Called between levels: why the run must stop (a started engine that died), or None."""


@dataclass
class SweepResult:
    levels: list[LevelSummary] = field(default_factory=list)
    knee: Knee | None = None
    stopped: str | None = None
    """Why the sweep ended before its last level (None when it ran them all)."""


@dataclass
class Sweep:
    """What a run sends, to whom, and what it calls back."""

    url: str
    settings: RequestSettings
    prompts: Prompts
    seed: int = 0
    repeats: int = 1
    targets: Targets | None = None
    tokenizer: Tokenizer | None = None
    on_level: OnLevel | None = None
    on_done: Callable[[Level, int], OnDone] | None = None
    """Given a level and its index, the callback for each request that ends."""
    check: Check | None = None

    async def level(self, level: Level, index: int) -> tuple[list[RequestRecord], LevelSummary]:
        records: list[RequestRecord] = []
        for repeat in range(self.repeats):
            records += await run_level(
                self.url,
                self.settings,
                level,
                self.prompts,
                index=index,
                repeat=repeat,
                seed=self.seed,
                tokenizer=self.tokenizer,
                on_done=self.on_done(level, index) if self.on_done else None,
            )
        summary = summarize(
            records,
            profile=level.profile,
            concurrency=level.concurrency,
            rate=level.rate,
            targets=self.targets,
        )
        if self.on_level:
            self.on_level(level, records, summary)
        return records, summary

    def _stop_reason(self, records: list[RequestRecord]) -> str | None:
        if self.check and (why := self.check()):
            return why
        if records and all(r.error for r in records) and not answers(self.url):
            return f"the server at {self.url} stopped answering"
        return None

    async def run(self, levels: Sequence[Level]) -> SweepResult:
        """Each level in turn."""
        result = SweepResult()
        for index, level in enumerate(levels):
            records, summary = await self.level(level, index)
            result.levels.append(summary)
            if why := self._stop_reason(records):
                if index < len(levels) - 1:
                    result.stopped = why
                break
        return result

    async def knee(self, template: Level, limit: int, warmup: int | None = None) -> SweepResult:
        """Concurrency 1, 2, 4... until a level misses the targets (or `limit`), then bisect
        between the last that met them and the first that did not. Each level warms up with
        `warmup` requests (None: as many as its concurrency)."""
        if self.targets is None or not self.targets.given:
            raise ValueError("finding the knee needs targets")
        result = SweepResult()
        met: dict[int, bool] = {}
        search = _knee_search(limit, met)
        for index, concurrency in enumerate(search):
            level = replace(
                template,
                concurrency=concurrency,
                warmup=concurrency if warmup is None else warmup,
            )
            records, summary = await self.level(level, index)
            result.levels.append(summary)
            met[concurrency] = bool(summary.meets_targets)
            if why := self._stop_reason(records):
                result.stopped = why
                break
        passed = [c for c, ok in met.items() if ok]
        missed = [c for c, ok in met.items() if not ok]
        result.knee = Knee(
            concurrency=max(passed) if passed else None,
            first_miss=min(missed) if missed else None,
        )
        return result


def _knee_search(limit: int, met: dict[int, bool]) -> Iterator[int]:
    """The concurrencies to try, each decided by `met` (filled in as levels end)."""
    concurrency = 1
    while concurrency <= limit:
        yield concurrency
        if not met[concurrency]:
            break
        if concurrency == limit:
            return
        concurrency = min(concurrency * 2, limit)
    passed = [c for c, ok in met.items() if ok]
    if not passed:
        return
    low, high = max(passed), min(c for c, ok in met.items() if not ok)
    while high - low > 1:
        middle = (low + high) // 2
        yield middle
        if met[middle]:
            low = middle
        else:
            high = middle


def answers(url: str) -> bool:
    """Whether the server answers at all (any HTTP status counts)."""
    try:
        with httpx.Client(timeout=3.0) as http:
            http.get(base_url(url) + "/v1/models")
        return True
    except httpx.HTTPError:
        return False
