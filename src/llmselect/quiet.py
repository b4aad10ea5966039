"""Silence transformers' own progress bars and deprecation chatter around a load or a save."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers draws a progress bar per load and save, and peft calls methods transformers
    has renamed (FutureWarning): the user watches llmselect's progress, not those."""
    from transformers.utils import logging as hf_logging

    logging: Any = hf_logging  # untyped module functions
    was = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        if was:
            logging.enable_progress_bar()
