"""A candidate whose engine the run starts (`serve:`): the OpenAI backend against that engine,
which is stopped when the candidate is done; an engine that dies is named as the cause, with the
tail of its log, instead of item after item failing to connect.

Starting engines is the serving stage's work. The job that runs the evaluation hands it in as a
`Launch` (stages do not call each other), and it travels with each unit of work, so on a cluster
every engine starts on the node that runs its unit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from llmselect.evaluation.backends.openai_http import OpenAIBackend, _Retryable

T = TypeVar("T")


class Engine(Protocol):
    """A started engine that answers at `url`."""

    url: str

    @property
    def alive(self) -> bool: ...

    def died(self, what: str) -> Exception:
        """The error that says the engine stopped: its exit code and the tail of its log."""
        ...

    def first_model(self) -> str:
        """The name of the first model the engine lists in /v1/models."""
        ...

    def stop(self) -> None: ...


class Launch(Protocol):
    def __call__(
        self,
        command: str,
        *,
        name: str,
        model: str | None,
        file: str | None,
        startup_timeout_s: float,
    ) -> Engine:
        """Start `command` for candidate `name` and return once it answers; raise, with the
        tail of its log, when it exits or does not answer in time."""
        ...


class ServedBackend(OpenAIBackend):
    """An OpenAI backend on an engine of its own."""

    def __init__(self, engine: Engine, model: str, *, name: str, **options: Any) -> None:
        self.engine = engine
        super().__init__(engine.url + "/v1", model, name=name, **options)

    def _dead(self) -> Exception:
        return self.engine.died(f"the engine of {self.model!r} stopped while it was evaluated")

    def _with_retries(self, what: str, call: Callable[[], T]) -> T:
        if not self.engine.alive:
            raise self._dead()
        try:
            return super()._with_retries(what, call)
        except Exception:
            if not self.engine.alive:
                raise self._dead() from None
            raise

    def _wait_s(self, failure: _Retryable, attempt: int) -> float:
        # No retry can reach an engine that has exited: say so now.
        if not self.engine.alive:
            raise self._dead()
        return super()._wait_s(failure, attempt)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.engine.stop()
