"""Checkpoints: every piece of a run's state, so that a resumed run continues exactly.

A checkpoint holds the trained weights, the optimizer's tensors, the scheduler, the random
states and the step, in safetensors and JSON (no pickle). `state.json` is written last: a
folder without it is an interrupted write and is never resumed from.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from llmselect.errors import LLMSelectError, UsageError
from llmselect.finetune.model import trainable_parameters

CHECKPOINT_FORMAT = 1


def checkpoint_dirs(out: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a half-written one has no state.json)."""
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    done = [p for p in root.glob("step-*") if (p / "state.json").is_file()]
    return sorted(done, key=lambda p: int(p.name.removeprefix("step-")))


def save_checkpoint(
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
    weights = {n: p.detach().to("cpu").contiguous() for n, p in trainable_parameters(model).items()}
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


def load_checkpoint(
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
    params = trainable_parameters(model)
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
