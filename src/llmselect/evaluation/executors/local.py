"""The default executor: every candidate in this process, one after the other."""

from __future__ import annotations

from pathlib import Path

from llmselect.evaluation.executors import CandidateWork, Recorder, UnitRecord
from llmselect.evaluation.study import EvalStudy


class LocalExecutor:
    def __init__(self) -> None:
        self.units: list[UnitRecord] = []
        self.address: str | None = None

    def run(
        self, study: EvalStudy, base_dir: Path, work: list[CandidateWork], recorder: Recorder
    ) -> None:
        from llmselect.evaluation.runner import produce

        for part in work:
            recorder.begin(part)
            if not part.pending:
                continue
            # Committed as they come: a run stopped now keeps all that was produced.
            outputs = produce(
                study,
                base_dir,
                part.candidate,
                part.pending,
                part.prompts,
                part.keys,
                part.file,
                part.launch,
            )
            for produced in outputs:
                recorder.put(part, produced)
