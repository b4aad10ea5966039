"""Training examples: the study's items as prompts and completions, then as token ids.

Each example is the study's prompt (its template, or the model's chat template when the task
says `chat: true`) followed by the reference; the loss counts the reference's tokens only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from llmselect.errors import LLMSelectError
from llmselect.evaluation.datasets import Item, load_dataset
from llmselect.evaluation.templates import render
from llmselect.finetune.study import FinetuneStudy

IGNORE = -100
"""Label of a token the loss skips (PyTorch's cross-entropy default)."""


class TrainExample(BaseModel):
    id: str
    prompt: str
    completion: str
    chat: bool = False
    """The prompt is already in the model's chat template (its special tokens included)."""


class TokenizedExample(BaseModel):
    id: str
    input_ids: list[int]
    labels: list[int]
    """`input_ids` with the prompt's tokens replaced by -100, so the loss skips them."""


class TrainData(BaseModel):
    examples: list[TokenizedExample]
    pad_id: int
    digest: str
    """sha256 of the token ids and labels: data, template and tokenizer in one value."""
    warnings: list[str] = Field(default_factory=list)

    @property
    def tokens_per_example(self) -> float:
        return sum(len(e.input_ids) for e in self.examples) / max(1, len(self.examples))

    @property
    def longest(self) -> int:
        return max((len(e.input_ids) for e in self.examples), default=0)


def study_examples(
    study: FinetuneStudy, study_dir: Path, tokenizer: Any, *, study_file: Path | None = None
) -> list[TrainExample]:
    """The study's `finetune_dataset` as prompts (formatted as the evaluation formats them)."""
    if study.finetune_dataset is None:
        raise LLMSelectError(
            "the study has no training data",
            file=study_file,
            field="finetune_dataset",
            hint="add `finetune_dataset: {path: data/train.jsonl, fields: {input: question, "
            "reference: answer}}` (the same fields as `dataset`)",
        )
    spec = study.finetune_dataset
    data = load_dataset(study_dir / spec.path, spec.fields, spec.limit)
    shots: list[Item] = []
    if study.task.few_shot and study.dataset is not None:
        # The evaluation shows these examples in every prompt: training prompts show them too.
        evalset = study.dataset
        shots = load_dataset(study_dir / evalset.path, evalset.fields).items[: study.task.few_shot]
    examples = []
    for item in data.items:
        completion = _completion(study, item, data.path)
        if completion is None:
            continue
        prompt = render(study.task.template, item, shots)
        if study.task.chat:
            examples.append(_chat_example(tokenizer, item.id, prompt, completion))
        else:
            sep = "" if prompt[-1:].isspace() or completion[:1].isspace() else " "
            examples.append(TrainExample(id=item.id, prompt=prompt, completion=sep + completion))
    if not examples:
        raise LLMSelectError(
            "no training example has a reference to learn",
            file=data.path,
            field=spec.fields.reference,
        )
    return examples


def _completion(study: FinetuneStudy, item: Item, path: str) -> str | None:
    task = study.task
    if task.kind == "multiple_choice":
        choices = item.choices or []
        if not isinstance(item.reference, int) or not 0 <= item.reference < len(choices):
            raise LLMSelectError(
                "a multiple-choice training item needs its right choice",
                file=path,
                line=item.line,
            )
        return task.choice_prefix + choices[item.reference]
    reference = item.reference
    if isinstance(reference, list):
        reference = next((r for r in reference if isinstance(r, str) and r), None)
    if reference is None or reference == "":
        return None
    # The first stop sequence ends the answer, as generation will cut there.
    return str(reference) + (task.stop[0] if task.stop else "")


def _chat_example(tokenizer: Any, item_id: str, prompt: str, answer: str) -> TrainExample:
    if not getattr(tokenizer, "chat_template", None):
        raise LLMSelectError(
            "the task says `chat: true` but the model has no chat template",
            field="task.chat",
            hint="set `chat: false` and write the prompt format in `template`",
        )
    user = [{"role": "user", "content": prompt}]
    head = str(tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True))
    whole = str(
        tokenizer.apply_chat_template(
            [*user, {"role": "assistant", "content": answer}], tokenize=False
        )
    )
    # The assistant turn as the template writes it (with its end-of-turn marker), when the
    # template extends the prompt; otherwise the bare answer.
    tail = whole[len(head) :] if whole.startswith(head) else answer
    return TrainExample(id=item_id, prompt=head, completion=tail, chat=True)


def tokenize(tokenizer: Any, examples: list[TrainExample], max_length: int) -> TrainData:
    """Prompt and completion tokens, the loss masked on the prompt, as the evaluation scores."""
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    out: list[TokenizedExample] = []
    skipped: list[str] = []
    for ex in examples:
        # A chat template writes its own special tokens; a plain prompt gets the tokenizer's.
        special = not ex.chat
        ids = list(tokenizer(ex.prompt + ex.completion, add_special_tokens=special)["input_ids"])
        n_prompt = len(tokenizer(ex.prompt, add_special_tokens=special)["input_ids"])
        if eos is not None and not ex.chat and (not ids or ids[-1] != eos):
            ids.append(eos)  # teach the model to stop (a chat template ends its own turn)
        if n_prompt >= min(len(ids), max_length):
            skipped.append(f"{ex.id}: the prompt fills max_length ({max_length} tokens); skipped")
            continue
        if len(ids) > max_length:
            skipped.append(f"{ex.id}: cut to max_length ({max_length} tokens)")
            ids = ids[:max_length]
        labels = [IGNORE] * n_prompt + ids[n_prompt:]
        out.append(TokenizedExample(id=ex.id, input_ids=ids, labels=labels))
    if not out:
        raise LLMSelectError(
            "every training example was skipped: the prompts are longer than max_length",
            hint="raise max_length or shorten the prompt template",
        )
    digest = hashlib.sha256(
        json.dumps([[e.input_ids, e.labels] for e in out], separators=(",", ":")).encode()
    ).hexdigest()
    return TrainData(
        examples=out, pad_id=int(pad if pad is not None else 0), digest=digest, warnings=skipped
    )


def subset(data: TrainData, count: int, seed: int) -> TrainData:
    """The first `count` examples of one seeded shuffle: each smaller set lies inside the next."""
    import torch

    order = torch.randperm(len(data.examples), generator=torch.Generator().manual_seed(seed))
    picked = [data.examples[i] for i in order[:count].tolist()]
    digest = hashlib.sha256(f"{data.digest}:{count}:{seed}".encode()).hexdigest()
    return data.model_copy(update={"examples": picked, "digest": digest})
