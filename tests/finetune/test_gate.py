"""The license gate: it stops fine-tunes the base model's license does not allow under the use
profile, warns on duties, and --force overrides a stop only with the override on record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from llmselect.catalog import Catalog, ModelCard, load_catalog
from llmselect.catalog.schema import Licenses, TrainingData
from llmselect.cli import app
from llmselect.finetune.gate import GateResult, license_gate, stop_error
from llmselect.licensing.profile import UseProfile

runner = CliRunner()
COMMERCIAL = UseProfile()
SHARED_NON_COMMERCIAL = UseProfile(commercial=False, distribute_derivative=True)


def _card(weights: str, model_id: str = "acme/base") -> ModelCard:
    return ModelCard(
        id=model_id,
        family="test",
        licenses=Licenses(code="apache-2.0", weights=weights, data=TrainingData(disclosure="full")),
    )


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _gate(
    catalog: Catalog, weights: str, profile: UseProfile, name: str = "my-tune", **options: Any
) -> GateResult:
    card = _card(weights)
    catalog.add(card, replace=True)
    return license_gate(card, catalog, profile, derivative_name=name, **options)


def test_a_non_commercial_base_stops_under_a_commercial_profile(catalog: Catalog) -> None:
    gate = _gate(catalog, "cc-by-nc-4.0", COMMERCIAL)
    assert gate.decision == "stop" and not gate.proceeds
    assert gate.stops[0].message == "commercial use is not granted"
    assert gate.stops[0].license == "cc-by-nc-4.0"
    error = stop_error(gate)
    assert error.exit_code == 3 and "--force" in (error.hint or "")
    assert "commercial use is not granted" in error.message


def test_no_derivatives_stops_a_shared_fine_tune_and_warns_an_in_house_one(
    catalog: Catalog,
) -> None:
    shared = _gate(catalog, "cc-by-nc-nd-4.0", SHARED_NON_COMMERCIAL)
    assert shared.decision == "stop"
    assert "adapted versions may not be shared" in [r.message for r in shared.stops]

    in_house = _gate(catalog, "cc-by-nc-nd-4.0", UseProfile(commercial=False))
    assert in_house.decision != "stop"
    assert any(
        n.startswith("distributing this fine-tune would be blocked: adapted versions")
        for n in in_house.notes
    )


def test_apache_passes_and_lists_what_sharing_would_owe(catalog: Catalog) -> None:
    gate = _gate(catalog, "apache-2.0", COMMERCIAL)
    assert gate.decision == "pass" and gate.proceeds and not gate.stops
    assert gate.obligations, "apache-2.0's notice duties apply to a shared fine-tune"
    assert {o.when for o in gate.obligations} == {"when distributed"}
    assert {o.license for o in gate.obligations} == {"apache-2.0"}


def test_llama_3_naming_duty_is_checked_against_the_planned_name(catalog: Catalog) -> None:
    base = catalog.get("meta-llama/Meta-Llama-3-8B")
    profile = UseProfile(distribute_derivative=True)
    wrong = license_gate(base, catalog, profile, derivative_name="support-bot")
    assert wrong.decision == "stop"
    assert any("must begin with 'Llama 3'" in r.message for r in wrong.stops)

    right = license_gate(base, catalog, profile, derivative_name="Llama-3-support-bot")
    assert right.decision == "warn"
    assert "naming duty for derived models" in [o.duty for o in right.obligations]
    # The Llama 3 license's duties are owed now, so the gate warns.
    assert any(o.when == "always" for o in right.obligations)


def test_an_unknown_weights_license_stops(catalog: Catalog) -> None:
    gate = _gate(catalog, "other", COMMERCIAL)
    assert gate.decision == "stop"
    assert gate.stops[0].verdict == "unknown"


def test_force_proceeds_over_a_stop_and_says_so(catalog: Catalog) -> None:
    gate = _gate(catalog, "cc-by-nc-4.0", COMMERCIAL, force=True)
    assert gate.decision == "stop" and gate.forced and gate.proceeds
    assert not _gate(catalog, "apache-2.0", COMMERCIAL, force=True).forced


# --------------------------------------------------------------------------- the command


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """A tiny model gains nothing from threads; on busy shared cores they wait on each other."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _random_model(folder: Path, license_id: str) -> Path:
    """A random 1-layer Llama and a byte-level tokenizer: enough to train a step on."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=280,
        special_tokens=["<unk>", "<pad>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(["Q: What is two plus two?\nA: four"], trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>"
    )
    config = transformers.LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=None,
    )
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    (folder / "README.md").write_text(f"---\nlicense: {license_id}\n---\n")
    return folder


def _study(root: Path, model_folder: str) -> Path:
    (root / "data").mkdir(exist_ok=True)
    rows = "".join(
        json.dumps({"question": q, "answer": a}) + "\n"
        for q, a in [("What is two plus two?", "four"), ("What is one plus one?", "two")]
    )
    (root / "data" / "train.jsonl").write_text(rows)
    study = {
        "dataset": {
            "path": "data/train.jsonl",
            "fields": {"reference": "answer", "input": "question"},
        },
        "finetune_dataset": {
            "path": "data/train.jsonl",
            "fields": {"input": "question", "reference": "answer"},
        },
        "task": {"template": "Q: {{ input }}\nA:", "max_tokens": 4, "stop": ["\n"]},
        "metrics": ["exact_match"],
        "candidates": {"run": [{"id": "acme/nc-base", "transformers": model_folder}]},
    }
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_the_gate_stops_before_anything_is_loaded(tmp_path: Path) -> None:
    # config.json and a model card, no weights and no tokenizer: the gate needs neither.
    folder = tmp_path / "nc"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "intermediate_size": 128,
                "vocab_size": 300,
            }
        )
    )
    (folder / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n")
    study = _study(tmp_path, "nc")
    args = ["finetune", str(study), "--model", "acme/nc-base"]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 3, result.output
    assert "license gate: stop" in result.output
    assert "commercial use is not granted" in result.output and "--force" in result.output
    error = json.loads(runner.invoke(app, [*args, "--json"]).stdout)["error"]
    assert error["field"] == "license" and "cc-by-nc-4.0" in error["message"]


def test_force_trains_and_the_model_card_records_the_override(tmp_path: Path) -> None:
    _random_model(tmp_path / "nc", "cc-by-nc-4.0")
    study = _study(tmp_path, "nc")
    options = ["--model", "acme/nc-base", "--steps", "1", "--no-eval", "--json"]
    result = runner.invoke(app, ["finetune", str(study), *options, "--force"])
    assert result.exit_code == 0, result.output
    gate = json.loads(result.stdout)["gate"]
    assert gate["forced"] is True and gate["decision"] == "stop"
    card = (tmp_path / "finetuned" / "acme" / "nc-base" / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["license"] == "cc-by-nc-4.0"
    assert meta["llmselect"]["license_gate"]["forced"] is True
    assert meta["llmselect"]["license_gate"]["stops"] == ["commercial use is not granted"]
    assert "overridden with `--force`" in card
