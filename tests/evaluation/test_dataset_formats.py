"""Parquet and Arrow files, `save_to_disk` folders and Hub-style dataset repositories."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from openai_server import FakeServer
from typer.testing import CliRunner

from llmselect.cli import app
from llmselect.errors import LLMSelectError
from llmselect.evaluation.datasets import FieldMap, load_dataset

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

runner = CliRunner()


def write_parquet(path: Path, columns: dict[str, list[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


def test_parquet_maps_fields_and_list_columns(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "mc.parquet",
        {
            "question": ["Sky?", "Grass?"],
            "options": [["red", "blue"], ["green", "pink"]],
            "answer": ["blue", "green"],
            "topic": ["nature", "nature"],
        },
    )
    data = load_dataset(path, FieldMap(input="question", reference="answer", choices="options"))
    first, second = data.items
    assert (first.choices, first.reference, second.reference) == (["red", "blue"], 1, 0)
    assert first.metadata == {"topic": "nature"}
    # Parquet rows are named by their 0-based row index, in ids and in the item itself.
    assert (first.id, second.id, second.row) == ("row-0", "row-1", 1)
    assert data.sha256 and data.split is None


def test_parquet_error_names_the_file_row_index_and_field(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "d.parquet", {"text": ["a", "b", None], "reference": ["x", "y", "z"]}
    )
    with pytest.raises(LLMSelectError) as err:
        load_dataset(path, FieldMap(input="text"))
    assert (err.value.file, err.value.field) == (str(path), "text")
    assert "row index 2" in str(err.value)


def test_parquet_without_pyarrow_says_which_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_parquet(tmp_path / "d.parquet", {"input": ["a"]})
    for name in ("pyarrow", "pyarrow.parquet", "pyarrow.ipc"):
        monkeypatch.setitem(sys.modules, name, None)  # `import pyarrow` now fails
    with pytest.raises(LLMSelectError) as err:
        load_dataset(path)
    assert err.value.hint == "pip install 'llmselect[data]'"


def test_arrow_ipc_file_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "d.arrow"
    table = pa.table({"input": ["a", "b"], "reference": ["1", "2"]})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    assert [i.reference for i in load_dataset(path).items] == ["1", "2"]


def test_save_to_disk_folder_read_without_the_datasets_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets")
    single = tmp_path / "single"
    datasets.Dataset.from_dict({"input": ["one", "two"], "reference": ["1", "2"]}).save_to_disk(
        str(single)
    )
    both = tmp_path / "both"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"input": ["t1", "t2", "t3"]}),
            "test": datasets.Dataset.from_dict({"input": ["e1"], "reference": ["r"]}),
        }
    ).save_to_disk(str(both))
    monkeypatch.setitem(sys.modules, "datasets", None)  # only pyarrow reads it

    data = load_dataset(single)
    assert [(i.input, i.reference) for i in data.items] == [("one", "1"), ("two", "2")]
    assert data.split == "train" and data.files[0].endswith(".arrow")

    assert load_dataset(both).split == "test"  # held-out data first
    train = load_dataset(both, FieldMap(reference=None), split="train")
    assert [i.input for i in train.items] == ["t1", "t2", "t3"]
    with pytest.raises(LLMSelectError) as err:
        load_dataset(both, split="validation")
    assert "test, train" in err.value.message and err.value.field == "dataset.split"


def hub_repo(root: Path) -> Path:
    """A dataset repository as `push_to_hub` writes it, with a split in two shards."""
    write_parquet(root / "data/train-00000-of-00001.parquet", {"input": ["t"], "reference": ["a"]})
    write_parquet(
        root / "data/validation-00000-of-00002.parquet",
        {"input": ["v1", "v2"], "reference": ["a", "b"]},
    )
    write_parquet(
        root / "data/validation-00001-of-00002.parquet",
        {"input": ["v3", None], "reference": ["c", "d"]},
    )
    (root / "README.md").write_text("---\nlicense: mit\n---\n# A dataset\n")
    (root / ".git").mkdir()
    (root / ".git" / "test.jsonl").write_text("not data\n")  # hidden folders are not data
    return root


def test_hub_repo_picks_the_split_and_names_the_shard_in_errors(tmp_path: Path) -> None:
    repo = hub_repo(tmp_path / "repo")
    with pytest.raises(LLMSelectError) as err:
        load_dataset(repo)  # no test split: validation, whose second shard has a bad row
    assert err.value.file == str(repo / "data/validation-00001-of-00002.parquet")
    assert "row index 1" in err.value.message and err.value.field == "input"

    data = load_dataset(repo, limit=3)
    assert data.split == "validation"
    assert [i.input for i in data.items] == ["v1", "v2", "v3"]
    # Ids stay unique across shards: each names its file.
    assert data.items[2].id == "validation-00001-of-00002.parquet:row-0"
    assert load_dataset(repo, split="train").items[0].input == "t"
    with pytest.raises(LLMSelectError) as err:
        load_dataset(repo, split="test")
    assert "(it has: train, validation)" in err.value.message


def test_repo_split_names_from_files_and_folders(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "dev").mkdir(parents=True)
    (repo / "dev" / "part.csv").write_text("input,reference\nd,1\n")
    (repo / "pretrain_notes.jsonl").write_text('{"input": "x"}\n')  # `pretrain` is not `train`
    (repo / "test.jsonl").write_text('{"input": "a", "reference": "1"}\n{"reference": "2"}\n')
    with pytest.raises(LLMSelectError) as err:
        load_dataset(repo)
    assert (err.value.file, err.value.line, err.value.field) == (
        str(repo / "test.jsonl"),
        2,
        "input",
    )
    validation = load_dataset(repo, split="validation")
    assert [i.input for i in validation.items] == ["d"]
    assert any("pretrain_notes.jsonl: not read" in w for w in validation.warnings)
    with pytest.raises(LLMSelectError) as err:
        load_dataset(repo, split="train")
    assert "(it has: test, validation)" in err.value.message


def test_a_repo_without_split_names_is_one_train_split(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_parquet(repo / "corpus.parquet", {"input": ["a", "b"]})
    data = load_dataset(repo, FieldMap(reference=None))
    assert data.split == "train" and len(data.items) == 2


def test_the_digest_follows_the_data(tmp_path: Path) -> None:
    repo = hub_repo(tmp_path / "repo")
    before = load_dataset(repo, split="train").sha256
    write_parquet(repo / "data/train-00000-of-00001.parquet", {"input": ["t2"]})
    assert load_dataset(repo, split="train").sha256 != before


def test_split_on_a_single_file_is_an_error(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "d.parquet", {"input": ["a"]})
    with pytest.raises(LLMSelectError) as err:
        load_dataset(path, split="test")
    assert err.value.field == "dataset.split"


def test_eval_reads_a_split_of_a_repo_folder(tmp_path: Path) -> None:
    repo = tmp_path / "capitals"
    write_parquet(
        repo / "data/test-00000-of-00001.parquet",
        {
            "question": ["What is the capital of France?", "What is the capital of Italy?"],
            "answer": ["Paris", "Rome"],
        },
    )
    write_parquet(repo / "data/train-00000-of-00001.parquet", {"question": ["x"], "answer": ["y"]})
    with FakeServer() as server:
        (tmp_path / "study.yaml").write_text(f"""
dataset: {{path: capitals, split: test, fields: {{input: question, reference: answer}}}}
task: {{kind: generate, template: "{{{{ input }}}} A:"}}
metrics: [exact_match]
candidates:
  - {{name: api, openai: "{server.url}", model: tiny}}
""")
        out = tmp_path / "out"
        result = runner.invoke(app, ["eval", str(tmp_path / "study.yaml"), "--out", str(out)])
        assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["split"] == "test" and results["dataset"]["items"] == 2
    assert results["models"]["api"]["metrics"]["exact_match"]["mean"] == 1.0
