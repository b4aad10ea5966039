"""The store keeps each output from the moment it exists, and why an item has none."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from llmselect.evaluation.runner import run_models
from llmselect.evaluation.store import Failure, Sample, Store
from llmselect.evaluation.study import load_study


def test_a_local_model_commits_each_batch_as_it_is_generated(
    tmp_path: Path, tiny_models: tuple[Path, Path]
) -> None:
    rows = [
        {"id": f"q{i}", "q": f"What is the capital of France? ({i})" + " Really?" * (i % 3)}
        for i in range(7)
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "study.yaml").write_text(
        json.dumps(
            {
                "dataset": {"path": "data.jsonl", "fields": {"input": "q", "id": "id"}},
                "task": {"kind": "generate", "template": "Q: {{ input }} A:", "max_tokens": 2},
                "candidates": [
                    {"name": "tiny", "transformers": str(tiny_models[1]), "batch_size": 2}
                ],
            }
        )
    )
    store = Store(tmp_path / "store.sqlite")
    seen: list[tuple[int, int]] = []
    # Told after each commit: what a second reader of the file sees then is what is done.
    reader = sqlite3.connect(tmp_path / "store.sqlite")

    def progress(model: str, done: int, total: int) -> None:
        seen.append((done, reader.execute("SELECT COUNT(*) FROM samples").fetchone()[0]))

    run_models(load_study(tmp_path / "study.yaml"), tmp_path, store, progress)
    assert seen == [(0, 0), (2, 2), (4, 4), (6, 6), (7, 7)]


def sample(key: str) -> Sample:
    return Sample(cache_key=key, model="m", item_id=key, prompt="p", output="o")


def test_a_failure_is_kept_until_the_item_has_an_output(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    store.put_failure(Failure(cache_key="a", model="m", item_id="a", error="first"))
    store.put_failure(Failure(cache_key="a", model="m", item_id="a", error="second"))
    store.put_failure(Failure(cache_key="b", model="m", item_id="b", error="other"))
    assert {k: f.error for k, f in store.failures(["a", "b", "c"]).items()} == {
        "a": "second",  # the last reason
        "b": "other",
    }
    assert store.done(["a", "b"]) == set()  # a failure is not an output: a rerun retries it
    store.put([sample("a")])
    assert list(store.failures(["a", "b"])) == ["b"]
    store.close()


def test_a_store_from_before_failures_were_kept_gains_the_table(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE failures")
    store = Store(path)
    store.put_failure(Failure(cache_key="a", model="m", item_id="a", error="why"))
    assert store.failures(["a"])["a"].error == "why"
    store.close()
