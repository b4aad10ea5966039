"""Latency under load against OpenAI-compatible servers, and the engines started to serve.

`Sweep(url, settings, prompts).run(levels)` sends each load level in turn and returns one
`LevelSummary` per level (TTFT, ITL, TPOT and E2E percentiles, tokens and requests a second,
errors, goodput against targets); `EngineServer` starts a `serve:` command, waits until it
answers, and stops it. The bench job (`llmselect.jobs.bench`) puts them together.
"""

from __future__ import annotations

from llmselect.serving.client import RequestSettings
from llmselect.serving.engine import EngineError, EngineServer
from llmselect.serving.load import Level, run_level
from llmselect.serving.metrics import summarize
from llmselect.serving.prompts import GivenPrompts, SyntheticPrompts, parse_lengths
from llmselect.serving.results import (
    BenchResult,
    Knee,
    LevelSummary,
    RequestRecord,
    Stats,
    Targets,
)
from llmselect.serving.sweep import Sweep, SweepResult

__all__ = [
    "BenchResult",
    "EngineError",
    "EngineServer",
    "GivenPrompts",
    "Knee",
    "Level",
    "LevelSummary",
    "RequestRecord",
    "RequestSettings",
    "Stats",
    "Sweep",
    "SweepResult",
    "SyntheticPrompts",
    "Targets",
    "parse_lengths",
    "run_level",
    "summarize",
]
