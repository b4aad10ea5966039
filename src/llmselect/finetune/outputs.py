"""What a run leaves: the adapter or the full model folder, and an adapter merged into its base.

Both are safetensors folders; the merged copy is for backends that cannot load an adapter.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from llmselect.evaluation.backends.weights import use_safetensors
from llmselect.finetune.config import BaseModelRef, TrainConfig
from llmselect.finetune.model import load_tokenizer
from llmselect.quiet import quiet_transformers as _quiet_loading


def save_outputs(model: Any, base: BaseModelRef, out: Path, config: TrainConfig) -> None:
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
