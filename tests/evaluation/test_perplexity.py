"""The perplexity task: rolling log-likelihoods, corpus-level aggregation, lower-is-better."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import SHORT_CONTEXT
from llmselect.cli import app
from llmselect.evaluation.backends.base import rolling_windows
from llmselect.evaluation.statistics import compare, compare_corpus, corpus_ci

runner = CliRunner()
LONG_TEXT = (
    "Q: What is the capital of France? A: Paris. Q: What is the capital of Italy? A: Rome. "
    "Q: What is two plus two? A: four."
)


# -- windows --------------------------------------------------------------------------------


def test_windows_are_lm_evaluation_harness_windows() -> None:
    utils = pytest.importorskip("lm_eval.utils")
    for n in range(0, 40):
        for length in range(1, 12):
            tokens = list(range(100, 100 + n))
            seq = [7, *tokens]  # 7 plays the prefix token
            theirs = [
                utils.make_disjoint_window(w)
                for w in utils.get_rolling_token_windows(tokens, 7, length, 1)
            ]
            # lm-eval then reads (context + continuation)[-(length + 1):][:-1].
            expected = [((a + b)[-(length + 1) :][:-1], b) for a, b in theirs]
            mine = [(seq[s:e], seq[e - k + 1 : e + 1]) for s, e, k in rolling_windows(n, length)]
            assert mine == expected, (n, length)


# -- the transformers backend against a direct computation ------------------------------------


@pytest.fixture(scope="module")
def short_backend(short_context_model: Path) -> Iterator[Any]:
    from llmselect.evaluation.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend(short_context_model, name="short", batch_size=3, device="cpu")
    yield backend
    backend.close()


def direct(model: Any, read: list[int], predicted: list[int]) -> float:
    """Log-probability of `predicted`, the tokens that follow the last len(predicted) of `read`."""
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        logits = model(torch.tensor([read])).logits[0].float()
    logprobs = torch.log_softmax(logits[len(read) - len(predicted) :], dim=-1)
    return float(logprobs[torch.arange(len(predicted)), torch.tensor(predicted)].sum())


def test_rolling_loglikelihood_matches_a_direct_computation(
    short_backend: Any, short_context_model: Path
) -> None:
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(short_context_model)
    model = transformers.AutoModelForCausalLM.from_pretrained(short_context_model).eval()
    prefix = tok.eos_token_id  # the tiny tokenizer has no BOS
    ids = tok(LONG_TEXT, add_special_tokens=False)["input_ids"]
    n, w = len(ids), SHORT_CONTEXT
    assert 2 * w < n < 3 * w, "the text should need three windows"
    short_text = "Q: What is two plus two? A: four"
    short_ids = tok(short_text, add_special_tokens=False)["input_ids"]
    assert len(short_ids) <= w

    # Windows written out by hand: the first reads the prefix and predicts 16 tokens; the second
    # reads the 16 tokens before the ones it predicts (one of them already scored); the last
    # reads the 16 tokens before the end and predicts only the tokens not yet scored.
    seq = [prefix, *ids]
    expected = (
        direct(model, seq[0:w], seq[1 : w + 1])
        + direct(model, seq[w : 2 * w], seq[w + 1 : 2 * w + 1])
        + direct(model, seq[n - w : n], seq[2 * w + 1 : n + 1])
    )
    whole = direct(model, seq[:n], seq[1 : n + 1])  # one pass that sees all the context
    short_whole = direct(model, [prefix, *short_ids][:-1], short_ids)

    long_ll, short_ll = short_backend.loglikelihood_rolling([LONG_TEXT, short_text])
    assert long_ll == pytest.approx(expected, abs=1e-3)
    assert long_ll != pytest.approx(whole, abs=1e-3)  # the windows really cut the context
    assert short_ll == pytest.approx(short_whole, abs=1e-3)  # one window is the whole text
    # A window longer than the text is one full-sequence pass.
    (wide,) = short_backend.loglikelihood_rolling([LONG_TEXT], max_length=4 * w)
    assert wide == pytest.approx(whole, abs=1e-3)


# -- corpus statistics, lower is better -------------------------------------------------------


def word_perplexity(ll: Any, words: Any, axis: int = -1) -> Any:
    return np.exp(-np.sum(ll, axis=axis) / np.sum(words, axis=axis))


def test_corpus_value_is_a_ratio_of_sums_with_a_resampled_interval() -> None:
    ll, words = [-10.0, -200.0, -30.0, -45.0], [5, 50, 10, 20]
    ci = corpus_ci([ll, words], word_perplexity, seed=1)
    assert ci.mean == pytest.approx(math.exp(285 / 85))
    per_item_mean = float(np.mean(np.exp(-np.array(ll) / np.array(words))))
    assert ci.mean != pytest.approx(per_item_mean)  # not a mean of per-item perplexities
    assert ci.low < ci.mean < ci.high and ci.n == 4
    one = corpus_ci([[-3.0], [2]], word_perplexity)
    assert one.low == one.mean == one.high


def test_lower_is_better_names_the_lower_one_the_winner() -> None:
    rng = np.random.default_rng(0)
    words = rng.integers(5, 40, size=60).astype(float)
    ll_a = -words * rng.normal(3.0, 0.2, size=60)
    ll_b = ll_a + words * 0.3  # b predicts every text better: lower perplexity
    result = compare_corpus(
        "a",
        [ll_a, words],
        "b",
        [ll_b, words],
        metric="word_perplexity",
        statistic=word_perplexity,
        higher_is_better=False,
    )
    assert result.significant and result.diff < 0 and not result.higher_is_better
    assert result.sentence.startswith("b beats a by ")
    assert "on word_perplexity (lower is better), 95% CI" in result.sentence
    # The interval is said from the winner's side: both ends positive.
    low, high = result.sentence.split("CI ")[1].split(" (")[0].split("–")
    assert 0 < float(low) <= abs(result.diff) <= float(high)

    # The same per-item scores read as higher-is-better crown the other model.
    plain = compare("a", [1.0, 2.0, 3.0] * 10, "b", [1.5, 2.5, 3.5] * 10, metric="loss")
    lower = compare(
        "a",
        [1.0, 2.0, 3.0] * 10,
        "b",
        [1.5, 2.5, 3.5] * 10,
        metric="loss",
        higher_is_better=False,
        scale=1.0,
        unit="",
    )
    assert plain.sentence.startswith("b beats a by 50.0 points on loss, ")
    assert lower.sentence.startswith(
        "a beats b by 0.500 on loss (lower is better), 95% CI 0.500–0.500"
    )


def test_no_difference_keeps_the_sign_of_b_minus_a() -> None:
    words = [10.0] * 6
    result = compare_corpus(
        "a",
        [[-30.0, -31.0, -29.0, -30.0, -32.0, -28.0], words],
        "b",
        [[-31.0, -30.0, -30.0, -29.0, -31.0, -29.5], words],
        metric="word_perplexity",
        statistic=word_perplexity,
        higher_is_better=False,
    )
    assert not result.significant and result.warning
    assert result.sentence.startswith(
        "no significant difference between a and b on word_perplexity (lower is better) (+"
    )


# -- end to end --------------------------------------------------------------------------------


def write_study(tmp_path: Path, candidates: str, texts: list[str], task: str = "") -> Path:
    rows = [{"id": f"t{i}", "text": t} for i, t in enumerate(texts)]
    (tmp_path / "texts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "study.yaml").write_text(f"""
name: corpus
dataset: {{path: texts.jsonl, fields: {{input: text, id: id}}}}
task: {{kind: perplexity{task}}}
candidates:
{candidates}
""")
    return tmp_path / "study.yaml"


TEXTS = [
    "Q: What is the capital of France? A: Paris",
    "Q: What is the capital of England? A: London, a city on the Thames.",
    "Q: What is two plus two? A: four",
    LONG_TEXT,
    "Paris, London and Rome are capitals.",
]


def test_perplexity_study_end_to_end_with_resume(
    tmp_path: Path, tiny_models: tuple[Path, Path], short_context_model: Path
) -> None:
    study = write_study(
        tmp_path,
        f"  - {{name: long, transformers: {tiny_models[0]}}}\n"
        f"  - {{name: short, transformers: {short_context_model}}}\n",
        TEXTS,
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["warnings"] == []  # no reference is expected of a text
    lines = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    for name in ("long", "short"):
        metrics = results["models"][name]["metrics"]
        assert set(metrics) == {"word_perplexity", "byte_perplexity", "bits_per_byte"}
        mine = [x for x in lines if x["model"] == name]
        assert [x["words"] for x in mine] == [len(t.split()) for t in TEXTS]
        assert [x["bytes"] for x in mine] == [len(t.encode()) for t in TEXTS]
        total_ll = sum(x["loglikelihood"] for x in mine)
        n_words, n_bytes = sum(x["words"] for x in mine), sum(x["bytes"] for x in mine)
        assert metrics["word_perplexity"]["mean"] == pytest.approx(math.exp(-total_ll / n_words))
        assert metrics["byte_perplexity"]["mean"] == pytest.approx(math.exp(-total_ll / n_bytes))
        assert metrics["bits_per_byte"]["mean"] == pytest.approx(-total_ll / n_bytes / math.log(2))
        for ci in metrics.values():
            assert ci["low"] <= ci["mean"] <= ci["high"] and ci["n"] == 5
            assert ci["higher_is_better"] is False
        # Texts are scored, not generated: how long they took, but no token speed.
        latency = results["models"][name]["latency"]
        assert latency["n"] == 5 and latency["items_per_s"] > 0
        assert latency["tokens_per_s"] is None
    comparisons = results["comparisons"]
    assert [c["metric"] for c in comparisons] == list(results["models"]["long"]["metrics"])
    assert all("(lower is better)" in c["sentence"] for c in comparisons)

    # Rerunning scores nothing again and gives the same numbers from the store.
    with sqlite3.connect(out / "store.sqlite") as db:
        before = db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
    again = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert again.exit_code == 0, again.output
    with sqlite3.connect(out / "store.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == before == 10
    assert json.loads((out / "results.json").read_text())["models"] == results["models"]

    # Another window is another measurement: stored apart, never mixed with the first.
    write_study(
        tmp_path,
        f"  - {{name: long, transformers: {tiny_models[0]}}}\n",
        TEXTS,
        task=", max_length: 8",
    )
    third = runner.invoke(app, ["eval", str(study), "--out", str(out), "--json"])
    assert third.exit_code == 0, third.output
    narrow = json.loads((out / "results.json").read_text())["models"]["long"]["metrics"]
    wide = results["models"]["long"]["metrics"]["word_perplexity"]["mean"]
    assert narrow["word_perplexity"]["mean"] != pytest.approx(wide)
    with sqlite3.connect(out / "store.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 15


def test_aggregation_is_lm_evaluation_harness_own() -> None:
    metrics = pytest.importorskip("lm_eval.api.metrics")
    from llmselect.evaluation.runner import PERPLEXITY_METRICS, count_words

    ll, words, n_bytes = [-40.5, -7.25, -130.0], [9, 2, 31], [44, 10, 170]
    theirs = {
        "word_perplexity": metrics.weighted_perplexity(list(zip(ll, words, strict=True))),
        "byte_perplexity": metrics.weighted_perplexity(list(zip(ll, n_bytes, strict=True))),
        "bits_per_byte": metrics.bits_per_byte(list(zip(ll, n_bytes, strict=True))),
    }
    for name, (unit, statistic) in PERPLEXITY_METRICS.items():
        units = words if unit == "words" else n_bytes
        assert float(statistic(np.array(ll), np.array(units))) == pytest.approx(theirs[name])
    # lm-eval's word count splits on whitespace runs, so edge spaces count as empty words.
    assert count_words(" two  words ") == 4


def test_perplexity_refuses_few_shot_and_chat(tmp_path: Path) -> None:
    study = write_study(
        tmp_path, "  - {name: m, openai: http://127.0.0.1:9, model: m}\n", ["a"], ", few_shot: 1"
    )
    result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code != 0
    assert "neither few_shot nor chat" in json.loads(result.stdout)["error"]["message"]


# -- over HTTP ---------------------------------------------------------------------------------


class EchoServer:
    """Scores whitespace tokens at -1.0 each (the first has none); `mode` breaks it on purpose:
    "min1" refuses max_tokens 0 and appends a generated token, "nologprobs" leaves them out."""

    def __init__(self, mode: str) -> None:
        self.bodies: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.bodies.append(body)
                if mode == "min1" and body["max_tokens"] < 1:
                    self._send(400, {"error": {"message": "max_tokens must be at least 1"}})
                    return
                text: str = body["prompt"]
                offsets, values, position = [], [], 0
                for word in text.split(" "):
                    offsets.append(position)
                    values.append(-1.0)
                    position += len(word) + 1
                values[0] = None
                if body["max_tokens"] >= 1:  # a generated token, past the end of the text
                    offsets.append(len(text))
                    values.append(-50.0)
                logprobs = {"text_offset": offsets, "token_logprobs": values}
                choice = {"text": text} if mode == "nologprobs" else {"logprobs": logprobs}
                self._send(200, {"choices": [choice]})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> EchoServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("mode", ["plain", "min1"])
def test_http_perplexity_from_echoed_logprobs(tmp_path: Path, mode: str) -> None:
    texts = ["one two three", "four five six seven eight"]
    with EchoServer(mode) as server:
        study = write_study(
            tmp_path, f'  - {{name: api, openai: "{server.url}", model: m}}\n', texts
        )
        result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "o"), "--json"])
        assert result.exit_code == 0, result.output
        assert all(b["echo"] and b["logprobs"] for b in server.bodies)
        if mode == "min1":  # refused at 0, asked again for one token, which is left out
            assert [b["max_tokens"] for b in server.bodies].count(1) == 2
    lines = [json.loads(x) for x in (tmp_path / "o" / "samples.jsonl").read_text().splitlines()]
    assert [x["loglikelihood"] for x in lines] == [-2.0, -4.0]
    metrics = json.loads(result.stdout)["models"]["api"]["metrics"]
    assert metrics["word_perplexity"]["mean"] == pytest.approx(math.exp(6 / 8))


def test_http_server_without_logprobs_is_a_clear_error(tmp_path: Path) -> None:
    with EchoServer("nologprobs") as server:
        study = write_study(
            tmp_path, f'  - {{name: api, openai: "{server.url}", model: m}}\n', ["a b"]
        )
        result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert "did not return the text's log-probabilities" in error["message"]
    assert error["file"] == server.url and "echo" in error["hint"]
