"""`llmselect data check` as a user runs it: counts, repeats, leakage, lengths, labels, verdict."""

from __future__ import annotations

import csv
import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.evaluation.datasets import Item
from llmselect.finetune.data_check import NOT_READY_EXIT_CODE, _row, _Sketches, normalize
from llmselect.finetune.near_duplicates import _rows_per_band, _shingles, near_pairs, sketch

runner = CliRunner()
WORDS = [
    "".join(random.Random(seed).choices("abcdefghijklmnopqrstuvwxyz", k=3 + seed % 7))
    for seed in range(2000)
]
TOKENIZER_CORPUS = [
    "Q: What is the capital of France? A: Paris",
    "Q: What is the capital of Italy? A: Rome",
    "Q: What is two plus two? A: four",
] * 20


def sentences(count: int, seed: int, words: int = 14) -> list[str]:
    """Distinct random-word sentences: far from one another (Jaccard well below 0.5)."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=words)) for _ in range(count)]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def check(*args: str | Path) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["data", "check", *map(str, args), "--json"])
    assert result.exit_code in (0, NOT_READY_EXIT_CODE), result.output
    return result.exit_code, json.loads(result.stdout)


def pairs(matches: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(m["line"], m["of_line"]) for m in matches]


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A byte-level BPE tokenizer saved as a model folder whose config says 64 positions."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<pad>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(TOKENIZER_CORPUS, trainer)
    folder = tmp_path_factory.mktemp("tiny-tokenizer")
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>"
    )
    fast.save_pretrained(folder)
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"]}
    (folder / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 64}))
    return folder


# --------------------------------------------------------------------------- repeats


def test_jsonl_counts_identical_near_and_conflicting_rows_with_their_lines(tmp_path: Path) -> None:
    texts = sentences(30, seed=1)
    rows: list[dict[str, Any]] = [
        {"input": t, "reference": f"answer {i}"} for i, t in enumerate(texts)
    ]
    rows[9] = {"input": "  " + texts[2].upper() + " ", "reference": "ANSWER 2"}  # line 10 = line 3
    words = texts[4].split()
    rows[14] = {"input": " ".join([*words[:-1], words[-1] + "s"]), "reference": "answer 4"}
    rows[19] = {"input": texts[6], "reference": "another answer"}  # line 20: input of line 7
    rows[24]["reference"] = ""  # line 25
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    path.write_text(path.read_text().replace("\n", "\n\n", 1))  # a blank line keeps numbering

    code, report = check(path)
    assert report["rows"] == 30
    assert report["usable_rows"] == 29
    assert report["empty_reference_lines"] == [26]
    assert pairs(report["duplicates"]["identical"]) == [(11, 4)]
    assert pairs(report["duplicates"]["near"]) == [(16, 6)]
    assert 0.8 <= report["duplicates"]["near"][0]["similarity"] < 1
    assert pairs(report["duplicates"]["conflicting"]) == [(21, 8)]
    assert report["verdict"] == "usable with warnings" and code == 0
    messages = [a["message"] for a in report["advice"]]
    assert any("line 11" in m and "repeats an earlier example" in m for m in messages)
    assert any("line 26" in m and "empty reference" in m for m in messages)
    assert any("fewer than 100 examples" in m for m in messages)


def test_csv_with_mapped_fields_gives_file_line_numbers(tmp_path: Path) -> None:
    texts = sentences(12, seed=2)
    path = tmp_path / "train.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "answer"])
        for i, text in enumerate(texts):
            writer.writerow([text, f"answer {i}"])
        writer.writerow([texts[3], "answer 3"])  # row 13, line 14 (the header is line 1)
    _, report = check(path, "--input-field", "question", "--reference-field", "answer")
    assert report["rows"] == 13
    assert report["fields"]["input"] == "question"
    assert pairs(report["duplicates"]["identical"]) == [(14, 5)]


def test_near_threshold_decides_what_is_near(tmp_path: Path) -> None:
    rows = [
        {"input": "What is the capital of France?", "reference": "Paris"},
        {"input": "What is the capital of Spain?", "reference": "Madrid"},
        *({"input": t, "reference": "x"} for t in sentences(10, seed=3)),
    ]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    assert check(path)[1]["duplicates"]["near"] == []
    _, loose = check(path, "--near-threshold", "0.3")
    assert pairs(loose["duplicates"]["near"]) == [(2, 1)]
    result = runner.invoke(app, ["data", "check", str(path), "--near-threshold", "1.5"])
    assert result.exit_code == 2
    assert "near threshold" in result.stderr


# --------------------------------------------------------------------------- leakage


def test_leakage_is_found_with_eval_and_train_lines(tmp_path: Path) -> None:
    texts = sentences(40, seed=4)
    train = write_jsonl(
        tmp_path / "train.jsonl", [{"input": t, "reference": f"a{i}"} for i, t in enumerate(texts)]
    )
    fresh = sentences(3, seed=5)
    edited = texts[20].split()
    edited[3] += "s"  # a typo: about 0.9 alike
    evaluation = write_jsonl(
        tmp_path / "eval.jsonl",
        [
            {"input": fresh[0], "reference": "b0"},
            {"input": texts[7], "reference": "a7"},  # line 2: identical to train line 8
            {"input": fresh[1], "reference": "b1"},
            {"input": texts[11].title(), "reference": "other"},  # line 4: same input, case aside
            {"input": " ".join(edited), "reference": "a20"},  # line 5: near train line 21
            {"input": fresh[2], "reference": "b2"},
        ],
    )
    code, report = check(train, "--eval", evaluation)
    leak = report["leakage"]
    assert leak["eval_rows"] == 6
    assert pairs(leak["leaked"]) == [(2, 8), (4, 12), (5, 21)]
    assert [m["identical"] for m in leak["leaked"]] == [True, True, False]
    assert leak["identical_input"] == 2 and leak["near_input"] == 1
    # Line 4's input+reference differs only in a short reference: near on that key too.
    assert leak["identical_example"] == 1 and leak["near_example"] == 2
    assert report["verdict"] == "not ready" and code == NOT_READY_EXIT_CODE

    result = runner.invoke(
        app, ["data", "check", str(train), "--eval", str(evaluation)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == NOT_READY_EXIT_CODE
    assert "not ready" in result.stdout
    assert "remove 3 evaluation rows also found in the training set (lines 2, 4, 5" in result.stdout


def test_disjoint_sets_report_no_leak(tmp_path: Path) -> None:
    questions = [f"What is the capital of {c}?" for c in ("France", "Spain", "Peru", "Chad")]
    train_rows = [{"input": t, "reference": "x"} for t in [*sentences(60, seed=6), *questions]]
    eval_rows = [{"input": t, "reference": "x"} for t in sentences(30, seed=7)]
    eval_rows.append({"input": "What is the capital of Italy?", "reference": "Rome"})
    train = write_jsonl(tmp_path / "train.jsonl", train_rows)
    evaluation = write_jsonl(tmp_path / "eval.jsonl", eval_rows)
    _, report = check(train, "--eval", evaluation)
    assert report["leakage"]["leaked"] == []
    assert report["leakage"]["eval_rows"] == 31
    assert not any(a["check"] == "leakage" for a in report["advice"])


def test_dataset_folder_checks_its_train_split_against_its_test_split(tmp_path: Path) -> None:
    folder = tmp_path / "dataset"
    folder.mkdir()
    texts = sentences(30, seed=19)
    write_jsonl(folder / "train.jsonl", [{"input": t, "reference": "x"} for t in texts[:20]])
    write_jsonl(folder / "test.jsonl", [{"input": t, "reference": "x"} for t in texts[18:]])
    _, report = check(folder, "--eval", folder)
    assert report["rows"] == 20
    assert report["leakage"]["eval_rows"] == 12
    assert pairs(report["leakage"]["leaked"]) == [(1, 19), (2, 20)]


# --------------------------------------------------------------------------- lengths


def test_too_long_rows_counted_with_a_local_tokenizer(tmp_path: Path, tiny_tokenizer: Path) -> None:
    from tokenizers import Tokenizer

    short = "Q: What is the capital of France?"
    long = " ".join(["Q: What is the capital of Italy? A: Rome"] * 12)
    rows = [{"input": f"{short} ({i})", "reference": "Paris"} for i in range(18)]
    rows[4] = {"input": long, "reference": "Rome"}  # line 5
    rows[11] = {"input": long + " again", "reference": "Rome"}  # line 12
    path = write_jsonl(tmp_path / "train.jsonl", rows)

    _, report = check(path, "--model", tiny_tokenizer)
    lengths = report["lengths"]
    assert lengths["estimated"] is False
    assert str(tiny_tokenizer) in lengths["counted_with"]
    assert lengths["context"] == 64 and lengths["limit"] == 64
    assert lengths["over_limit_lines"] == [5, 12]
    counter = Tokenizer.from_file(str(tiny_tokenizer / "tokenizer.json"))
    longest = len(counter.encode(long + " again").ids) + len(counter.encode("Rome").ids)
    assert lengths["max"] == longest > 64
    assert any("exceed 64 tokens: they will be truncated" in a["message"] for a in report["advice"])

    _, roomy = check(path, "--model", tiny_tokenizer, "--max-tokens", "1k")
    assert roomy["lengths"]["limit"] == 1000 and roomy["lengths"]["over_limit_lines"] == []
    assert any("more than the model's context" in a["message"] for a in roomy["advice"])


def test_too_long_rows_against_a_catalog_model_are_estimated(tmp_path: Path) -> None:
    rows = [{"input": "x" * 20_000, "reference": "y"} for _ in range(6)]
    rows += [{"input": t, "reference": "z"} for t in sentences(6, seed=8)]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    code, report = check(path, "--model", "meta-llama/Llama-2-7b-hf")
    lengths = report["lengths"]
    assert lengths["estimated"] is True and "characters / 4" in lengths["counted_with"]
    assert lengths["context"] == 4096 and "meta-llama/Llama-2-7b-hf" in lengths["context_source"]
    assert lengths["over_limit_lines"] == [1, 2, 3, 4, 5, 6]
    assert lengths["max"] == 5001  # (20000 + 1) / 4, rounded up
    # Half the rows would be truncated: that blocks training.
    assert report["verdict"] == "not ready" and code == NOT_READY_EXIT_CODE
    assert any("50% of rows (6) exceed 4096 tokens" in a["message"] for a in report["advice"])


def test_unknown_model_is_a_usage_error_with_a_hint(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [{"input": "a", "reference": "b"}])
    result = runner.invoke(
        app, ["data", "check", str(path), "--model", "meta-llama/Llama-2-7b-base"]
    )
    assert result.exit_code == 2
    assert "unknown model id" in result.stderr
    assert "local model folder" in result.stderr


def test_a_folder_without_a_tokenizer_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [{"input": "a", "reference": "b"}])
    (tmp_path / "empty-model").mkdir()
    result = runner.invoke(
        app, ["data", "check", str(path), "--model", str(tmp_path / "empty-model")]
    )
    assert result.exit_code == 1
    assert "cannot load a tokenizer" in result.stderr and "empty-model" in result.stderr


# --------------------------------------------------------------------------- labels


def test_label_imbalance_is_reported_with_counts(tmp_path: Path) -> None:
    texts = sentences(100, seed=9)
    rows = [
        {"input": t, "reference": "spam" if i % 10 == 0 else "ham"} for i, t in enumerate(texts)
    ]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    evaluation = write_jsonl(
        tmp_path / "eval.jsonl", [{"input": "fresh text here", "reference": "phishing"}]
    )
    _, report = check(train, "--eval", evaluation)
    labels = report["labels"]
    assert labels["counts"] == {"ham": 90, "spam": 10}
    assert labels["majority"] == "ham" and labels["majority_share"] == 0.9
    assert labels["imbalanced"] is True
    assert labels["unseen_eval_labels"] == ["phishing"]
    assert any("'ham' is 90% of the rows" in a["message"] for a in report["advice"])


def test_balanced_labels_and_free_text_references(tmp_path: Path) -> None:
    texts = sentences(100, seed=10)
    balanced = [{"input": t, "reference": ("yes", "no")[i % 2]} for i, t in enumerate(texts)]
    _, report = check(write_jsonl(tmp_path / "labels.jsonl", balanced))
    assert report["labels"]["counts"] == {"yes": 50, "no": 50}
    assert report["labels"]["imbalanced"] is False
    free = [{"input": t, "reference": f"answer {i}"} for i, t in enumerate(texts)]
    assert check(write_jsonl(tmp_path / "free.jsonl", free))[1]["labels"] is None


# --------------------------------------------------------------------------- errors, JSON, verdict


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(
        '{"input": "a", "reference": "b"}\n{"input": "c", "reference": "d"}\n{"input":\n'
    )
    result = runner.invoke(app, ["data", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:3" in result.stderr and "invalid JSON" in result.stderr
    as_json = runner.invoke(app, ["data", "check", str(path), "--json"])
    error = json.loads(as_json.stdout)["error"]
    assert error["file"] == str(path) and error["line"] == 3

    missing = write_jsonl(tmp_path / "missing.jsonl", [{"input": "a"}, {"prompt": "b"}])
    result = runner.invoke(app, ["data", "check", str(missing)])
    assert result.exit_code == 1
    assert f"{missing}:2" in result.stderr and "input" in result.stderr


def test_no_reference_field_is_not_ready(tmp_path: Path) -> None:
    rows = [{"input": t, "output": "x"} for t in sentences(20, seed=11)]
    code, report = check(write_jsonl(tmp_path / "train.jsonl", rows))
    assert report["usable_rows"] == 0 and code == NOT_READY_EXIT_CODE
    assert any("--reference-field" in a["message"] for a in report["advice"])
    code, report = check(tmp_path / "train.jsonl", "--reference-field", "output")
    assert report["usable_rows"] == 20 and code == 0


def test_ready_data_json_shape_and_exit_code(tmp_path: Path) -> None:
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [{"input": t, "reference": f"answer {i}"} for i, t in enumerate(sentences(120, seed=12))],
    )
    evaluation = write_jsonl(
        tmp_path / "eval.jsonl",
        [{"input": t, "reference": f"answer {i}"} for i, t in enumerate(sentences(20, seed=13))],
    )
    code, report = check(train, "--eval", evaluation, "--max-tokens", "4096")
    assert code == 0 and report["verdict"] == "ready"
    assert set(report) == {
        "train",
        "train_sha256",
        "eval",
        "eval_sha256",
        "fields",
        "near_threshold",
        "rows",
        "usable_rows",
        "empty_reference_lines",
        "duplicates",
        "leakage",
        "lengths",
        "labels",
        "verdict",
        "advice",
    }
    assert set(report["duplicates"]) == {"identical", "near", "conflicting"}
    assert set(report["lengths"]) >= {"min", "p50", "p90", "p99", "max", "limit", "estimated"}
    assert report["lengths"]["min"] <= report["lengths"]["p50"] <= report["lengths"]["max"]
    assert all(a["severity"] == "note" for a in report["advice"])
    human = runner.invoke(app, ["data", "check", str(train), "--eval", str(evaluation)])
    assert human.exit_code == 0
    assert "ready" in human.stdout and "not ready" not in human.stdout


def test_few_rows_are_not_ready(tmp_path: Path) -> None:
    rows = [{"input": t, "reference": "x y z"} for t in sentences(5, seed=14)]
    code, report = check(write_jsonl(tmp_path / "train.jsonl", rows))
    assert code == NOT_READY_EXIT_CODE
    assert any(a["severity"] == "blocker" and a["check"] == "size" for a in report["advice"])


def test_row_text_cannot_style_the_terminal(tmp_path: Path) -> None:
    rows = [{"input": t, "reference": "[red]x[/red]"} for t in sentences(60, seed=15)]
    rows += [{"input": t, "reference": "[bold]y"} for t in sentences(6, seed=16)]
    result = runner.invoke(
        app, ["data", "check", str(write_jsonl(tmp_path / "t.jsonl", rows))], env={"COLUMNS": "200"}
    )
    assert "[red]x[/red] 60" in result.stdout and "[bold]y 6" in result.stdout


# --------------------------------------------------------------------------- internals


def test_near_pairs_equal_a_brute_force_jaccard() -> None:
    """MinHash and LSH only propose candidates: what they return must match exact Jaccard."""
    rng = random.Random(17)
    texts = sentences(150, seed=18, words=30)
    for base in list(texts[:100]):
        words = base.split()
        for _ in range(rng.randint(1, 6)):
            words[rng.randrange(len(words))] = rng.choice(WORDS)
        texts.append(" ".join(words))
    texts = list(dict.fromkeys(texts))
    shingles = _shingles(texts)
    sets = [set(shingles.of(i).tolist()) for i in range(len(texts))]
    expected = {
        (i, j)
        for i, j in itertools.combinations(range(len(texts)), 2)
        if len(sets[i] & sets[j]) / len(sets[i] | sets[j]) >= 0.8
    }
    assert len(expected) > 30  # the edits span both sides of the threshold
    found = near_pairs(texts, 0.8)
    assert {(i, j) for i, j, _ in found} == expected
    for i, j, similarity in found:
        assert similarity == pytest.approx(len(sets[i] & sets[j]) / len(sets[i] | sets[j]))


def test_shingles_of_short_texts_and_normalization() -> None:
    assert normalize("  Hello\u00a0 WORLD\n") == "hello world"
    assert normalize("ﬁne") == "fine"  # NFKC folds the ligature
    shingles = _shingles(["abc", "abcdefg", "abc"])
    assert list(shingles.counts) == [1, 3, 1]
    assert shingles.of(0).tolist() == shingles.of(2).tolist()
    assert not set(shingles.of(0).tolist()) & set(shingles.of(1).tolist())
    assert near_pairs(["abc", "abd"], 0.8) == []
    # A stricter threshold needs wider bands to keep false candidates out.
    assert _rows_per_band(0.5) < _rows_per_band(0.8) < _rows_per_band(0.95)


def test_joined_sketches_equal_sketches_of_the_joined_texts() -> None:
    """Inputs are hashed once for both keys: the shortcut must give the same MinHash and sets."""
    inputs = ["Hi", "abcd", "What is the capital of France?", *sentences(20, seed=20)]
    references = ["x", "", "Paris", *(f"answer {i}" for i in range(20))]
    rows = [
        _row(Item(id=str(i), input=text, reference=ref, line=i + 1))
        for i, (text, ref) in enumerate(zip(inputs, references, strict=True))
    ]
    keys = [r.example_key for r in rows]
    shortcut, direct = _Sketches(rows).examples(keys), sketch(keys)
    assert (shortcut.signatures == direct.signatures).all()
    assert all(shortcut.shingle_set(i) == direct.shingle_set(i) for i in range(len(keys)))
    inputs_only = _Sketches(rows).inputs([r.input_key for r in rows])
    assert (inputs_only.signatures == sketch([r.input_key for r in rows]).signatures).all()
