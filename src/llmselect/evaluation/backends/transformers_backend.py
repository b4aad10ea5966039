"""A local Hugging Face model folder run with transformers.

safetensors only and never `trust_remote_code`, unless the study allows them by name. Prompts
are sorted by length and batched (left padding); log-likelihoods are computed the way
lm-evaluation-harness does: the continuation's tokens scored after the context's.
"""

from __future__ import annotations

import inspect
import json
import pickle
import time
from pathlib import Path
from typing import Any

from llmselect.errors import LLMSelectError
from llmselect.evaluation.backends.base import (
    Generation,
    GenerationSettings,
    apply_stop,
    model_max_length,
)
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
        # Given several GPUs (a Ray unit that sizing said needs them, or CUDA_VISIBLE_DEVICES),
        # the layers are spread over them; the inputs go to the first, where the embeddings are.
        self.spread = self.device == "cuda" and torch.cuda.device_count() > 1
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
                    **({"device_map": "auto"} if self.spread else {}),
                )
            if self.spread:
                self.device = str(self.model.get_input_embeddings().weight.device)
            else:
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
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        """Whether the model can project only the last positions onto the vocabulary."""
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.tokenizer.padding_side = "left"
        compilable = bool(getattr(self.model, "_can_compile_fullgraph", False))
        if compile is None:
            # A model spread over GPUs decodes eagerly: one compiled graph spans one device.
            compile = self.device.startswith("cuda") and compilable and not self.spread
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
            seconds = time.perf_counter() - began
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
                    batch_rows=len(chunk),
                )
        return [results[i] for i in range(len(prompts))]

    def loglikelihoods(self, requests: list[tuple[str, str]]) -> list[float]:
        """Each continuation's log-likelihood after its context, as lm-evaluation-harness
        computes it (`_encode_pair`, then `_loglikelihood_tokens`), and as fast.

        Requests that give the model the same input (the choices " A", " B"... of one question:
        context plus all but the continuation's last token) share one row. Rows are sorted by
        length and run `batch_size` at a time, right-padded: a causal model's positions never
        see what follows them, so padding changes nothing they compute. Only the positions that
        predict a continuation are projected to the vocabulary (`logits_to_keep`)."""
        torch = self.torch
        pairs = self._encode_pairs(requests)
        limit = model_max_length(self.model.config, self.tokenizer)
        rows: dict[tuple[int, ...], int] = {}
        wanted: list[tuple[int, list[int]] | None] = []  # per request: (row, continuation)
        for context, continuation in pairs:
            if not continuation:
                wanted.append(None)  # nothing to score: the continuation tokenized into nothing
                continue
            if len(continuation) > limit:
                raise LLMSelectError(
                    f"a choice of {len(continuation)} tokens is longer than {self.name}'s "
                    f"context ({limit} tokens)",
                    field="dataset.fields.choices",
                )
            # Too long a context loses its oldest tokens, as lm-evaluation-harness does.
            model_input = tuple((context + continuation)[-(limit + 1) :][:-1])
            wanted.append((rows.setdefault(model_input, len(rows)), continuation))
        inputs = list(rows)
        longest = [0] * len(inputs)
        for want in wanted:
            if want is not None:
                longest[want[0]] = max(longest[want[0]], len(want[1]))
        order = sorted(range(len(inputs)), key=lambda r: -len(inputs[r]))
        logprobs: dict[int, Any] = {}  # row -> log-probabilities of its last `longest` positions
        pad = self.tokenizer.pad_token_id or 0
        for first in range(0, len(order), self.batch_size):
            batch = order[first : first + self.batch_size]
            width = len(inputs[batch[0]])
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            for slot, row in enumerate(batch):
                ids[slot, : len(inputs[row])] = torch.tensor(inputs[row])
            # The positions, counted from the right edge, that some row's continuation needs.
            kept = max(width - len(inputs[row]) + longest[row] for row in batch)
            options = {"logits_to_keep": kept} if self._keeps_logits else {}
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(self.device), **options).logits
                logits = logits[:, -kept:].float()
                for slot, row in enumerate(batch):
                    end = kept - (width - len(inputs[row]))
                    logprobs[row] = torch.log_softmax(logits[slot, end - longest[row] : end], -1)
        scores = []
        for want in wanted:
            if want is None:
                scores.append(0.0)
                continue
            row, continuation = want
            n = len(continuation)
            table = logprobs[row][longest[row] - n :]
            picked = table[torch.arange(n), torch.tensor(continuation, device=table.device)]
            scores.append(float(picked.sum()))
        return scores

    def _encode_pairs(self, requests: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        """(context tokens, continuation tokens) per request, as lm-evaluation-harness's
        `loglikelihood` and `_encode_pair` make them. A context's trailing spaces go to the
        continuation ("A: " + "Paris" is scored as "A:" + " Paris"). The whole text is tokenized
        and the context's length cut from it, so that a token spanning the boundary counts as
        the continuation's. A context that already starts with the BOS token (a chat-formatted
        one) gets no second one; an empty context is the BOS token (EOS without one)."""
        texts: list[tuple[str, str]] = []
        for context, continuation in requests:
            stripped = context.rstrip()
            texts.append((stripped, context[len(stripped) :] + continuation))
        bos = self.tokenizer.bos_token
        encoded: dict[tuple[str, bool], list[int]] = {}
        for special in (True, False):
            # One call per kind of text: a fast tokenizer works through a list in parallel.
            todo = {
                text
                for context, continuation in texts
                if context and (not (bos and context.startswith(bos))) is special
                for text in (context, context + continuation)
            }
            if todo:
                listed = sorted(todo)
                ids = self.tokenizer(listed, add_special_tokens=special)["input_ids"]
                encoded.update({(t, special): list(i) for t, i in zip(listed, ids, strict=True)})
        pairs = []
        for context, continuation in texts:
            if not context:
                bare = list(self.tokenizer(continuation, add_special_tokens=False)["input_ids"])
                start = self._start_token()
                # lm-evaluation-harness: a continuation that begins with that token is its own
                # context.
                pairs.append(([start], bare) if bare[:1] != [start] else (bare[:1], bare[1:]))
                continue
            special = not (bos and context.startswith(bos))
            whole = encoded[(context + continuation, special)]
            head = encoded[(context, special)]
            # A context of no tokens at all is read as the start token, like an empty one.
            pairs.append((head, whole[len(head) :]) if head else ([self._start_token()], whole))
        return pairs

    def _start_token(self) -> int:
        """The token a text is predicted from: BOS, or EOS where the model has no BOS."""
        start = self.tokenizer.bos_token_id
        start = start if start is not None else self.tokenizer.eos_token_id
        if start is None:
            raise LLMSelectError(
                f"{self.name} has neither a BOS nor an EOS token to predict the first token from",
                field="task.kind",
            )
        return int(start)

    def loglikelihood_rolling(self, texts: list[str], max_length: int | None = None) -> list[float]:
        """Each text's total log-likelihood, scored in disjoint windows of the model's maximum
        length as lm-evaluation-harness does (see `rolling_windows`). The text is tokenized
        without special tokens and its first token predicted after BOS (EOS without one)."""
        from llmselect.evaluation.backends.base import rolling_windows

        torch = self.torch
        length = max_length or model_max_length(self.model.config, self.tokenizer)
        prefix = self._start_token()
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
