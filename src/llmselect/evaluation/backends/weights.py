"""Which weights of a local model folder are loaded: safetensors whenever the folder has them.

Pickled weights (`pytorch_model.bin`) can run code when loaded, so they are read only when the
folder has nothing else and the study allows them by name (`allow_pickle: true`).
"""

from __future__ import annotations

from pathlib import Path


def has_safetensors(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.safetensors.index.json"))


def use_safetensors(folder: Path, allow_pickle: bool) -> bool:
    """transformers' `use_safetensors`: False (read the pickle) only when there is nothing else
    and pickles are allowed; True otherwise, so a missing safetensors file is an error rather
    than a silent fall back to a pickle."""
    return has_safetensors(folder) or not allow_pickle
