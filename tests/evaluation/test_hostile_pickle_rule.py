"""Weights load from safetensors whenever a folder has them; pickled weights only when it has
nothing else and the study says `allow_pickle: true`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmselect.cli import app

runner = CliRunner()


def evaluate(tmp_path: Path, model: Path, allow_pickle: bool) -> tuple[int, str]:
    (tmp_path / "data.jsonl").write_text(
        '{"input": "Q: capital of France? A:", "reference": "x"}\n'
    )
    study = tmp_path / "study.yaml"
    flag = str(allow_pickle).lower()
    study.write_text(
        "dataset: {path: data.jsonl}\ntask: {max_tokens: 2}\nmetrics: [exact_match]\n"
        f"candidates: [{{name: m, transformers: '{model}', allow_pickle: {flag}}}]\n"
    )
    result = runner.invoke(app, ["eval", str(study), "--out", str(tmp_path / "out")])
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def safetensors_model(tmp_path: Path, tiny_models: tuple[Path, Path]) -> Path:
    model = tmp_path / "model"
    shutil.copytree(tiny_models[1], model)
    assert (model / "model.safetensors").is_file()
    return model


def test_allow_pickle_still_loads_a_safetensors_only_folder(
    tmp_path: Path, safetensors_model: Path
) -> None:
    code, output = evaluate(tmp_path, safetensors_model, allow_pickle=True)
    assert code == 0, output


def test_allow_pickle_prefers_safetensors_to_a_pickle_beside_them(
    tmp_path: Path, safetensors_model: Path
) -> None:
    # Any attempt to read this file fails: the run passes only if it is never opened.
    (safetensors_model / "pytorch_model.bin").write_bytes(b"\x80\x04not a pickle at all")
    code, output = evaluate(tmp_path, safetensors_model, allow_pickle=True)
    assert code == 0, output


def test_pickle_only_weights_need_the_flag(tmp_path: Path, tiny_models: tuple[Path, Path]) -> None:
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    model = tmp_path / "pickled"
    shutil.copytree(tiny_models[1], model)
    weights = model / "model.safetensors"
    torch.save(safetensors_torch.load_file(weights), model / "pytorch_model.bin")
    weights.unlink()
    code, output = evaluate(tmp_path, model, allow_pickle=False)
    assert code == 1
    assert "allow_pickle" in output
    code, output = evaluate(tmp_path, model, allow_pickle=True)
    assert code == 0, output
