"""The training loop: a plain PyTorch loop for LoRA, QLoRA or full fine-tuning.

AdamW, linear warmup and decay, gradient accumulation, so that every piece of state is in view
and lands in a checkpoint. Data order comes from a generator seeded per epoch, so a step's
examples depend only on the seed and the step number, and a resumed run equals one that was
never interrupted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmselect.errors import LLMSelectError, UsageError
from llmselect.finetune.checkpoints import checkpoint_dirs, load_checkpoint, save_checkpoint
from llmselect.finetune.config import BaseModelRef, StepCallback, TrainConfig, TrainRun, TrainStep
from llmselect.finetune.data import IGNORE, TokenizedExample, TrainData
from llmselect.finetune.model import (
    load_model,
    make_trainable,
    require_qlora,
    train_device,
    trainable_parameters,
)
from llmselect.finetune.outputs import save_outputs


class TrainingInterrupted(LLMSelectError):
    """Ctrl-C during training: exit code 130, as a shell reports an interrupt."""

    exit_code = 130


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
    model = make_trainable(load_model(base, config.method, where), config, where)
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(
        list(params.values()), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    total = config.total_steps(len(data.examples))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(total, config.warmup))
    start, losses = 0, list[float]()
    if resume and existing:
        start, losses = load_checkpoint(existing[-1], model, optimizer, scheduler, fingerprint)
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
                save_checkpoint(
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
    save_outputs(model, base, out, config)
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
