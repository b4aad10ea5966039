"""Two writers of the same results.json at once: neither fails, and the file is always whole."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from llmselect.atomicfile import write_text_atomic

WRITER = """
import sys
from pathlib import Path
from llmselect.evaluation.runner import load_study_dataset, write_results
from llmselect.evaluation.store import Store
from llmselect.evaluation.study import load_study

study_path, out, store_path = map(Path, sys.argv[1:])
study = load_study(study_path)
dataset = load_study_dataset(study, study_path.parent)
store = Store(store_path)
for _ in range(150):
    write_results(study, study_path.parent, dataset, store, out)
"""


def test_two_processes_writing_results_json_at_once(tmp_path: Path) -> None:
    (tmp_path / "data.jsonl").write_text('{"input": "2+2", "reference": "4"}\n')
    study = tmp_path / "study.yaml"
    study.write_text(
        "dataset: {path: data.jsonl}\nmetrics: [exact_match]\n"
        "candidates: [{name: m, openai: 'http://127.0.0.1:9/v1', model: m}]\n"
    )
    out = tmp_path / "out"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(study), str(out), str(tmp_path / f"s{i}.sqlite")],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    errors = [w.communicate(timeout=300)[1] for w in writers]
    assert [w.returncode for w in writers] == [0, 0], errors
    assert json.loads((out / "results.json").read_text())["study"] == "evaluation"
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "samples.jsonl"]


def test_threads_writing_one_file_never_see_half_of_it(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    texts = [json.dumps({"writer": i, "pad": "x" * 200_000}) for i in range(4)]
    failures: list[BaseException] = []

    def write(text: str) -> None:
        try:
            for _ in range(50):
                write_text_atomic(path, text)
                assert path.read_text() in texts
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
