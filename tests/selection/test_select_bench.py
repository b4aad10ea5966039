"""`select` with a bench of a candidate's server (`bench:` in the study): its latency under load
replaces the estimate in the targets, the ranking, the recommendation and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from tests.serving import serving_servers
from tests.serving.serving_servers import Loopback
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()
loopback = serving_servers.loopback

MODEL = "mistralai/Mistral-7B-Instruct-v0.2"


def _bench(url: str, out: Path) -> None:
    result = runner.invoke(
        app,
        ["bench", url, "--concurrency", "1,2", "--requests", "4", "--output-tokens", "6",
         "--out", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def _select(folder: Path, *, users: int, bench: Path | None) -> dict[str, Any]:
    study_file = folder / "study.yaml"
    if not study_file.exists():
        assert runner.invoke(app, ["init", str(folder)]).exit_code == 0
    study: dict[str, Any] = yaml.safe_load(study_file.read_text())
    study["hardware"] = "H100-80GB"
    study["candidates"] = {"ids": [MODEL]}
    study["targets"].update(concurrent_users=users, tokens_per_s=10, ttft_p95_s=2.0)
    study["bench"] = [{"id": MODEL, "summary": str(bench)}] if bench else []
    study_file.write_text(yaml.safe_dump(study))
    result = runner.invoke(app, ["select", str(study_file), "--json", "--out", str(folder / "o")])
    assert result.exit_code in (0, 5), result.output
    selection: dict[str, Any] = json.loads(result.stdout)
    return selection


def _entry(selection: dict[str, Any]) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [e for e in selection["entries"] if e["id"] == MODEL]
    assert len(entries) == 1
    return entries[0]


def test_a_slow_server_under_load_misses_the_target_the_estimate_meets(
    loopback: Loopback, tmp_path: Path
) -> None:
    estimated = _entry(_select(tmp_path / "study", users=2, bench=None))
    assert estimated["rank"] == 1 and estimated["load"] is None
    assert 'id="load"' not in (tmp_path / "study" / "o" / "report.html").read_text()

    _bench(loopback(ttft=0.01, token_delay=0.2, usage=True), tmp_path / "slow")  # 5 tokens/s
    selection = _select(tmp_path / "study", users=2, bench=tmp_path / "slow")
    entry = _entry(selection)
    assert entry["rank"] is None
    assert entry["load"]["at"]["concurrency"] == 2
    assert [level["concurrency"] for level in entry["load"]["levels"]] == [1, 2]
    [miss] = entry["exclusions"]
    assert miss["key"] == "targets.tokens_per_s"
    assert (
        "tokens/s per user measured at 2 concurrent requests is under the 10 target"
        in (miss["reason"])
    )
    assert selection["recommendation"]["model"] is None


def test_a_fast_server_is_ranked_on_what_was_measured(loopback: Loopback, tmp_path: Path) -> None:
    _bench(loopback(ttft=0.01, token_delay=0.02, usage=True), tmp_path / "fast")  # ~50 tokens/s
    selection = _select(tmp_path / "study", users=4, bench=tmp_path / "fast" / "summary.json")
    entry = _entry(selection)
    assert entry["rank"] == 1 and not entry["exclusions"]
    measured = entry["load"]["at"]
    assert measured["concurrency"] == 2  # the most it was benched at: said in a warning
    assert 25 < measured["tokens_per_s"] <= 50
    summary = selection["recommendation"]["summary"]
    assert f"writes about {measured['tokens_per_s']:.3g} tokens/s per user" in summary
    assert "(measured under load at 2 concurrent requests)" in summary
    assert any("benched up to 2 concurrent requests" in w for w in selection["warnings"])
    report = (tmp_path / "study" / "o" / "report.md").read_text()
    assert "measured under load by a bench of" in report
    html = (tmp_path / "study" / "o" / "report.html").read_text()
    load = html[
        html.index('<section id="load">') : html.index("</section>", html.index('id="load"'))
    ]
    assert load.count("<polyline") == 2  # latency and per-user speed against throughput
    assert load.count("Mistral") >= 2  # the model's name in each chart's legend
    assert "target 2<" in load and "target 10<" in load  # TTFT p95 and tokens/s targets


def test_a_bench_of_a_model_outside_the_pool_names_the_study_line(tmp_path: Path) -> None:
    folder = tmp_path / "study"
    assert runner.invoke(app, ["init", str(folder)]).exit_code == 0
    study: dict[str, Any] = yaml.safe_load((folder / "study.yaml").read_text())
    study["candidates"] = {"ids": [MODEL]}
    study["bench"] = [{"id": "Qwen/Qwen2.5-7B-Instruct", "summary": "bench/summary.json"}]
    (folder / "study.yaml").write_text(yaml.safe_dump(study))
    result = runner.invoke(app, ["select", str(folder / "study.yaml"), "--json", "--no-report"])
    error = json.loads(result.stdout)["error"]
    assert result.exit_code != 0
    assert error["field"] == "bench.0.id" and error["line"] is not None
    assert "not among the candidates" in error["message"]
