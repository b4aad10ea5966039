"""Fine-tuning a tiny model for real: LoRA lowers the loss, runs are deterministic, a resumed
run equals an uninterrupted one, the memory check refuses before loading, and the output
imports back into the catalog with its lineage.

The base model is a 2-layer Llama that learned capital cities from statements ("The capital of
France is Paris."); fine-tuning teaches it the study's question-and-answer format. The tiny
study evaluates on its own training questions: it shows the machinery, not generalization.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")

from safetensors.torch import load_file  # noqa: E402

from llmselect.cli import app  # noqa: E402
from llmselect.errors import UsageError  # noqa: E402
from llmselect.finetune.config import BaseModelRef, TrainConfig, TrainStep  # noqa: E402
from llmselect.finetune.data import TrainData, TrainExample, study_examples, tokenize  # noqa: E402
from llmselect.finetune.loop import TrainingInterrupted, train  # noqa: E402
from llmselect.finetune.model import load_tokenizer  # noqa: E402
from llmselect.study import load_select_study  # noqa: E402

CAPITALS = {
    "France": "Paris",
    "England": "London",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Germany": "Berlin",
    "Japan": "Tokyo",
    "Egypt": "Cairo",
    "Peru": "Lima",
    "Kenya": "Nairobi",
    "Chile": "Santiago",
    "Norway": "Oslo",
    "Greece": "Athens",
    "Cuba": "Havana",
    "Iran": "Tehran",
    "Nepal": "Kathmandu",
    "Poland": "Warsaw",
}
TEMPLATE = "Q: {{ input }}\nA:"
STUDY = {
    "name": "capital-quiz",
    "dataset": {"path": "data/eval.jsonl", "fields": {"input": "question", "reference": "answer"}},
    "finetune_dataset": {
        "path": "data/train.jsonl",
        "fields": {"input": "question", "reference": "answer"},
    },
    "task": {"template": TEMPLATE, "max_tokens": 6, "stop": ["\n"]},
    "metrics": ["exact_match"],
    "candidates": {
        "run": [
            {"id": "acme/quiz-base", "transformers": "base"},
            # Another candidate used as it is (here the same weights under another id).
            {"id": "acme/quiz-other", "transformers": "base"},
        ]
    },
}
FAST = ["--lr", "1e-2", "--rank", "16", "--batch", "16"]
runner = CliRunner()


def finetune(study: Path, *options: str, model: str = "acme/quiz-base") -> Result:
    """`llmselect finetune STUDY --model MODEL OPTIONS...`, wide enough for one-line sentences."""
    args = ["finetune", str(study), "--model", model, *options]
    return runner.invoke(app, args, env={"COLUMNS": "200"})


def _tokenizer(texts: list[str]) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<pad>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>"
    )


def build_quiz_base(folder: Path, *, license_id: str = "apache-2.0", steps: int = 100) -> Path:
    """A tiny Llama that knows the capitals as statements, not as questions and answers."""
    statements = [f"The capital of {c} is {k}.\n" for c, k in CAPITALS.items()]
    questions = [f"Q: What is the capital of {c}?\nA: {k}\n" for c, k in CAPITALS.items()]
    fast = _tokenizer(statements + questions)
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    net = transformers.LlamaForCausalLM(config)
    batch = fast(statements, return_tensors="pt", padding=True)
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = -100
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = net(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.save_pretrained(folder)
    fast.save_pretrained(folder)
    (folder / "README.md").write_text(f"---\nlicense: {license_id}\n---\n# quiz base\n")
    return folder


def write_study(root: Path, study: dict[str, Any] = STUDY) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    rows = "".join(
        json.dumps({"question": f"What is the capital of {c}?", "answer": k}) + "\n"
        for c, k in CAPITALS.items()
    )
    (root / "data" / "train.jsonl").write_text(rows)
    (root / "data" / "eval.jsonl").write_text(rows)
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on busy shared cores threads wait on each
    other (a 40-step pretraining: 1.4 s with one thread, 30 s or more with two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def quiz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study folder: the base model, its data and study.yaml."""
    root = tmp_path_factory.mktemp("quiz")
    build_quiz_base(root / "base")
    write_study(root)
    return root


@pytest.fixture(scope="module")
def quiz_data(quiz: Path) -> tuple[BaseModelRef, TrainData]:
    base = BaseModelRef(id="acme/quiz-base", path=quiz / "base")
    tokenizer = load_tokenizer(base)
    study, _ = load_select_study(quiz / "study.yaml")
    return base, tokenize(tokenizer, study_examples(study, quiz, tokenizer), 64)


def _weights(folder: Path) -> dict[str, Any]:
    return load_file(str(folder / "adapter_model.safetensors"))


def _max_difference(a: dict[str, Any], b: dict[str, Any]) -> float:
    assert set(a) == set(b)
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


# --------------------------------------------------------------------------- the library


def test_loss_counts_only_the_answer(quiz_data: tuple[BaseModelRef, TrainData]) -> None:
    base, data = quiz_data
    tokenizer = load_tokenizer(base)
    first = data.examples[0]
    learned = [t for t in first.labels if t != -100]
    n_prompt = len(tokenizer("Q: What is the capital of France?\nA:")["input_ids"])
    assert first.labels[:n_prompt] == [-100] * n_prompt
    assert (
        first.input_ids[:n_prompt]
        == tokenizer("Q: What is the capital of France?\nA:")["input_ids"]
    )
    # The answer, the stop sequence and the end-of-text token are learned; nothing else.
    assert tokenizer.decode(learned) == " Paris\n</s>"
    assert len(data.examples) == len(CAPITALS)


def test_lora_lowers_the_training_loss(
    quiz_data: tuple[BaseModelRef, TrainData], tmp_path: Path
) -> None:
    base, data = quiz_data
    seen: list[TrainStep] = []
    config = TrainConfig(steps=12, lr=1e-2, rank=8, batch=16, checkpoint_every=5)
    run = train(base, data, tmp_path / "out", config, progress=seen.append)
    assert run.losses[-1] < 0.6 * run.losses[0]
    assert [s.step for s in seen] == list(range(13))  # step 0 announces the run
    assert seen[-1].loss == pytest.approx(run.losses[-1])
    assert run.trainable_params == sum(t.numel() for t in _weights(tmp_path / "out").values())
    adapter = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "acme/quiz-base"
    assert adapter["r"] == 8
    # Checkpoints at 5, 10 and the last step; only the two newest are kept.
    assert sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir()) == [
        "step-0000010",
        "step-0000012",
    ]
    state = json.loads((tmp_path / "out/checkpoints/step-0000012/state.json").read_text())
    assert state["step"] == 12 and len(state["losses"]) == 12
    assert not [p for p in (tmp_path / "out").rglob("*") if p.suffix in (".bin", ".pt", ".pkl")]


def test_same_seed_same_adapter(quiz_data: tuple[BaseModelRef, TrainData], tmp_path: Path) -> None:
    base, data = quiz_data
    config = TrainConfig(steps=3, lr=1e-2, rank=4, batch=4, dropout=0.1)
    train(base, data, tmp_path / "a", config)
    train(base, data, tmp_path / "b", config)
    train(base, data, tmp_path / "c", config.model_copy(update={"seed": 1}))
    assert _max_difference(_weights(tmp_path / "a"), _weights(tmp_path / "b")) == 0.0
    assert _max_difference(_weights(tmp_path / "a"), _weights(tmp_path / "c")) > 1e-4


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(
    quiz_data: tuple[BaseModelRef, TrainData], tmp_path: Path
) -> None:
    base, data = quiz_data
    # Dropout and a batch smaller than the data: random states and data order both matter.
    config = TrainConfig(steps=6, lr=1e-2, rank=4, batch=4, dropout=0.1, checkpoint_every=2)
    whole = train(base, data, tmp_path / "whole", config)

    def interrupt_at_step_3(step: TrainStep) -> None:
        if step.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match=r"after 3 of 6 steps.*step-0000002"):
        train(base, data, tmp_path / "cut", config, progress=interrupt_at_step_3)
    assert not (tmp_path / "cut" / "adapter_model.safetensors").exists()
    resumed = train(base, data, tmp_path / "cut", config, resume=True)
    assert resumed.resumed_from == 2
    assert resumed.losses == pytest.approx(whole.losses, abs=1e-6)
    assert _max_difference(_weights(tmp_path / "whole"), _weights(tmp_path / "cut")) < 1e-6

    with pytest.raises(UsageError, match=r"lr was 0\.01"):
        train(base, data, tmp_path / "cut", config.model_copy(update={"lr": 2e-2}), resume=True)
    with pytest.raises(UsageError, match="--resume"):
        train(base, data, tmp_path / "cut", config)


def test_gradient_accumulation_equals_a_larger_batch(
    quiz_data: tuple[BaseModelRef, TrainData], tmp_path: Path
) -> None:
    base, data = quiz_data
    one = TrainConfig(steps=2, lr=1e-2, rank=4, batch=8, dropout=0.0)
    two = one.model_copy(update={"batch": 4, "grad_accum": 2})
    a = train(base, data, tmp_path / "a", one)
    b = train(base, data, tmp_path / "b", two)
    assert a.losses == pytest.approx(b.losses, abs=1e-5)
    # Adam divides by the gradients' size, so rounding differences show more in the weights.
    assert _max_difference(_weights(tmp_path / "a"), _weights(tmp_path / "b")) < 1e-4


def test_a_chat_task_trains_on_the_chat_template(quiz: Path) -> None:
    tokenizer = load_tokenizer(BaseModelRef(id="acme/quiz-base", path=quiz / "base"))
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    study, _ = load_select_study(quiz / "study.yaml")
    chat = study.model_copy(update={"task": study.task.model_copy(update={"chat": True})})
    example = study_examples(chat, quiz, tokenizer)[0]
    assert example.chat
    assert example.prompt == "<|user|>Q: What is the capital of France?\nA:\n<|assistant|>"
    assert example.completion == "Paris\n\n"  # the answer, its stop sequence, the turn's end
    tokenizer.chat_template = None
    with pytest.raises(Exception, match="no chat template"):
        study_examples(chat, quiz, tokenizer)


def test_prompts_longer_than_max_length_are_skipped(quiz: Path) -> None:
    tokenizer = load_tokenizer(BaseModelRef(id="acme/quiz-base", path=quiz / "base"))
    long = TrainExample(id="long", prompt="Q: " + "France " * 40, completion=" Paris")
    short = TrainExample(id="short", prompt="Q: Peru?\nA:", completion=" Lima")
    data = tokenize(tokenizer, [long, short], 16)
    assert [e.id for e in data.examples] == ["short"]
    assert any("long" in w and "max_length" in w for w in data.warnings)


# --------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def finetuned(quiz: Path) -> dict[str, Any]:
    """One `llmselect finetune --curve --json` run, shared by the tests that read its output."""
    result = finetune(
        quiz / "study.yaml",
        *["--steps", "40", *FAST, "--checkpoint-every", "20"],
        *["--curve", "--against", "acme/quiz-other", "--json"],
    )
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_finetune_reports_before_and_after_with_intervals(finetuned: dict[str, Any]) -> None:
    assert finetuned["gate"]["decision"] in ("pass", "warn")
    assert finetuned["preflight"]["memory"]["fits"] is True
    losses = finetuned["training"]["losses"]
    assert len(losses) == 40 and losses[-1] < 0.5 * losses[0]
    evaluation = finetuned["evaluation"]
    before = evaluation["before"]["scores"]["exact_match"]
    after = evaluation["after"]["scores"]["exact_match"]
    for score in (before, after):
        assert score["low"] <= score["mean"] <= score["high"] and score["n"] == len(CAPITALS)
    assert evaluation["before"]["model"] == "acme/quiz-base"
    assert evaluation["after"]["model"] == "acme/quiz-base-lora"
    assert after["mean"] > before["mean"]
    main = evaluation["comparisons"][0]
    assert (main["a"], main["b"]) == ("acme/quiz-base", "acme/quiz-base-lora")
    assert main["test"] == "McNemar" and main["significant"]
    assert evaluation["sentence"] == main["sentence"]
    assert main["diff"] == pytest.approx(after["mean"] - before["mean"])
    # The model used as it is, against the fine-tune, on the same items.
    assert [o["model"] for o in evaluation["others"]] == ["acme/quiz-other"]
    assert evaluation["others"][0]["scores"] == evaluation["before"]["scores"]
    against = evaluation["comparisons"][1]
    assert (against["a"], against["b"]) == ("acme/quiz-base-lora", "acme/quiz-other")
    assert against["sentence"].startswith("acme/quiz-base-lora beats acme/quiz-other")


def test_finetune_curve_says_whether_more_data_helps(finetuned: dict[str, Any]) -> None:
    curve = finetuned["curve"]
    assert [p["examples"] for p in curve["points"]] == [2, 4, 8, 16]
    assert curve["points"][-1]["score"] == finetuned["evaluation"]["after"]["scores"]["exact_match"]
    assert curve["base"] == finetuned["evaluation"]["before"]["scores"]["exact_match"]
    assert curve["slope_low"] <= curve["slope_per_doubling"] <= curve["slope_high"]
    assert curve["outlook"] in ("likely", "unlikely", "unclear")
    assert "8 to 16 examples" in curve["verdict"]
    assert (curve["last_doubling"]["a"], curve["last_doubling"]["b"]) == (
        "acme/quiz-base-lora-8",
        "acme/quiz-base-lora",
    )


def test_the_summary_compares_the_time_taken_with_the_estimate(
    finetuned: dict[str, Any],
) -> None:
    from rich.console import Console

    from llmselect.finetune.result import FinetuneResult
    from llmselect.present.finetune import finetune_summary

    def shown(result: FinetuneResult) -> str:
        out = Console(width=200, record=True, file=io.StringIO())
        out.print(finetune_summary(result))
        return out.export_text()

    result = FinetuneResult.model_validate(finetuned)
    estimate = result.preflight.estimated_seconds
    assert estimate is not None and result.training.seconds > 3 * estimate  # a tiny model
    assert f"× the pre-flight estimate of {estimate:.2g} s" in shown(result)
    # Close to the estimate, nothing to say.
    close = result.model_copy(
        update={"training": result.training.model_copy(update={"seconds": 2 * estimate})}
    )
    assert "pre-flight estimate" not in shown(close)


def test_select_shows_a_fine_tune_trained_on_its_evaluation_items_but_does_not_rank_it(
    finetuned: dict[str, Any],
) -> None:
    assert finetuned["leaked_eval_items"] == len(CAPITALS)  # the tiny study trains on them
    # The default output, finetuned/acme/quiz-base, is two folders below the study's.
    study = Path(finetuned["output"]).parents[2] / "study.yaml"
    result = runner.invoke(app, ["select", str(study), "--json", "--no-report"])
    assert result.exit_code == 5, result.output  # the study's 4,096-token context excludes all
    selection = json.loads(result.stdout)
    [tuned] = [e for e in selection["entries"] if e["id"] == "acme/quiz-base-lora"]
    assert tuned["rank"] is None and tuned["quality"]["source"] == "measured"
    [why] = [x for x in tuned["exclusions"] if x["stage"] == "evaluation"]
    assert (why["stage"], why["key"], why["relax"]) == ("evaluation", "finetune_dataset", None)
    assert f"{len(CAPITALS)} of the {len(CAPITALS)} evaluation items" in why["reason"]
    # A derivative: the base's license duties reach it through the lineage.
    assert [step["id"] for step in tuned["license"]["lineage"]][:2] == [
        "acme/quiz-base-lora",
        "acme/quiz-base",
    ]
    assert selection["finetuned"][0]["leaked"] == len(CAPITALS)


def test_a_fine_tune_measured_on_held_out_items_is_ranked(quiz: Path, tmp_path: Path) -> None:
    root = tmp_path / "held-out"
    shutil.copytree(quiz / "base", root / "base")
    write_study(root, {**STUDY, "targets": {"context": 64}})
    lines = (root / "data" / "train.jsonl").read_text().splitlines(keepends=True)
    (root / "data" / "train.jsonl").write_text("".join(lines[:10]))
    (root / "data" / "eval.jsonl").write_text("".join(lines[10:]))
    result = finetune(root / "study.yaml", "--steps", "40", *FAST, "--json")
    assert result.exit_code == 0, result.output
    after = json.loads(result.stdout)["evaluation"]["after"]["scores"]["exact_match"]
    assert json.loads(result.stdout)["leaked_eval_items"] == 0

    result = runner.invoke(app, ["select", str(root / "study.yaml"), "--json", "--no-report"])
    assert result.exit_code == 0, result.output
    selection = json.loads(result.stdout)
    [tuned] = [e for e in selection["entries"] if e["id"] == "acme/quiz-base-lora"]
    assert tuned["exclusions"] == [] and tuned["rank"] is not None
    assert tuned["quality"]["value"] == pytest.approx(after["mean"])
    assert (
        tuned["params"]
        == next(e for e in selection["entries"] if e["id"] == "acme/quiz-base")["params"]
    )


def test_the_output_imports_back_with_its_lineage(finetuned: dict[str, Any]) -> None:
    out = Path(finetuned["output"])
    assert out == Path(finetuned["files"]["model"]) and out.name == "quiz-base"
    text = (out / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["base_model"] == "acme/quiz-base"
    assert meta["base_model_relation"] == "adapter"
    assert meta["license"] == "apache-2.0"
    assert meta["datasets"] == ["data/train.jsonl"]
    assert "## Evaluation" in text and "## Learning curve" in text

    result = runner.invoke(app, ["catalog", "import", str(out), "--id", "acme/quiz-ft", "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)["model"]
    assert card["base_model"] == "acme/quiz-base"
    assert card["base_model_relation"] == "adapter"
    assert card["licenses"]["weights"] == "apache-2.0"
    assert [d["name"] for d in card["licenses"]["data"]["datasets"]] == ["data/train.jsonl"]


def test_resume_on_the_command_line_shows_every_stage(
    finetuned: dict[str, Any], tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(finetuned["output"], copy)
    study = Path(finetuned["output"]).parents[2] / "study.yaml"
    options = ["--steps", "40", *FAST, "--checkpoint-every", "20", "--out", str(copy)]
    result = finetune(study, *options, "--resume")
    assert result.exit_code == 0, result.output
    for seen in ("license gate", "memory pre-flight", "resumed from step 40", "before and after"):
        assert seen in result.output
    assert "acme/quiz-base-lora beats acme/quiz-base" in result.output


def test_full_finetuning_writes_weights_that_import_as_a_finetune(
    quiz: Path, tmp_path: Path
) -> None:
    out = tmp_path / "full"
    options = ["--method", "full", "--steps", "2", "--out", str(out), "--no-eval", "--json"]
    result = finetune(quiz / "study.yaml", *options)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["training"]["method"] == "full"
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    imported = runner.invoke(app, ["catalog", "import", str(out), "--id", "acme/full", "--json"])
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout)["model"]["base_model_relation"] == "finetune"


def test_the_memory_check_refuses_before_loading_anything(quiz: Path, tmp_path: Path) -> None:
    # A 7B Llama's config.json and a tokenizer, but no weights: loading them would fail.
    big = tmp_path / "big"
    big.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(quiz / "base" / name, big / name)
    transformers.LlamaConfig(
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
    ).to_json_file(big / "config.json")
    (big / "README.md").write_text("---\nlicense: apache-2.0\n---\n")
    shutil.copytree(quiz / "data", tmp_path / "data")
    study = write_study(
        tmp_path, {**STUDY, "candidates": {"run": [{"id": "acme/big", "transformers": "big"}]}}
    )
    options = ["--method", "full", "--gpu", "T4-16GB"]
    result = finetune(study, *options, model="acme/big")
    assert result.exit_code == 4, result.output
    assert "does not fit" in result.output
    assert "of 16.0 GiB per device" in result.output
    assert "has 16.0 GiB" in result.output and "cannot load" not in result.output
    error = json.loads(finetune(study, *options, "--json", model="acme/big").stdout)["error"]
    assert error["field"] == "--method" and "needs about" in error["message"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine can run QLoRA")
def test_qlora_without_a_gpu_says_what_is_missing(quiz: Path, tmp_path: Path) -> None:
    result = finetune(quiz / "study.yaml", "--method", "qlora", "--out", str(tmp_path), "--json")
    assert result.exit_code == 1
    message = json.loads(result.stdout)["error"]["message"]
    assert message.startswith("QLoRA needs") and "CUDA GPU" in message


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_training_on_a_gpu(
    quiz_data: tuple[BaseModelRef, TrainData], tmp_path: Path, method: str
) -> None:
    import importlib.util

    if method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        pytest.skip("bitsandbytes is not installed")
    base, data = quiz_data
    config = TrainConfig(method=method, steps=6, lr=1e-2, rank=8, batch=8, checkpoint_every=3)
    run = train(base, data, tmp_path / "gpu", config)
    assert run.device == "cuda" and run.losses[-1] < run.losses[0]
    assert train(base, data, tmp_path / "gpu", config, resume=True).resumed_from == 6
