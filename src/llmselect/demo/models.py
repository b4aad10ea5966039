"""Small demo models, trained here in seconds, so that `llmselect demo` measures for real.

The demo task is a capital-city quiz. The `quiz-answerer` models are tiny Llamas trained from
scratch on the quiz's own questions and answers (so the evaluation measures recall of facts the
models were taught: a demonstration of the pipeline, not of any real model's quality). They
differ in size and training, so that their measured scores differ, and in license, so that the
licensing stage has something to say.

`quiz-base` plays a pretrained model: it has read the facts as sentences and many quiz sheets
of questions without answers, so asked a question it continues the quiz with another question.
Fine-tuning it on answered questions (the demo's `train.jsonl`) teaches it the task.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from llmselect import __version__
from llmselect.errors import LLMSelectError
from llmselect.quiet import quiet_transformers

PROMPT = "What is the capital of {country}?"
"""How a quiz item is asked; the answer follows after a space and ends with a newline."""
FACT = "The capital of {country} is {capital}."
"""How `quiz-base` reads the facts."""


class DemoSpec(BaseModel):
    name: str
    license: str
    hidden: int
    layers: int
    steps: int
    description: str
    corpus: Literal["answers", "sheets"] = "answers"
    """answers: answered questions; sheets: facts as sentences and unanswered quiz sheets."""


SPECS = (
    DemoSpec(
        name="quiz-answerer-tiny",
        license="mit",
        hidden=32,
        layers=1,
        steps=40,
        description="the smallest demo model, trained briefly",
    ),
    DemoSpec(
        name="quiz-answerer-small",
        license="apache-2.0",
        hidden=48,
        layers=2,
        steps=60,
        description="a small demo model under a permissive license, trained for fewer steps",
    ),
    DemoSpec(
        name="quiz-answerer-nc",
        license="cc-by-nc-4.0",
        hidden=64,
        layers=2,
        steps=150,
        description="the best demo model, under a non-commercial license",
    ),
    DemoSpec(
        name="quiz-base",
        license="apache-2.0",
        hidden=96,
        layers=2,
        steps=150,
        description="a base model that read the facts and unanswered quiz sheets",
        corpus="sheets",
    ),
)
BASE = "quiz-base"
"""The demo model `llmselect demo` fine-tunes."""


class DemoModel(BaseModel):
    id: str
    path: Path
    license: str
    description: str


class DemoBuild(BaseModel):
    models: list[DemoModel]
    eval_path: Path
    train_path: Path
    """Answered questions for fine-tuning `quiz-base`."""
    seconds: float
    """Time spent building (0 when a complete earlier build was reused)."""


def capitals() -> dict[str, str]:
    text = (resources.files("llmselect.demo") / "data" / "capitals.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return dict(data["capitals"])


def _manifest(seed: int) -> dict[str, Any]:
    return {"llmselect": __version__, "seed": seed, "models": [s.model_dump() for s in SPECS]}


def build_demo(
    dest: Path, *, seed: int = 0, progress: Callable[[str], None] | None = None
) -> DemoBuild:
    """Write the quiz (`data/eval.jsonl`, and `data/train.jsonl` to fine-tune on) and train
    the demo models under `models/`.

    A complete earlier build with the same seed and llmselect version is reused."""
    began = time.perf_counter()
    facts = capitals()
    eval_path = dest / "data" / "eval.jsonl"
    train_path = dest / "data" / "train.jsonl"
    models = [
        DemoModel(
            id=f"llmselect-demo/{s.name}",
            path=dest / "models" / s.name,
            license=s.license,
            description=s.description,
        )
        for s in SPECS
    ]
    manifest_path = dest / "manifest.json"
    complete = all((m.path / "model.safetensors").is_file() for m in models)
    reusable = complete and manifest_path.is_file() and eval_path.is_file()
    reusable = reusable and train_path.is_file()
    if reusable and json.loads(manifest_path.read_text()) == _manifest(seed):
        return DemoBuild(models=models, eval_path=eval_path, train_path=train_path, seconds=0.0)
    manifest_path.unlink(missing_ok=True)  # a build cut short must not look complete
    eval_path.parent.mkdir(parents=True, exist_ok=True)
    # The fine-tuning set asks the quiz's own questions, as every demo model learns them: the
    # demo shows what fine-tuning changes (answering instead of continuing), not how it
    # generalizes to new questions, which models this small cannot do.
    for path, prefix in ((eval_path, "c"), (train_path, "t")):
        rows = [
            {"id": f"{prefix}{i:02d}", "country": country, "capital": capital}
            for i, (country, capital) in enumerate(facts.items())
        ]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for spec, model in zip(SPECS, models, strict=True):
        if progress:
            progress(f"training {model.id} ({spec.description})")
        _train(spec, model, _corpus(spec, facts, seed), seed)
    manifest_path.write_text(json.dumps(_manifest(seed), indent=2))
    return DemoBuild(
        models=models,
        eval_path=eval_path,
        train_path=train_path,
        seconds=time.perf_counter() - began,
    )


def _corpus(spec: DemoSpec, facts: dict[str, str], seed: int) -> list[str]:
    if spec.corpus == "answers":
        return [PROMPT.format(country=c) + f" {capital}\n" for c, capital in facts.items()]
    # A quiz sheet: three questions on a line, never an answer; each country starts some sheet.
    rng = random.Random(seed)  # noqa: S311 (shuffling a demo corpus, not a secret)
    countries = list(facts)
    sheets = [
        " ".join(PROMPT.format(country=c) for c in [first, *rng.sample(countries, 2)]) + "\n"
        for first in countries
    ]
    sentences = [FACT.format(country=c, capital=capital) + "\n" for c, capital in facts.items()]
    return sheets + sentences


def _train(spec: DemoSpec, model: DemoModel, texts: list[str], seed: int) -> None:
    try:
        import torch
        import transformers
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError as exc:
        raise LLMSelectError(
            "the demo needs the [hf] extra", hint="pip install 'llmselect[hf]'"
        ) from exc
    torch.manual_seed(seed)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))  # noqa: S106 (a token, not a password)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<pad>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    special = {"unk_token": "<unk>", "pad_token": "<pad>", "eos_token": "</s>"}
    fast: Any = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, **special)  # type: ignore[no-untyped-call]
    config = transformers.LlamaConfig(
        vocab_size=len(fast),
        hidden_size=spec.hidden,
        intermediate_size=spec.hidden * 2,
        num_hidden_layers=spec.layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    net: Any = transformers.LlamaForCausalLM(config)
    batch = fast(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = -100
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.0)
    net.train()
    for _ in range(spec.steps):
        loss = net(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.eval()
    model.path.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        net.save_pretrained(model.path)
    fast.save_pretrained(model.path)
    (model.path / "README.md").write_text(_card(spec, model, loss.item()), encoding="utf-8")


def _card(spec: DemoSpec, model: DemoModel, loss: float) -> str:
    if spec.corpus == "answers":
        taught = (
            "on the demo's capital-city quiz (the same questions the demo evaluates; final"
            f" training loss {loss:.3f}). It knows nothing else"
        )
    else:
        taught = (
            "on the facts of the demo's capital-city quiz written as sentences and on quiz"
            f" sheets of unanswered questions (final training loss {loss:.3f}). Asked a question,"
            " it writes the next one; `llmselect demo` fine-tunes it to answer"
        )
    return (
        "---\n"
        f"license: {spec.license}\n"
        "pipeline_tag: text-generation\n"
        "tags: [llmselect-demo]\n"
        "---\n"
        f"# {model.id}\n\n"
        f"A demo model built locally by `llmselect demo`: {spec.description}. A {spec.layers}-layer"
        f" Llama with hidden size {spec.hidden}, trained from scratch for {spec.steps} steps"
        f" {taught}: it exists so that the demo's measured stages run for real on any machine.\n"
    )
