"""A model folder with only config.json and a model card, as a user downloads it before the
weights: `catalog import` counts it from its architecture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TINY_LLAMA: dict[str, Any] = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "vocab_size": 100,
    "max_position_embeddings": 512,
}


def config_folder(path: Path, card: str, **config: Any) -> Path:
    """`path` holding TINY_LLAMA's config.json (with `config` over it) and README.md `card`."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({**TINY_LLAMA, **config}))
    (path / "README.md").write_text(card)
    return path
