"""A local Hugging Face model folder run with transformers.

safetensors only and never `trust_remote_code`, unless the study allows them by name. Prompts
are sorted by length and batched (left padding); log-likelihoods are computed the way
lm-evaluation-harness does: the continuation's tokens scored after the context's.
"""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path
from typing import Any

from llmselect.errors import LLMSelectError
from llmselect.evaluation.backends.base import Generation, GenerationSettings, apply_stop
from llmselect.evaluation.backends.weights import use_safetensors
from llmselect.quiet import quiet_transformers

CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json", "tokenizer_config.json")
"""Where transformers looks for a chat template, first found first."""


class TransformersBackend:
    def __init__(
        self,
        path: Path,
        *,
        name: str,
        batch_size: int = 8,
        allow_pickle: bool = False,
        trust_remote_code: bool = False,
        device: str | None = None,
        compile: bool | None = None,
    ) -> None:
        """`compile`: decode with a static KV cache and a compiled step. None (the study's
        `auto`): on CUDA, for models transformers can compile whole; elsewhere the dynamic cache,
        as transformers itself chooses (a first compile on a CPU takes tens of seconds)."""
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise LLMSelectError(
                "the transformers backend needs the [hf] extra", hint="pip install -e '.[hf]'"
            ) from exc
        if not (path / "config.json").is_file():
            raise LLMSelectError("not a model folder (no config.json)", file=path)
        if not trust_remote_code:
            _no_remote_code(path)
        self.name = name
        self.path = path
        self.batch_size = batch_size
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(
                path, trust_remote_code=trust_remote_code
            )
            # transformers' own annotations do not type-check under --strict: keep it as Any.
            auto_model: Any = AutoModelForCausalLM
            with quiet_transformers():
                self.model: Any = auto_model.from_pretrained(
                    path,
                    use_safetensors=use_safetensors(path, allow_pickle),
                    trust_remote_code=trust_remote_code,
                    dtype=torch.bfloat16 if self.device.startswith("cuda") else torch.float32,
                )
            self.model.to(self.device)
        except OSError as exc:
            raise LLMSelectError(
                f"cannot load the model: {exc}",
                file=path,
                hint="llmselect loads safetensors weights only; allow_pickle: true in the study "
                "accepts .bin files (pickle can run code: only for weights you trust)",
            ) from exc
        except pickle.UnpicklingError as exc:
            # torch.load(weights_only=True) found more than tensors in the pickle: refused.
            why = [line for line in str(exc).splitlines() if line.strip()]
            detail = why[-2].strip() if len(why) > 1 else "not plain tensors"
            raise LLMSelectError(
                "refused to load the pickled weights: they hold more than tensors, and could "
                f"run code when loaded (torch: {detail[:200]})",
                file=next(iter(sorted(path.glob("*.bin"))), path),
                hint="convert the weights to safetensors where you trust them, or use another "
                "copy of the model",
            ) from None
        except Exception as exc:
            # A truncated or corrupt safetensors file, a config transformers cannot read...
            raise _unreadable(path, exc) from None
        self.model.eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.tokenizer.padding_side = "left"
        compilable = bool(getattr(self.model, "_can_compile_fullgraph", False))
        if compile is None:
            compile = self.device.startswith("cuda") and compilable
        self.compile = compile
        """Decode with a static cache and ask transformers to compile the step."""
        self.compiled = False
        """Whether transformers did compile the decode step (it may decline, e.g. quantized)."""
        self._compile_config: Any = None
        if compile and not self.device.startswith("cuda"):
            from transformers import CompileConfig

            # transformers compiles the step only on accelerators unless this flag (private, and
            # documented as the switch for e.g. the CPU) is set: `compile: true` asked for it here.
            self._compile_config = CompileConfig()
            self._compile_config._compile_all_devices = True
        self._cache_length = 0
        """The static cache's length so far: it only grows, so compiled shapes stay few."""
        self._warm_shapes: set[tuple[int, int]] = set()
        """(rows, cache length) pairs already compiled and captured by a warm-up run."""

    @property
    def engine(self) -> str:
        """The sizing engine profile (`llmselect fit --engine`) this run measures: `fit` sizes
        any CPU with the `cpu` profile whatever the decode path; on CUDA, the path that ran."""
        if not self.device.startswith("cuda"):
            return "cpu"
        return "transformers-compiled" if self.compiled else "transformers-eager"

    def chat_prompt(self, prompt: str) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise LLMSelectError(
                f"{self.name} has no chat template",
                field="task.chat",
                hint="set `chat: false` and write the prompt format in `template`",
            )
        from jinja2 import TemplateError

        messages = [{"role": "user", "content": prompt}]
        try:
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        except TemplateError as exc:
            # transformers renders chat templates in Jinja's sandbox: a blocked access lands here.
            raise LLMSelectError(
                f"the model's chat template failed: {type(exc).__name__}: {exc}",
                file=next(
                    (self.path / n for n in CHAT_TEMPLATE_FILES if (self.path / n).is_file()),
                    self.path,
                ),
                field="task.chat",
                hint="the sandbox refuses what the template tries; set `chat: false` and write "
                "the prompt format in `template`, or fix the model's chat template",
            ) from None
        return str(text)

    @property
    def tokens(self) -> LocalTokens:
        """The tokenizer and context, to check prompts against before running."""
        return LocalTokens(self)

    def generate(self, prompts: list[str], settings: GenerationSettings) -> list[Generation]:
        from llmselect.evaluation.backends.transformers_hooks import FirstTokenClock, stop_in_output

        torch = self.torch
        if settings.chat:
            prompts = [self.chat_prompt(p) for p in prompts]
        stop = [s for s in settings.stop if s]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: dict[int, Generation] = {}
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            # A chat template already holds the special tokens: do not add them twice.
            encoded = self.tokenizer(
                [prompts[i] for i in chunk],
                return_tensors="pt",
                padding=True,
                add_special_tokens=not settings.chat,
            ).to(self.device)
            width = encoded["input_ids"].shape[1]
            options: dict[str, Any] = {
                "max_new_tokens": settings.max_tokens,
                "do_sample": False,
                "pad_token_id": self.tokenizer.pad_token_id,
            }
            if settings.temperature > 0:
                options.update(do_sample=True, temperature=settings.temperature)
            if self.compile:
                # transformers compiles the decode step (not the prefill) for a static cache, once
                # per (rows, cache length): a cache sized in powers of two that never shrinks keeps
                # those shapes few, whatever the prompts' lengths.
                needed = width + settings.max_tokens
                self._cache_length = max(self._cache_length, 256, 1 << (needed - 1).bit_length())
                options.update(cache_implementation="static", max_cache_len=self._cache_length)
                if self._compile_config is not None:
                    options["compile_config"] = self._compile_config
                shape = (len(chunk), self._cache_length)
                if shape not in self._warm_shapes:
                    # Compile and capture the step outside the timed run.
                    warm = min(4, settings.max_tokens)
                    with torch.no_grad():
                        self.model.generate(
                            **encoded, **{**options, "max_new_tokens": warm, "min_new_tokens": warm}
                        )
                    self._warm_shapes.add(shape)
            if stop:
                # Halt once every row's output holds a stop string; apply_stop still cuts it.
                options["stopping_criteria"] = stop_in_output(self.tokenizer, stop, width)
            clock = FirstTokenClock()
            began = time.perf_counter()
            with torch.no_grad():
                out = self.model.generate(**encoded, streamer=clock, **options)
            # transformers keeps the step it compiled on the model: proof the compiled path ran.
            self.compiled = self.compiled or hasattr(self.model, "_compiled_call")
            seconds = (time.perf_counter() - began) / len(chunk)
            # Every row of a batch gets its first token at the same time.
            ttft = None if clock.first_token_at is None else clock.first_token_at - began
            for row, index in enumerate(chunk):
                new = out[row, width:]
                text = str(self.tokenizer.decode(new, skip_special_tokens=True))
                prompt_tokens = int(encoded["attention_mask"][row].sum())
                results[index] = Generation(
                    text=apply_stop(text, settings.stop),
                    prompt_tokens=prompt_tokens,
                    output_tokens=int((new != self.tokenizer.pad_token_id).sum()),
                    seconds=seconds,
                    ttft_s=ttft,
                )
        return [results[i] for i in range(len(prompts))]

    def loglikelihoods(self, requests: list[tuple[str, str]]) -> list[float]:
        torch = self.torch
        scores = []
        for context, continuation in requests:
            # A context's trailing spaces go to the continuation, as lm-evaluation-harness's
            # `_encode_pair` does: "A: " + "Paris" is scored as "A:" + " Paris", since the
            # whole text tokenizes the space into the continuation's first token.
            stripped = context.rstrip()
            if stripped:
                context, continuation = stripped, context[len(stripped) :] + continuation
            # Tokenize the whole and the context, as lm-evaluation-harness does, so that a
            # token spanning the boundary is attributed to the continuation.
            # A chat-formatted context already starts with the BOS token: do not add another.
            bos = self.tokenizer.bos_token
            special = not (bos and context.startswith(bos))
            whole = self.tokenizer(
                context + continuation, return_tensors="pt", add_special_tokens=special
            )["input_ids"]
            n_context = len(self.tokenizer(context, add_special_tokens=special)["input_ids"])
            ids = whole.to(self.device)
            with torch.no_grad():
                logits = self.model(ids).logits.float()
            logprobs = torch.log_softmax(logits[0, :-1], dim=-1)
            targets = ids[0, 1:]
            picked = logprobs[torch.arange(len(targets)), targets]
            scores.append(float(picked[n_context - 1 :].sum()))
        return scores

    def loglikelihood_rolling(self, texts: list[str], max_length: int | None = None) -> list[float]:
        """Each text's total log-likelihood, scored in disjoint windows of the model's maximum
        length as lm-evaluation-harness does (see `rolling_windows`). The text is tokenized
        without special tokens and its first token predicted after BOS (EOS without one)."""
        from llmselect.evaluation.backends.base import model_max_length, rolling_windows

        torch = self.torch
        length = max_length or model_max_length(self.model.config, self.tokenizer)
        prefix = self.tokenizer.bos_token_id
        prefix = prefix if prefix is not None else self.tokenizer.eos_token_id
        if prefix is None:
            raise LLMSelectError(
                f"{self.name} has neither a BOS nor an EOS token to predict the first token from",
                field="task.kind",
            )
        # (text index, the tokens the model reads, the tokens its last positions predict)
        windows: list[tuple[int, list[int], list[int]]] = []
        for index, text in enumerate(texts):
            seq = [prefix, *self.tokenizer(text, add_special_tokens=False)["input_ids"]]
            for start, end, scored in rolling_windows(len(seq) - 1, length):
                windows.append((index, seq[start:end], seq[end - scored + 1 : end + 1]))
        totals = [0.0] * len(texts)
        # Windows are right-padded into batches; the token budget bounds the logits' memory.
        per_batch = max(1, min(self.batch_size, 16384 // length))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else prefix
        for first in range(0, len(windows), per_batch):
            batch = windows[first : first + per_batch]
            width = max(len(w) for _, w, _ in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (_, window, _) in enumerate(batch):
                ids[row, : len(window)] = torch.tensor(window)
                mask[row, : len(window)] = 1
            with torch.no_grad():
                logits = self.model(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device)
                ).logits
            for row, (index, window, targets) in enumerate(batch):
                end, n = len(window), len(targets)
                logprobs = torch.log_softmax(logits[row, end - n : end].float(), dim=-1)
                positions = torch.arange(n, device=logprobs.device)
                wanted = torch.tensor(targets, device=logprobs.device)
                totals[index] += float(logprobs[positions, wanted].sum())
        return totals

    def close(self) -> None:
        del self.model


class LocalTokens:
    """Prompts measured as `generate` and `loglikelihoods` encode them."""

    def __init__(self, backend: TransformersBackend) -> None:
        from llmselect.evaluation.backends.base import model_max_length

        self.tokenizer = backend.tokenizer
        self.context = model_max_length(backend.model.config, backend.tokenizer)
        self.source = f"{backend.path / 'config.json'}"

    def count(self, texts: list[str]) -> list[int]:
        from transformers.utils import logging as hf_logging

        # A prompt over the model's length is what is being looked for: no warning about it.
        logging: Any = hf_logging
        previous = logging.get_verbosity()
        logging.set_verbosity_error()
        try:
            return [len(ids) for ids in self.tokenizer(texts)["input_ids"]]
        finally:
            logging.set_verbosity(previous)

    def cut(self, text: str, tokens: int, side: str) -> str:
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        spans = encoded["offset_mapping"]
        if tokens >= len(spans):
            return text
        # Cut at a token's edge in the text, so no character is split or changed by decoding.
        return text[spans[-tokens][0] :] if side == "left" else text[: spans[tokens - 1][1]]


def _no_remote_code(path: Path) -> None:
    """A folder whose config maps its classes to its own Python files runs that code: refuse
    it by name, before transformers asks for the flag in its own words."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # transformers reports an unreadable config
    if isinstance(config, dict) and config.get("auto_map"):
        from transformers import CONFIG_MAPPING

        if config.get("model_type") not in CONFIG_MAPPING:
            raise LLMSelectError(
                "the model's code is in the folder (config.json's `auto_map`), and running it "
                "was not allowed",
                file=path / "config.json",
                hint="read that code first; set `trust_remote_code: true` on the candidate to "
                "run it",
            )


def _unreadable(path: Path, exc: Exception) -> LLMSelectError:
    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    name = type(exc).__name__
    if "safetensor" in name.lower() or "safetensors" in message.lower():
        return LLMSelectError(
            f"the weights cannot be read ({name}: {message}): the file is truncated or corrupt",
            file=_bad_safetensors(path) or path,
            hint="download the model again (compare the file's size with the source's)",
        )
    if "trust_remote_code" in message:
        return LLMSelectError(
            f"the model needs its own code to load: {message}",
            file=path,
            hint="set `trust_remote_code: true` on the candidate once you have read that code",
        )
    return LLMSelectError(f"cannot load the model: {name}: {message}", file=path)


def _bad_safetensors(path: Path) -> Path | None:
    """The first weights file whose header does not describe the file: which one to fetch again."""
    from safetensors import safe_open

    for file in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="numpy"):
                pass
        except Exception:  # any failure to open names this file
            return file
    return None
