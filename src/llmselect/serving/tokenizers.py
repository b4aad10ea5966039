"""The model's tokenizer, read locally: to count tokens a server does not report, and to cut
synthetic prompts to an exact length.

A GGUF file carries its vocabulary (read with llama-cpp-python, the vocabulary only); a
Hugging Face folder (or its `tokenizer.json`) is read with the `tokenizers` library. Nothing is
downloaded and no code from the model is run.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from llmselect.errors import LLMSelectError


class Tokenizer(Protocol):
    name: str

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved, sink = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(sink)


class GgufTokenizer:
    def __init__(self, path: Path) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise LLMSelectError(
                "reading a GGUF tokenizer needs llama-cpp-python",
                file=path,
                hint='pip install "llmselect[gguf]"',
            ) from exc
        self.name = str(path)
        try:
            with _native_stderr_silenced():  # llama.cpp's context notes, printed from C
                self._llama: Any = llama_cpp.Llama(
                    model_path=str(path), vocab_only=True, verbose=False
                )
        except ValueError as exc:  # llama.cpp could not read it
            raise LLMSelectError(f"not a GGUF model llama.cpp reads: {exc}", file=path) from exc

    def encode(self, text: str) -> list[int]:
        return list(self._llama.tokenize(text.encode(), add_bos=False, special=False))

    def decode(self, ids: list[int]) -> str:
        return bytes(self._llama.detokenize(ids)).decode("utf-8", errors="ignore")


class HfTokenizer:
    def __init__(self, path: Path) -> None:
        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.is_file():
            raise LLMSelectError(
                "no tokenizer.json here",
                file=path,
                hint="give a GGUF file, a model folder "
                "with tokenizer.json, or the tokenizer.json itself",
            )
        try:
            from tokenizers import Tokenizer as Fast
        except ImportError as exc:
            raise LLMSelectError(
                "reading tokenizer.json needs the tokenizers library",
                file=file,
                hint='pip install "llmselect[hf]"',
            ) from exc
        self.name = str(path)
        try:
            self._tokenizer: Any = Fast.from_file(str(file))
        except Exception as exc:  # the library's own errors say what is wrong with the file
            raise LLMSelectError(f"not a tokenizer: {exc}", file=file) from exc

    def encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids))


def load_tokenizer(path: Path) -> Tokenizer:
    """A GGUF file, a model folder, or a tokenizer.json."""
    if not path.exists():
        raise LLMSelectError("no such file or folder", file=path, field="tokenizer")
    if path.is_file() and path.suffix.lower() == ".gguf":
        return GgufTokenizer(path)
    return HfTokenizer(path)
