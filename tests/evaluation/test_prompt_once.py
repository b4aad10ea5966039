"""Each prompt is rendered once, stored with its item, and scored from what was stored; the
template is compiled once per run, not once per item."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from openai_server import FakeServer
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.evaluation.datasets import Item
from llmselect.evaluation.templates import _ENV, render

runner = CliRunner()
COUNTRIES = [("France", "Paris"), ("England", "London"), ("Italy", "Rome")]
RANDOM_TEMPLATE = (
    '{{ ["Q:", "Question:", "Ask:", "Query:", "Say:", "Tell:"]|random }} {{ input }} A:'
)


def random_study(tmp_path: Path, url: str, n: int = 20) -> Path:
    rows = [
        {"id": f"q{i}", "question": f"What is the capital of {c}? ({i})", "answer": a}
        for i, (c, a) in enumerate(COUNTRIES[i % 3] for i in range(n))
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    study = {
        "dataset": {
            "path": "data.jsonl",
            "fields": {"input": "question", "reference": "answer", "id": "id"},
        },
        "task": {"template": RANDOM_TEMPLATE, "max_tokens": 8},
        "metrics": ["exact_match"],
        "candidates": [
            {"name": "api", "openai": url, "model": "tiny", "retries": 0},
            {"name": "api2", "openai": url + "/", "model": "tiny", "retries": 0},
        ],
    }
    (tmp_path / "study.yaml").write_text(json.dumps(study))
    return tmp_path / "study.yaml"


def test_a_random_template_is_rendered_once_stored_and_scored_from_the_store(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    with FakeServer() as server:
        study = random_study(tmp_path, server.url)
        first = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
        assert first.exit_code == 0, first.output
        assert server.requests == 40
        results = json.loads((out / "results.json").read_text())
        assert results["dataset"]["items"] == 20
        for model in ("api", "api2"):
            assert results["models"][model]["metrics"]["exact_match"]["n"] == 20
        lines = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
        assert len(lines) == 40
        with sqlite3.connect(out / "store.sqlite") as db:
            sent = dict(db.execute("SELECT model || '/' || item_id, prompt FROM samples"))
        # samples.jsonl shows the prompt that was sent, and both models got the same text.
        assert {f"{x['model']}/{x['item_id']}": x["prompt"] for x in lines} == sent
        assert all(sent[f"api/q{i}"] == sent[f"api2/q{i}"] for i in range(20))

        # Resumed: the stored prompts give the same keys, so nothing is sent again.
        again = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
        assert again.exit_code == 0, again.output
        assert server.requests == 40
    results = json.loads((out / "results.json").read_text())
    assert results["models"]["api"]["metrics"]["exact_match"]["n"] == 20
    with sqlite3.connect(out / "store.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 40


def test_the_template_is_compiled_once_not_per_item() -> None:
    """Compiling costs a hundred renders: 2,000 renders must take less than 200 compiles (a
    compile per item would take ten times that)."""
    template = "".join(
        f"{{% if metadata.k{i} is defined %}}{{{{ metadata.k{i} }}}}{{% endif %}}"
        for i in range(30)
    )
    template += "{% for e in examples %}{{ e.input }} -> {{ e.reference }}\n{% endfor %}{{ input }}"
    shots = [Item(id=f"s{i}", input=f"shot {i}", reference="x", line=i + 1) for i in range(3)]
    items = [Item(id=f"i{n}", input=f"question {n}", line=n + 10) for n in range(2000)]

    began = time.perf_counter()
    for n in range(200):
        _ENV.from_string(template + f"{{# {n} #}}")
    compile_200 = time.perf_counter() - began

    began = time.perf_counter()
    prompts = [render(template, item, shots) for item in items]
    render_2000 = time.perf_counter() - began
    assert prompts[5].endswith("question 5") and "shot 2 -> x" in prompts[5]
    assert render_2000 < compile_200, (render_2000, compile_200)
