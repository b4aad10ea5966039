"""Load levels: a fixed number of requests in flight, or requests sent at a rate (evenly spaced
or as a seeded Poisson process), for a fixed count of requests or a fixed time.

A level starts with its warm-up requests (sent like the others, recorded, and left out of the
figures: the first requests of a level meet an idle server, or all arrive at once), then sends
its measured ones. Every request that was sent is awaited (or times out) before the level ends,
so a level's records are complete.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from llmselect.serving.client import Outcome, RequestSettings, client, send
from llmselect.serving.http import Pool
from llmselect.serving.prompts import Prompts
from llmselect.serving.results import Profile, RequestRecord
from llmselect.serving.tokenizers import Tokenizer


@dataclass(frozen=True)
class Level:
    profile: Profile
    concurrency: int | None = None
    """Requests in flight (for a rate level: at most this many, None for no cap)."""
    rate: float | None = None
    """Requests sent a second (rate levels)."""
    requests: int | None = None
    """Measured requests to send (or `duration_s`)."""
    duration_s: float | None = None
    """Send measured requests for this long (from the first one), then wait for them to end."""
    warmup: int = 0

    def __post_init__(self) -> None:
        if (self.requests is None) == (self.duration_s is None):
            raise ValueError("a level sends a count of requests or runs for a duration")
        if self.profile == "concurrency" and not self.concurrency:
            raise ValueError("a concurrency level needs its concurrency")
        if self.profile != "concurrency" and not self.rate:
            raise ValueError("a rate level needs its rate")

    @property
    def label(self) -> str:
        if self.profile == "concurrency":
            return f"concurrency {self.concurrency}"
        return f"{self.profile} {self.rate:g}/s"


OnDone = Callable[[RequestRecord], None]
"""Called as each request ends, with its timings (its token count comes when the level ends:
counting with a tokenizer is work kept out of the requests' way)."""


def to_record(
    outcome: Outcome,
    *,
    level: int,
    repeat: int,
    index: int,
    warmup: bool,
    level_start: float,
    tokenizer: Tokenizer | None,
) -> RequestRecord:
    """A request's record; its token count from the server's usage, else from the tokenizer,
    else one per streamed chunk."""
    end = outcome.end if outcome.end is not None else outcome.start
    ok = outcome.error is None
    tokens: int | None = None
    source = None
    if ok and outcome.completion_tokens is not None:
        tokens, source = outcome.completion_tokens, "usage"
    elif ok and tokenizer is not None:
        tokens, source = len(tokenizer.encode(outcome.text)), "tokenizer"
    elif ok:
        tokens, source = len(outcome.token_times), "chunks"
    return RequestRecord(
        level=level,
        repeat=repeat,
        index=index,
        warmup=warmup,
        start_s=outcome.start - level_start,
        ttft_s=outcome.token_times[0] if outcome.token_times else None,
        e2e_s=end - outcome.start,
        token_times_s=outcome.token_times,
        prompt_tokens=outcome.prompt_tokens,
        output_tokens=tokens,
        tokens_source=source,
        finish_reason=outcome.finish_reason,
        status=outcome.status,
        error=outcome.error if outcome.error else (None if outcome.token_times else "no tokens"),
    )


async def run_level(
    url: str,
    settings: RequestSettings,
    level: Level,
    prompts: Prompts,
    *,
    index: int = 0,
    repeat: int = 0,
    seed: int = 0,
    tokenizer: Tokenizer | None = None,
    on_done: OnDone | None = None,
) -> list[RequestRecord]:
    """Run one level against `url`; every request's record, warm-up ones first by index."""
    runner = _Runner(url, settings, level, prompts, index, repeat, seed, tokenizer, on_done)
    return await runner.run()


class _Runner:
    def __init__(
        self,
        url: str,
        settings: RequestSettings,
        level: Level,
        prompts: Prompts,
        index: int,
        repeat: int,
        seed: int,
        tokenizer: Tokenizer | None,
        on_done: OnDone | None,
    ) -> None:
        self.url, self.settings, self.level, self.prompts = url, settings, level, prompts
        self.index, self.repeat, self.tokenizer, self.on_done = index, repeat, tokenizer, on_done
        self.rng = random.Random(f"{seed}/{index}/{repeat}")  # noqa: S311 (seeded arrivals)
        self.outcomes: dict[int, Outcome] = {}
        self.sent = 0
        self.start = 0.0
        self.measured_from: float | None = None
        # The prompts of a counted level are drawn before the clock starts: cutting them to
        # length with a tokenizer is work that would otherwise delay the requests in flight.
        count = level.warmup + (level.requests or 0)
        self.ready = [prompts.next() for _ in range(count)] if level.requests else []

    def _next_prompt(self) -> str:
        if self.sent < len(self.ready):
            return self.ready[self.sent]
        return self.prompts.next()

    def _more(self) -> bool:
        """Whether another request is due: warm-up ones, then the count or the time."""
        level = self.level
        if self.sent < level.warmup:
            return True
        if level.requests is not None:
            return self.sent < level.warmup + level.requests
        now = time.perf_counter()
        if self.measured_from is None:
            self.measured_from = now
        assert level.duration_s is not None
        return now - self.measured_from < level.duration_s

    async def _one(self, http: Pool, number: int, prompt: str) -> None:
        outcome = await send(http, self.settings, prompt)
        self.outcomes[number] = outcome
        if self.on_done:
            self.on_done(self._record(number, None))

    def _record(self, number: int, tokenizer: Tokenizer | None) -> RequestRecord:
        return to_record(
            self.outcomes[number],
            level=self.index,
            repeat=self.repeat,
            index=number,
            warmup=number < self.level.warmup,
            level_start=self.start,
            tokenizer=tokenizer,
        )

    async def run(self) -> list[RequestRecord]:
        level = self.level
        async with client(self.url) as http:
            self.start = time.perf_counter()
            if level.profile == "concurrency":
                assert level.concurrency is not None
                await asyncio.gather(*(self._worker(http) for _ in range(level.concurrency)))
            else:
                await self._arrivals(http)
        return [self._record(number, self.tokenizer) for number in sorted(self.outcomes)]

    async def _worker(self, http: Pool) -> None:
        """One simulated user: the next request as soon as the last one ended."""
        while self._more():
            number, prompt = self.sent, self._next_prompt()
            self.sent += 1
            await self._one(http, number, prompt)

    async def _arrivals(self, http: Pool) -> None:
        """Requests sent on a schedule, whether or not earlier ones have ended."""
        assert self.level.rate is not None
        rate = self.level.rate
        cap = asyncio.Semaphore(self.level.concurrency) if self.level.concurrency else None
        tasks: set[asyncio.Task[None]] = set()
        due = time.perf_counter()
        while self._more():
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            number, prompt = self.sent, self._next_prompt()
            self.sent += 1
            if cap is not None:
                await cap.acquire()
            task = asyncio.create_task(self._capped(http, number, prompt, cap))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            gap = self.rng.expovariate(rate) if self.level.profile == "poisson" else 1 / rate
            due += gap
        if tasks:
            await asyncio.gather(*tasks)

    async def _capped(
        self, http: Pool, number: int, prompt: str, cap: asyncio.Semaphore | None
    ) -> None:
        try:
            await self._one(http, number, prompt)
        finally:
            if cap is not None:
                cap.release()
