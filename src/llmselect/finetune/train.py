"""Fine-tune a local model on a study's training examples: LoRA, QLoRA or full fine-tuning.

The run is a plain PyTorch loop (AdamW, linear warmup and decay, gradient accumulation) so that
every piece of state is in view: a checkpoint holds the trained weights, the optimizer's tensors,
the scheduler, the random states and the step, in safetensors and JSON (no pickle), and a resumed
run continues exactly where the interrupted one stopped. Data order comes from a generator seeded
per epoch, so a step's examples depend only on the seed and the step number.

Each example is the study's prompt (its template, or the model's chat template when the task
says `chat: true`) followed by the reference; the loss counts the reference's tokens only.

`finetune_study` runs the whole job: license gate, memory pre-flight (before any weights are
loaded), training, model card, and the before/after evaluation with the optional learning curve.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmselect.errors import LLMSelectError, UsageError
from llmselect.evaluation.backends.weights import use_safetensors
from llmselect.evaluation.datasets import Item, load_dataset
from llmselect.evaluation.templates import render
from llmselect.finetune.curve import BeforeAfter, LearningCurve
from llmselect.finetune.gate import GateResult
from llmselect.quiet import quiet_transformers as _quiet_loading
from llmselect.selection.study import RunSpec, SelectStudy
from llmselect.sizing.finetune import FinetuneMemory, Method, Targets, target_modules

IGNORE = -100
"""Label of a token the loss skips (PyTorch's cross-entropy default)."""
CHECKPOINT_FORMAT = 1
DEFAULT_FRACTIONS = (0.125, 0.25, 0.5, 1.0)


# --------------------------------------------------------------------------- configuration


class TrainConfig(BaseModel):
    """Everything that decides the trained weights (and so must match when resuming)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method = "lora"
    rank: int = Field(default=16, ge=1, le=4096)
    alpha: int | None = Field(default=None, ge=1)
    """LoRA scaling numerator (default: twice the rank)."""
    dropout: float = Field(default=0.05, ge=0, lt=1)
    targets: Targets = "all-linear"
    """attention, all-linear, or projection names (`q_proj,v_proj`)."""
    steps: int | None = Field(default=None, ge=1)
    epochs: float | None = Field(default=None, gt=0)
    """Passes over the data when `steps` is not given (default 3)."""
    lr: float | None = Field(default=None, gt=0)
    """Peak learning rate (default: 2e-4 for LoRA and QLoRA, 2e-5 for full fine-tuning)."""
    batch: int = Field(default=8, ge=1, le=65536)
    """Examples per forward pass (what must fit in memory)."""
    grad_accum: int = Field(default=1, ge=1, le=4096)
    """Forward passes per optimizer step: the effective batch is batch x grad_accum."""
    warmup: float = Field(default=0.1, ge=0, lt=1)
    """Share of the steps over which the learning rate rises linearly to its peak."""
    weight_decay: float = Field(default=0.0, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    max_length: int = Field(default=512, ge=8, le=1_000_000)
    seed: int = 0
    gradient_checkpointing: bool | None = None
    """Keep only each layer's input and recompute the rest in the backward pass: less memory,
    a third more compute (default: on when training on a GPU, off on a CPU)."""
    checkpoint_every: int = Field(default=50, ge=1)
    keep_checkpoints: int = Field(default=2, ge=1)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (2e-5 if self.method == "full" else 2e-4)

    @property
    def lora_alpha(self) -> int:
        return self.alpha if self.alpha is not None else 2 * self.rank

    def total_steps(self, examples: int) -> int:
        if self.steps is not None:
            return self.steps
        epochs = self.epochs if self.epochs is not None else 3.0
        return max(1, math.ceil(epochs * examples / (self.batch * self.grad_accum)))

    def checkpointing(self, where: str) -> bool:
        if self.gradient_checkpointing is not None:
            return self.gradient_checkpointing
        return where == "cuda"

    def fingerprint(self) -> dict[str, Any]:
        """The fields that change the result (how often checkpoints are written does not)."""
        return self.model_dump(exclude={"checkpoint_every", "keep_checkpoints"})

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, value: str) -> str:
        try:
            target_modules(value)
        except LLMSelectError as exc:
            raise ValueError(f"{exc.message}; {exc.hint}" if exc.hint else exc.message) from None
        return value


class BaseModelRef(BaseModel):
    """The model that is fine-tuned: its id (catalog or Hub) and its local folder."""

    id: str
    path: Path
    allow_pickle: bool = False
    trust_remote_code: bool = False


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


class TrainStep(BaseModel):
    """What a progress bar shows: one optimizer step done (step 0: the run starts)."""

    run: str
    step: int
    total: int
    loss: float | None = None
    lr: float | None = None


class TrainRun(BaseModel):
    output: str
    method: Method
    config: TrainConfig
    examples: int
    steps: int
    trainable_params: int
    losses: list[float]
    """Training loss of every step, from step 1 (steps before a resume come from the checkpoint)."""
    resumed_from: int | None
    seconds: float
    """Wall time of this process's share of the run."""
    device: str


class TrainingInterrupted(LLMSelectError):
    exit_code = 130


StepCallback = Callable[[TrainStep], None]


# --------------------------------------------------------------------------- data


def study_examples(
    study: SelectStudy, study_dir: Path, tokenizer: Any, *, study_file: Path | None = None
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


def _completion(study: SelectStudy, item: Item, path: str) -> str | None:
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


def load_tokenizer(base: BaseModelRef) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(base.path, trust_remote_code=base.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise LLMSelectError(f"cannot load the tokenizer: {exc}", file=base.path) from exc


# --------------------------------------------------------------------------- pre-flight


class Preflight(BaseModel):
    """The sizing model's estimate for this run on the target hardware, before any loading."""

    hardware: str
    devices: int
    trains_on: Literal["cuda", "cpu"]
    seq: int
    """The longest training sequence, in tokens: the peak a step must hold."""
    batch: int
    examples: int
    steps: int
    memory: FinetuneMemory
    estimated_seconds: float | None
    """The whole run on the target hardware, from the sizing model's throughput estimate."""
    estimated_cost: float | None
    """At the study's `targets.price_per_gpu_hour`, when it names one."""
    notes: list[str] = Field(default_factory=list)


class DoesNotFit(LLMSelectError):
    """The run would not fit the device (exit code 4, as `llmselect fit`)."""

    exit_code = 4


def train_device() -> Literal["cuda", "cpu"]:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def preflight(
    config_json: Path,
    config: TrainConfig,
    data: TrainData,
    *,
    gpu: str | None,
    price_per_gpu_hour: float | None = None,
) -> Preflight:
    """Memory and time of the run from `config.json` alone: nothing is loaded."""
    from llmselect.catalog.importers.hf_config import architecture_from_config, read_config
    from llmselect.sizing.detect import target_hardware
    from llmselect.sizing.finetune import finetune_memory

    arch = architecture_from_config(read_config(config_json), file=config_json)
    device, count = target_hardware(gpu)
    steps = config.total_steps(len(data.examples))
    epochs = steps * config.batch * config.grad_accum / len(data.examples)
    memory = finetune_memory(
        arch,
        device,
        1,  # the loop trains on one device: each one must hold it all
        method=config.method,
        seq=data.longest,
        batch=config.batch,
        rank=config.rank,
        targets=config.targets,
        checkpointing=config.checkpointing(train_device()),
        examples=len(data.examples),
        tokens_per_example=max(1, round(data.tokens_per_example)),
    )
    where = train_device()
    notes = []
    if count > 1:
        notes.append(f"llmselect trains on one device; the other {count - 1} stay idle")
    if where == "cpu" and device.kind == "gpu":
        notes.append(f"no CUDA GPU here: the run trains on this CPU, not on {device.id}")
    if where == "cpu" and device.kind != "gpu" and config.method == "lora":
        # The sizing model counts 16-bit frozen weights; on a CPU they are loaded in fp32.
        extra = memory.base_weights_bytes
        total = memory.total_bytes + extra
        memory = memory.model_copy(
            update={
                "base_weights_bytes": memory.base_weights_bytes + extra,
                "total_bytes": total,
                "fits": total <= memory.available_bytes,
            }
        )
        notes.append("on a CPU the frozen weights are kept in fp32 (4 bytes each)")
    seconds = memory.epoch_seconds * epochs if memory.epoch_seconds is not None else None
    cost = None
    if seconds is not None and price_per_gpu_hour is not None:
        cost = seconds / 3600 * price_per_gpu_hour
    return Preflight(
        hardware=device.id,
        devices=count,
        trains_on=where,
        seq=data.longest,
        batch=config.batch,
        examples=len(data.examples),
        steps=steps,
        memory=memory,
        estimated_seconds=seconds,
        estimated_cost=cost,
        notes=notes,
    )


def refusal(check: Preflight) -> DoesNotFit:
    m = check.memory
    return DoesNotFit(
        f"{m.method} fine-tuning needs about {m.total_bytes / 2**30:,.1f} GiB per device and "
        f"{check.hardware} has {m.available_bytes / 2**30:,.1f} GiB",
        field="--method",
        hint="try --method qlora or lora, a smaller --batch (with --grad-accum), a shorter "
        "max_length, or name larger hardware with --gpu",
    )


def require_qlora() -> None:
    """QLoRA quantizes the base weights with bitsandbytes, which needs a CUDA GPU."""
    import torch

    missing = []
    if importlib.util.find_spec("bitsandbytes") is None:
        missing.append("the bitsandbytes package (pip install bitsandbytes)")
    if not torch.cuda.is_available():
        build = " (this PyTorch is a CPU-only build)" if torch.version.cuda is None else ""
        missing.append(f"a CUDA GPU{build}")
    if missing:
        raise LLMSelectError(
            "QLoRA needs " + " and ".join(missing),
            field="--method",
            hint="use --method lora (16-bit base weights), or run on a machine with an NVIDIA GPU",
        )


# --------------------------------------------------------------------------- the model


def _load_model(base: BaseModelRef, method: Method, where: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    options: dict[str, Any] = {
        "use_safetensors": use_safetensors(base.path, base.allow_pickle),
        "trust_remote_code": base.trust_remote_code,
    }
    if method == "qlora":
        import transformers

        bnb: Any = transformers.BitsAndBytesConfig
        options["quantization_config"] = bnb(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        options["device_map"] = {"": torch.cuda.current_device()}
        options["dtype"] = torch.bfloat16
    elif method == "lora" and where == "cuda":
        options["dtype"] = torch.bfloat16  # frozen weights in 16 bits; adapters stay fp32
    else:
        options["dtype"] = torch.float32  # trained weights: the fp32 master copy
    auto: Any = AutoModelForCausalLM
    try:
        with _quiet_loading():
            model = auto.from_pretrained(base.path, **options)
    except OSError as exc:
        raise LLMSelectError(
            f"cannot load the model: {exc}",
            file=base.path,
            hint="llmselect loads safetensors weights only; `allow_pickle: true` on the run "
            "entry accepts .bin files (pickle can run code: only for weights you trust)",
        ) from exc
    if method != "qlora":
        model.to(where)
    return model


def _attention_modules(model: Any) -> list[str]:
    """Names of the linear layers inside attention blocks (q/k/v/o, query_key_value, ...)."""
    import torch

    names = set()
    for name, module in model.named_modules():
        parent, _, leaf = name.rpartition(".")
        if isinstance(module, torch.nn.Linear) and ("attn" in parent or "attention" in parent):
            names.add(leaf)
    if not names:
        raise LLMSelectError(
            "no attention projections found in this model", hint="use --targets all-linear"
        )
    return sorted(names)


def _prepare(model: Any, config: TrainConfig, where: str) -> Any:
    """Wrap the model for the method: LoRA adapters, or every weight trainable."""
    import peft

    prepare_kbit: Any = peft.prepare_model_for_kbit_training
    model.config.use_cache = False  # the key-value cache only serves generation
    recompute = config.checkpointing(where)
    options = {"use_reentrant": False}
    if config.method == "qlora":
        model = prepare_kbit(
            model, use_gradient_checkpointing=recompute, gradient_checkpointing_kwargs=options
        )
    elif recompute:
        # transformers 5 renamed it; older releases only know the first name.
        enable = getattr(model, "activation_checkpointing_enable", None)
        (enable or model.gradient_checkpointing_enable)(gradient_checkpointing_kwargs=options)
    if config.method == "full":
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model
    targets: str | list[str]
    if config.targets == "all-linear":
        targets = "all-linear"
    elif config.targets == "attention":
        targets = _attention_modules(model)
    else:  # module names, checked against the known projections when the request was made
        targets = list(target_modules(config.targets))
    lora = peft.LoraConfig(
        r=config.rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    with _quiet_loading():
        return peft.get_peft_model(model, lora)


# --------------------------------------------------------------------------- checkpoints


def _trainable(model: Any) -> dict[str, Any]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def checkpoint_dirs(out: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a half-written one has no state.json)."""
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    done = [p for p in root.glob("step-*") if (p / "state.json").is_file()]
    return sorted(done, key=lambda p: int(p.name.removeprefix("step-")))


def _save_checkpoint(
    out: Path,
    step: int,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    losses: list[float],
    fingerprint: dict[str, Any],
    keep: int,
) -> None:
    import torch
    from safetensors.torch import save_file

    final = out / "checkpoints" / f"step-{step:07d}"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {n: p.detach().to("cpu").contiguous() for n, p in _trainable(model).items()}
    save_file(weights, str(tmp / "trainable.safetensors"))
    state = optimizer.state_dict()
    tensors: dict[str, Any] = {}
    scalars: dict[str, Any] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng |= {f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    save_file(rng, str(tmp / "rng.safetensors"))
    meta = {
        "format": CHECKPOINT_FORMAT,
        "step": step,
        "fingerprint": fingerprint,
        "param_groups": state["param_groups"],
        "optimizer_scalars": scalars,
        "scheduler": scheduler.state_dict(),
        "losses": losses,
    }
    # state.json last: its presence marks the checkpoint complete.
    (tmp / "state.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in checkpoint_dirs(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(
    folder: Path, model: Any, optimizer: Any, scheduler: Any, fingerprint: dict[str, Any]
) -> tuple[int, list[float]]:
    import torch
    from safetensors.torch import load_file

    meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise LLMSelectError("checkpoint written by another llmselect version", file=folder)
    differs = sorted(
        k
        for k in set(meta["fingerprint"]) | set(fingerprint)
        if meta["fingerprint"].get(k) != fingerprint.get(k)
    )
    if differs:
        raise UsageError(
            "the checkpoint was written by a different run: "
            + ", ".join(f"{k} was {meta['fingerprint'].get(k)!r}" for k in differs),
            file=folder / "state.json",
            hint="resume with the same options and data, or remove the output folder to start over",
        )
    params = _trainable(model)
    weights = load_file(str(folder / "trainable.safetensors"))
    if set(weights) != set(params):
        raise LLMSelectError("the checkpoint's weights do not match the model", file=folder)
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    tensors = load_file(str(folder / "optimizer.safetensors"))
    state: dict[int, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *meta["optimizer_scalars"].items()]:
        index, _, name = key.partition(".")
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    scheduler.load_state_dict(meta["scheduler"])
    rng = load_file(str(folder / "rng.safetensors"))
    torch.set_rng_state(rng["cpu"])
    cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    return int(meta["step"]), [float(x) for x in meta["losses"]]


# --------------------------------------------------------------------------- the loop


@dataclass
class _Order:
    """Which examples each step reads: a fresh seeded permutation per epoch."""

    count: int
    seed: int
    cache: dict[int, list[int]]

    def indices(self, step: int, per_step: int) -> list[int]:
        import torch

        picked = []
        for position in range(step * per_step, (step + 1) * per_step):
            epoch, offset = divmod(position, self.count)
            if epoch not in self.cache:
                generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
                self.cache = {epoch: torch.randperm(self.count, generator=generator).tolist()}
            picked.append(self.cache[epoch][offset])
        return picked


def _collate(batch: list[TokenizedExample], pad: int, where: str) -> tuple[Any, Any, Any]:
    """Right-padded ids, attention mask and labels (padding is never learned)."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    for row, example in enumerate(batch):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(example.labels)
    return ids.to(where), mask.to(where), labels.to(where)


def _schedule(total: int, warmup: float) -> Callable[[int], float]:
    """Linear warmup to the peak, then linear decay towards zero at the last step."""
    rise = round(total * warmup)

    def factor(step: int) -> float:
        if step < rise:
            return (step + 1) / rise
        return max(0.0, (total - step) / max(1, total - rise))

    return factor


def train(
    base: BaseModelRef,
    data: TrainData,
    out: Path,
    config: TrainConfig,
    *,
    resume: bool = False,
    label: str = "training",
    progress: StepCallback | None = None,
) -> TrainRun:
    """Train and save the adapter (or full weights) in `out`; checkpoints in `out/checkpoints`.

    With `resume`, the last complete checkpoint is loaded (it must come from the same options
    and data) and the run continues from its step; the result equals an uninterrupted run."""
    import torch

    if config.method == "qlora":
        require_qlora()
    began = time.perf_counter()
    fingerprint = {**config.fingerprint(), "base": base.id, "data": data.digest}
    existing = checkpoint_dirs(out)
    if existing and not resume:
        raise UsageError(
            f"{out} holds checkpoints of an earlier run",
            file=out,
            hint="pass --resume to continue it, or choose another --out",
        )
    where = train_device()
    torch.manual_seed(config.seed)
    model = _prepare(_load_model(base, config.method, where), config, where)
    params = _trainable(model)
    optimizer = torch.optim.AdamW(
        list(params.values()), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    total = config.total_steps(len(data.examples))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(total, config.warmup))
    start, losses = 0, list[float]()
    if resume and existing:
        start, losses = _load_checkpoint(existing[-1], model, optimizer, scheduler, fingerprint)
    order = _Order(len(data.examples), config.seed, {})
    per_step = config.batch * config.grad_accum
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if where == "cuda"
        else contextlib.nullcontext()
    )
    if progress:
        progress(TrainStep(run=label, step=start, total=total))
    model.train()
    try:
        for step in range(start, total):
            picked = [data.examples[i] for i in order.indices(step, per_step)]
            # Mean over the step's answer tokens, however they split into forward passes.
            n_tokens = sum(sum(1 for x in e.labels[1:] if x != IGNORE) for e in picked)
            optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for first in range(0, len(picked), config.batch):
                ids, mask, labels = _collate(
                    picked[first : first + config.batch], data.pad_id, where
                )
                with autocast:
                    logits = model(input_ids=ids, attention_mask=mask).logits
                loss: Any = torch.nn.functional.cross_entropy(
                    logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                    labels[:, 1:].reshape(-1),
                    ignore_index=IGNORE,
                    reduction="sum",
                ) / max(1, n_tokens)
                loss.backward()
                step_loss += float(loss.detach())
            torch.nn.utils.clip_grad_norm_(list(params.values()), config.max_grad_norm)
            lr = float(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
            losses.append(step_loss)
            done = step + 1
            if done % config.checkpoint_every == 0 or done == total:
                _save_checkpoint(
                    out,
                    done,
                    model,
                    optimizer,
                    scheduler,
                    losses,
                    fingerprint,
                    config.keep_checkpoints,
                )
            if progress:
                progress(TrainStep(run=label, step=done, total=total, loss=step_loss, lr=lr))
    except KeyboardInterrupt:
        last = checkpoint_dirs(out)
        kept = f"the last checkpoint is {last[-1].name}" if last else "no checkpoint was written"
        raise TrainingInterrupted(
            f"training interrupted after {len(losses)} of {total} steps; {kept}",
            file=out,
            hint="run the same command with --resume to continue from the last checkpoint",
        ) from None
    model.eval()
    _save_outputs(model, base, out, config)
    return TrainRun(
        output=str(out),
        method=config.method,
        config=config,
        examples=len(data.examples),
        steps=total,
        trainable_params=sum(p.numel() for p in params.values()),
        losses=losses,
        resumed_from=start if resume and existing else None,
        seconds=time.perf_counter() - began,
        device=where,
    )


# --------------------------------------------------------------------------- outputs


def _save_outputs(model: Any, base: BaseModelRef, out: Path, config: TrainConfig) -> None:
    """An adapter folder (peft layout plus the base's config.json) or a full model folder."""
    tokenizer = load_tokenizer(base)
    with _quiet_loading():
        _save_weights(model, base, out, config)
    tokenizer.save_pretrained(out)


def _save_weights(model: Any, base: BaseModelRef, out: Path, config: TrainConfig) -> None:
    import torch

    from llmselect.catalog.importers.hf_config import read_config

    if config.method == "full":
        stored = read_config(base.path / "config.json")
        name = stored.get("dtype") or stored.get("torch_dtype")  # transformers 5 / 4
        dtype = getattr(torch, name, None) if isinstance(name, str) else None
        if isinstance(dtype, torch.dtype) and dtype != model.dtype:
            model.to(dtype)  # ship the weights in the base model's precision
        model.save_pretrained(out, safe_serialization=True)
    else:
        # The Hub's convention: the adapter names its base by id, not by a local path.
        model.peft_config["default"].base_model_name_or_path = base.id
        model.save_pretrained(out, safe_serialization=True, save_embedding_layers=False)
        (out / "README.md").unlink(missing_ok=True)  # peft's empty template; card.py writes ours
        # The architecture, so the folder describes itself (`llmselect catalog import`).
        shutil.copyfile(base.path / "config.json", out / "config.json")


def merged_model(base: BaseModelRef, adapter: Path, root: Path) -> Path:
    """The adapter merged into a copy of the base weights, a plain folder any backend can run.

    Named by the adapter's hash, so stored evaluation outputs never outlive the weights."""
    import peft
    from transformers import AutoModelForCausalLM

    digest = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
    dest = root / f"merged-{digest[:12]}"
    if (dest / "config.json").is_file():
        return dest
    auto: Any = AutoModelForCausalLM
    with _quiet_loading():
        model = auto.from_pretrained(
            base.path,
            dtype="auto",  # the base's own precision, never 4 bits: merging must not lose it
            use_safetensors=use_safetensors(base.path, base.allow_pickle),
            trust_remote_code=base.trust_remote_code,
        )
        merged = peft.PeftModel.from_pretrained(model, adapter).merge_and_unload()
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        merged.save_pretrained(tmp, safe_serialization=True)
    load_tokenizer(base).save_pretrained(tmp)
    os.replace(tmp, dest)
    return dest


# --------------------------------------------------------------------------- the whole job


class FinetuneRequest(BaseModel):
    study: Path
    model: str
    """The id (or name) of a `candidates.run` entry: its transformers folder is the base."""
    config: TrainConfig = Field(default_factory=TrainConfig)
    out: Path | None = None
    """Default: STUDY_DIR/finetuned/NAME."""
    seed: int | None = None
    """Overrides `config.seed`; default: the study's seed."""
    resume: bool = False
    curve: bool = False
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    gpu: str | None = None
    force: bool = False
    against: list[str] = Field(default_factory=list)
    """Other run entries evaluated as they are, to see whether the fine-tune beats them."""
    evaluate: bool = True


class FinetuneResult(BaseModel):
    study: str
    base_model: str
    output: str
    gate: GateResult
    preflight: Preflight
    training: TrainRun
    evaluation: BeforeAfter | None
    curve: LearningCurve | None
    leaked_eval_items: int = 0
    """Evaluation items also in the training data (identical or near): a selection does not
    rank a fine-tune on items it was trained on."""
    warnings: list[str]
    files: dict[str, str]


@dataclass
class Events:
    """What the CLI shows while the job runs; every callback is optional."""

    gate: Callable[[GateResult], None] | None = None
    preflight: Callable[[Preflight], None] | None = None
    step: StepCallback | None = None
    evaluation: Callable[[str, int, int], None] | None = None


def _run_entry(study: SelectStudy, wanted: str, study_file: Path) -> RunSpec:
    for run in study.candidates.run:
        if wanted.lower() in (run.id.lower(), run.name.lower()):
            if not run.transformers:
                raise UsageError(
                    f"{run.id} is not a local transformers folder: only those can be fine-tuned",
                    file=study_file,
                    field="candidates.run",
                )
            return run
    import difflib

    known = [r.id for r in study.candidates.run]
    close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.5)
    raise UsageError(
        f"{wanted!r} is not in the study's candidates.run",
        file=study_file,
        field="candidates.run",
        hint=(f"did you mean {', '.join(close)}?" if close else "")
        or ("known: " + ", ".join(known) if known else "add it under candidates.run"),
    )


def _ref(run: RunSpec, study_dir: Path) -> BaseModelRef:
    path = (study_dir / (run.transformers or "")).resolve()
    if not (path / "config.json").is_file():
        raise LLMSelectError("not a model folder (no config.json)", file=path)
    return BaseModelRef(
        id=run.id, path=path, allow_pickle=run.allow_pickle, trust_remote_code=run.trust_remote_code
    )


def finetune_study(request: FinetuneRequest, events: Events | None = None) -> FinetuneResult:
    """Gate, pre-flight, train, write the model card, then measure before and after."""
    from llmselect.catalog import load_catalog
    from llmselect.catalog.importers.hf_folder import import_hf_folder
    from llmselect.finetune.card import write_card
    from llmselect.finetune.gate import license_gate, stop_error
    from llmselect.selection.study import load_select_study

    events = events or Events()
    study, profile = load_select_study(request.study)
    study_dir = request.study.resolve().parent
    run = _run_entry(study, request.model, request.study)
    base = _ref(run, study_dir)
    out = (request.out or study_dir / "finetuned" / run.name).resolve()
    seed = request.seed if request.seed is not None else study.seed
    config = request.config.model_copy(update={"seed": seed})
    if config.method == "qlora":
        require_qlora()  # say so now, not after the checks
    if checkpoint_dirs(out) and not request.resume:
        raise UsageError(
            f"{out} holds checkpoints of an earlier run",
            file=out,
            hint="pass --resume to continue it, or choose another --out",
        )

    catalog = load_catalog()
    card = catalog.find(run.id)
    if card is None:
        # A local folder describes itself, as in `llmselect select`; the verdicts need it listed.
        card = import_hf_folder(base.path, model_id=run.id)
        catalog.add(card, replace=True)
    gate = license_gate(
        card,
        catalog,
        profile,
        derivative_name=out.name,
        accept_unknown_data=study.license.accept_unknown_data,
        force=request.force,
    )
    if events.gate:
        events.gate(gate)
    if not gate.proceeds:
        raise stop_error(gate)

    tokenizer = load_tokenizer(base)
    examples = study_examples(study, study_dir, tokenizer, study_file=request.study)
    data = tokenize(tokenizer, examples, config.max_length)
    check = preflight(
        base.path / "config.json",
        config,
        data,
        gpu=request.gpu,
        price_per_gpu_hour=study.targets.price_per_gpu_hour,
    )
    if events.preflight:
        events.preflight(check)
    if not check.memory.fits:
        raise refusal(check)

    if not request.resume:
        shutil.rmtree(out / "evaluation", ignore_errors=True)  # outputs of other weights
    out.mkdir(parents=True, exist_ok=True)
    training = train(
        base, data, out, config, resume=request.resume, label=run.name, progress=events.step
    )
    dataset_name = study.finetune_dataset.path if study.finetune_dataset else "unknown"
    files = {"model": str(out), "card": str(out / "README.md")}
    write_card(
        out, base=card, gate=gate, training=training, dataset=dataset_name, data_digest=data.digest
    )
    _write_json(out / "training.json", training.model_dump(mode="json"))
    files["training"] = str(out / "training.json")

    evaluation: BeforeAfter | None = None
    curve: LearningCurve | None = None
    leaked, leak_warnings = _leakage(study, study_dir)
    warnings = list(data.warnings) + leak_warnings
    if request.evaluate and study.dataset is None:
        warnings.append("the study has no evaluation `dataset`: no before/after comparison")
    elif request.evaluate:
        evaluation, curve = _measure(
            request, config, study, study_dir, run, base, out, data, training, events
        )
        write_card(
            out,
            base=card,
            gate=gate,
            training=training,
            dataset=dataset_name,
            data_digest=data.digest,
            evaluation=evaluation,
            curve=curve,
        )
        files["evaluation"] = str(out / "evaluation" / "results.json")
    files["summary"] = str(out / "finetune.json")
    result = FinetuneResult(
        study=study.name,
        base_model=run.id,
        output=str(out),
        gate=gate,
        preflight=check,
        training=training,
        evaluation=evaluation,
        curve=curve,
        leaked_eval_items=leaked,
        warnings=warnings,
        files=files,
    )
    # `llmselect select` shows the fine-tunes it finds beside the study (selection/finetuned.py).
    _write_json(out / "finetune.json", result.model_dump(mode="json"))
    return result


def _leakage(study: SelectStudy, study_dir: Path) -> tuple[int, list[str]]:
    """Evaluation items also in the training data, and the warning to show beside the numbers:
    on those items a before/after gain measures recall, not the task learned."""
    from llmselect.finetune.data_check import check_data

    train, evaluation = study.finetune_dataset, study.dataset
    if train is None or evaluation is None or train.fields != evaluation.fields:
        return 0, []  # `llmselect data check` compares sets with other field names
    report = check_data(study_dir / train.path, study_dir / evaluation.path, fields=train.fields)
    leak = report.leakage
    if leak is None or not leak.leaked:
        return 0, []
    return len(leak.leaked), [
        f"{len(leak.leaked)} of {leak.eval_rows} evaluation items are also in the training data "
        f"({leak.identical_input} with an identical input, {leak.near_input} near): on them the "
        "gain measures recall of what was trained, not how the model does on new items"
    ]


def _measure(
    request: FinetuneRequest,
    config: TrainConfig,
    study: SelectStudy,
    study_dir: Path,
    run: RunSpec,
    base: BaseModelRef,
    out: Path,
    data: TrainData,
    training: TrainRun,
    events: Events,
) -> tuple[BeforeAfter, LearningCurve | None]:
    from llmselect.evaluation.study import Candidate
    from llmselect.finetune.curve import before_after, evaluate_models, learning_curve

    eval_dir = out / "evaluation"
    tuned_name = f"{run.name}-{config.method}"

    def candidate(name: str, path: Path, entry: RunSpec = run) -> Candidate:
        # Merged and fully tuned folders are written here in safetensors: no pickle needed.
        own = path == _ref(entry, study_dir).path
        return Candidate(
            name=name,
            transformers=str(path),
            batch_size=entry.batch_size,
            allow_pickle=entry.allow_pickle and own,
            trust_remote_code=entry.trust_remote_code,
            compile=entry.compile,
        )

    tuned = out if config.method == "full" else merged_model(base, out, eval_dir)
    candidates = [candidate(run.name, base.path), candidate(tuned_name, tuned)]
    for other in request.against:
        entry = _run_entry(study, other, request.study)
        if entry.name in {c.name for c in candidates}:
            raise UsageError(
                f"--against {other}: {entry.name} is already measured", field="--against"
            )
        candidates.append(candidate(entry.name, _ref(entry, study_dir).path, entry))
    points: list[tuple[str, int]] = []
    if request.curve:
        counts = _curve_counts(len(data.examples), request.fractions)
        for count in counts[:-1]:
            subset = _subset(data, count, config.seed)
            folder = out / "curve" / f"{count}-examples"
            folder.mkdir(parents=True, exist_ok=True)
            label = f"{run.name} on {count} examples"
            part = train(
                base,
                subset,
                folder,
                config,
                resume=request.resume,
                label=label,
                progress=events.step,
            )
            name = f"{tuned_name}-{count}"
            path = folder if config.method == "full" else merged_model(base, folder, eval_dir)
            candidates.append(candidate(name, path))
            points.append((name, part.examples))
        points.append((tuned_name, training.examples))
    with _quiet_loading():
        results = evaluate_models(
            study, study_dir, candidates, eval_dir, progress=events.evaluation
        )
    others = [c.name for c in candidates[2 : 2 + len(request.against)]]
    comparison = before_after(results, study, run.name, tuned_name, others)
    curve = None
    if request.curve:
        curve = learning_curve(eval_dir / "samples.jsonl", study, run.name, points, seed=study.seed)
    return comparison, curve


def _curve_counts(examples: int, fractions: tuple[float, ...]) -> list[int]:
    """Distinct example counts for the curve's points, the full set last."""
    counts = sorted({max(1, math.ceil(f * examples)) for f in fractions if 0 < f <= 1})
    if not counts or counts[-1] != examples:
        counts.append(examples)
    if len(counts) < 2:
        raise LLMSelectError(
            f"a learning curve needs at least two sizes; {examples} example(s) give one",
            field="finetune_dataset",
            hint="add training examples",
        )
    return counts


def _subset(data: TrainData, count: int, seed: int) -> TrainData:
    """The first `count` examples of one seeded shuffle: each smaller set lies inside the next."""
    import torch

    order = torch.randperm(len(data.examples), generator=torch.Generator().manual_seed(seed))
    picked = [data.examples[i] for i in order[:count].tolist()]
    digest = hashlib.sha256(f"{data.digest}:{count}:{seed}".encode()).hexdigest()
    return data.model_copy(update={"examples": picked, "digest": digest})


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
