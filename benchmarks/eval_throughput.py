"""Evaluation throughput: llmselect's transformers backend against lm-evaluation-harness's.

    python benchmarks/eval_throughput.py                       # generation, tiny model, CPU
    python benchmarks/eval_throughput.py --task multiple-choice           # 4 sentence choices
    python benchmarks/eval_throughput.py --task multiple-choice --choices letters   # " A".." D"
    python benchmarks/eval_throughput.py --shape small         # 8 layers x 512, CPU
    python benchmarks/eval_throughput.py --shape 7b --device cuda   # Llama-2-7B shape, bf16
    python benchmarks/eval_throughput.py --model path/to/hf-folder --device cuda
    python benchmarks/eval_throughput.py --shape 7b --device cuda --batch-size 1,8 --items 4,16 \
        --warmup batch --roofline --profile       # both batch sizes, against the bandwidth roofline

Both engines get the same model folder, the same items and the same batch size. Generation:
the same prompts and number of new tokens, greedy (lm-eval's `generate_until` with its HF
backend, `hf`; llmselect's `TransformersBackend.generate`). Multiple choice: every choice's
log-likelihood after its question (lm-eval's `loglikelihood`; llmselect's `loglikelihoods`,
called as `llmselect eval` calls it, on `batch-size` items at a time), with choices that are
sentences of different lengths (HellaSwag-like) or the letters " A" to " D" (MMLU-like). Each
engine runs once to warm up (on CUDA llmselect compiles its decode step then), then
`--repeats` times, the two engines taking turns; the median run counts. Prints items/s per
engine (and output tokens/s and time to first token for generation), how many outputs agree
(the same text, or log-likelihoods within 1e-4), and the ratio llmselect / lm-eval.

`--batch-size` takes a list (`1,8`): the engines are loaded once and each size is measured in
turn, `--items` one count for all or one per size; `--warmup batch` warms each engine on one
batch of items instead of all of them (the compiled shapes are the same when every prompt plus
`--max-tokens` fits the same static cache, 256 tokens at least).

`--roofline` measures the device's memory bandwidth (a device-to-device copy of
`--roofline-bytes`, median of ten, bytes read plus written over the time) and compares each
batch size's decode step with the best possible one: the weights a step reads (all but the
input embedding table, of which it reads one row per sequence) over that bandwidth. Decode
steps per second are llmselect's, from each batch's time after its first token. `--profile`
then traces one item at batch 1 (when 1 is among the batch sizes) with torch's profiler: the
GPU's busy time (its kernels and copies) against the wall time of the call, and the host-side
operations that took longest.

Without `--model`, the model is built here with random weights (latency does not depend on
their values): a Llama of the chosen shape and a word-level tokenizer with exactly the model's
vocabulary, so that every token id the model can emit decodes. `7b` is Llama-2-7B's shape
(meta-llama/Llama-2-7b-hf config.json: 32 layers, hidden 4096, MLP 11008, 32 heads, vocabulary
32000, 4096 positions), built in bf16 on the GPU; it needs CUDA and about 14 GB of disk.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()

SHAPES: dict[str, dict[str, Any]] = {
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 320,
        "max_position_embeddings": 512,
    },
    "small": {
        "hidden_size": 512,
        "intermediate_size": 1408,
        "num_hidden_layers": 8,
        "num_attention_heads": 8,
        "num_key_value_heads": 8,
        "vocab_size": 8000,
        "max_position_embeddings": 2048,
    },
    # meta-llama/Llama-2-7b-hf config.json
    "7b": {
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32000,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
    },
}
SPECIAL_TOKENS = {
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "bos_token": "<s>",
    "eos_token": "</s>",
}


Question = tuple[str, list[str]]
"""A multiple-choice item: the context, and the continuations to score after it."""


@dataclass
class Measured:
    engine: str
    seconds: float
    items: int
    output_tokens: int
    outputs: list[Any]
    """Per item: the generated text, or each choice's log-likelihood."""
    ttfts: list[float] = field(default_factory=list)
    decode_steps: int = 0
    """Decode steps after each batch's first token, all batches together (llmselect only)."""
    decode_seconds: float = 0.0
    """Their time: each batch's time less its time to first token."""

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.output_tokens / self.seconds

    @property
    def decode_steps_per_s(self) -> float | None:
        return self.decode_steps / self.decode_seconds if self.decode_seconds > 0 else None


def build_model(folder: Path, shape: str, device: str) -> Path:
    """A Llama of `shape` with random weights and a word-level tokenizer of its vocabulary."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    if (folder / "config.json").is_file():
        return folder
    values = SHAPES[shape]
    specials = list(SPECIAL_TOKENS.values())
    words = specials + [f"w{i}" for i in range(values["vocab_size"] - len(specials))]
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast: Any = PreTrainedTokenizerFast  # transformers' annotations are not --strict clean
    tokenizer = fast(tokenizer_object=tok, **SPECIAL_TOKENS)
    config = LlamaConfig(
        **values,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    # bf16 on the GPU from the start: a 7B model in fp32 would need 27 GB to be built.
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.device(device):
        auto: Any = LlamaForCausalLM
        model = auto._from_config(config, dtype=dtype)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    return folder


def make_prompts(model: Path, n: int, lengths: tuple[int, int], seed: int) -> list[str]:
    """Texts decoded from random token ids, of lengths drawn in `lengths` (in tokens)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    special = set(tokenizer.all_special_ids)
    ids = [i for i in range(len(tokenizer)) if i not in special]
    rng = random.Random(seed)  # noqa: S311 (reproducible prompts, not secrets)
    return [
        str(tokenizer.decode(rng.choices(ids, k=rng.randint(*lengths)), skip_special_tokens=True))
        for _ in range(n)
    ]


def make_questions(
    model: Path, n: int, lengths: tuple[int, int], choices: str, seed: int
) -> list[Question]:
    """Contexts as `make_prompts`, each with four choices: sentences of 2 to 24 words, or the
    letters " A" to " D" (" w1" to " w4" where the vocabulary has no such single tokens, as
    the built models' word-level one)."""
    contexts = make_prompts(model, n, lengths, seed)
    words = make_prompts(model, 4 * n, (2, 24), seed + 1)
    if choices == "letters":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)
        letters = [" A", " B", " C", " D"]
        ids = [tokenizer(x, add_special_tokens=False)["input_ids"] for x in letters]
        if any(len(i) != 1 or i[0] == tokenizer.unk_token_id for i in ids):
            letters = [" w1", " w2", " w3", " w4"]
        return [(c, letters) for c in contexts]
    return [(c, [" " + w for w in words[4 * i : 4 * i + 4]]) for i, c in enumerate(contexts)]


class LlmselectEngine:
    name = "llmselect"

    def __init__(self, model: Path, max_tokens: int, batch: int, device: str) -> None:
        from llmselect.evaluation.backends.base import GenerationSettings
        from llmselect.evaluation.backends.transformers_backend import TransformersBackend

        self.backend = TransformersBackend(model, name="bench", batch_size=batch, device=device)
        self.settings = GenerationSettings(max_tokens=max_tokens)
        self.batch = batch

    def set_batch(self, batch: int) -> None:
        self.backend.batch_size = batch
        self.batch = batch

    def weights_read_per_step(self) -> int:
        """Bytes of the weights one decode step reads: all but the input embedding table (one
        row of it per sequence), unless the output projection shares it."""
        model = self.backend.model
        total = sum(p.numel() * p.element_size() for p in model.parameters())
        embedding = model.get_input_embeddings().weight
        output = model.get_output_embeddings()
        if output is not None and output.weight is embedding:
            return int(total)
        return int(total - embedding.numel() * embedding.element_size())

    def generate(self, prompts: list[str]) -> Measured:
        began = time.perf_counter()
        outputs = self.backend.generate(prompts, self.settings)
        seconds = time.perf_counter() - began
        # The backend's batches: prompts sorted by length, `batch` at a time; each batch's rows
        # share its time and time to first token, and it takes as many steps as its longest row.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        steps, decode_seconds = 0, 0.0
        for first in range(0, len(order), self.batch):
            rows = [outputs[i] for i in order[first : first + self.batch]]
            if rows[0].ttft_s is not None:
                steps += max(o.output_tokens for o in rows) - 1
                decode_seconds += rows[0].seconds - rows[0].ttft_s
        return Measured(
            self.name,
            seconds,
            len(prompts),
            sum(o.output_tokens for o in outputs),
            [o.text for o in outputs],
            [o.ttft_s for o in outputs if o.ttft_s is not None],
            steps,
            decode_seconds,
        )

    def score(self, questions: list[Question]) -> Measured:
        """As `llmselect eval` does: items sorted by prompt length, `batch` at a time, all the
        choices of a batch in one call."""
        scores: dict[int, list[float]] = {}
        order = sorted(range(len(questions)), key=lambda i: len(questions[i][0]))
        began = time.perf_counter()
        for first in range(0, len(order), self.batch):
            chunk = order[first : first + self.batch]
            flat = self.backend.loglikelihoods(
                [(c, x) for i in chunk for c, xs in [questions[i]] for x in xs]
            )
            for index, item in enumerate(chunk):
                scores[item] = flat[4 * index : 4 * index + len(questions[item][1])]
        seconds = time.perf_counter() - began
        return Measured(
            self.name, seconds, len(questions), 0, [scores[i] for i in range(len(order))]
        )


class LmEvalEngine:
    name = "lm-eval hf"

    def __init__(self, model: Path, max_tokens: int, batch: int, device: str) -> None:
        from lm_eval.models.huggingface import HFLM

        dtype = "bfloat16" if device == "cuda" else "float32"
        self.lm = HFLM(pretrained=str(model), device=device, batch_size=batch, dtype=dtype)
        self.gen_kwargs = {"until": [], "max_gen_toks": max_tokens, "do_sample": False}
        # lm-eval returns text only: count the tokens it generates the way llmselect does
        # (new tokens that are not padding), around its own call to `generate`.
        self.generated = 0
        original = self.lm._model_generate
        pad = self.lm.tokenizer.pad_token_id

        def counted(context: Any, *args: Any, **kwargs: Any) -> Any:
            out = original(context, *args, **kwargs)
            self.generated += int((out[:, context.shape[1] :] != pad).sum())
            return out

        self.lm._model_generate = counted

    def set_batch(self, batch: int) -> None:
        self.lm.batch_size_per_gpu = batch

    def generate(self, prompts: list[str]) -> Measured:
        from lm_eval.api.instance import Instance

        requests = [
            Instance(request_type="generate_until", doc={}, arguments=(p, self.gen_kwargs), idx=i)
            for i, p in enumerate(prompts)
        ]
        self.generated = 0
        began = time.perf_counter()
        texts = self.lm.generate_until(requests, disable_tqdm=True)
        seconds = time.perf_counter() - began
        return Measured(self.name, seconds, len(prompts), self.generated, list(texts))

    def score(self, questions: list[Question]) -> Measured:
        from lm_eval.api.instance import Instance

        requests = [
            Instance(request_type="loglikelihood", doc={}, arguments=(c, x), idx=i)
            for c, xs in questions
            for i, x in enumerate(xs)
        ]
        began = time.perf_counter()
        answers = self.lm.loglikelihood(requests, disable_tqdm=True)
        seconds = time.perf_counter() - began
        lls = [ll for ll, _ in answers]
        scores = [lls[4 * i : 4 * i + len(xs)] for i, (_, xs) in enumerate(questions)]
        return Measured(self.name, seconds, len(questions), 0, scores)


def measure(
    engines: list[Any],
    run: Callable[[Any], Measured],
    repeats: int,
    warm: Callable[[Any], Measured] | None = None,
) -> list[Measured]:
    """Each engine's median run. Runs alternate between the engines, so that a machine busy
    with other work slows both alike. `warm` is the warm-up run (default: `run`)."""
    for engine in engines:
        (warm or run)(engine)  # warm-up (CUDA: llmselect compiles its decode step here)
    runs: dict[str, list[Measured]] = {engine.name: [] for engine in engines}
    for repeat in range(repeats):
        for engine in engines if repeat % 2 == 0 else engines[::-1]:
            runs[engine.name].append(run(engine))
    return [sorted(runs[e.name], key=lambda m: m.seconds)[(repeats - 1) // 2] for e in engines]


def generating(prompts: list[str]) -> Callable[[Any], Measured]:
    return lambda engine: engine.generate(prompts)


def scoring(questions: list[Question]) -> Callable[[Any], Measured]:
    return lambda engine: engine.score(questions)


def agree(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, str):
        return bool(ours == theirs)
    return all(abs(a - b) <= 1e-4 for a, b in zip(ours, theirs, strict=True))


def report(ours: Measured, theirs: Measured, title: str, repeats: int) -> None:
    generated = bool(ours.output_tokens or theirs.output_tokens)
    table = Table(title=f"{title} (median of {repeats} runs)")
    columns = ["engine", "items", "seconds", "items/s"]
    columns += ["out tokens", "tokens/s", "TTFT p50 s"] if generated else []
    for col in columns:
        table.add_column(col, justify="left" if col == "engine" else "right")
    for m in (ours, theirs):
        cells = [m.engine, str(m.items), f"{m.seconds:.2f}", f"{m.items_per_s:.2f}"]
        if generated:
            ttft = f"{statistics.median(m.ttfts):.4f}" if m.ttfts else "–"
            cells += [str(m.output_tokens), f"{m.tokens_per_s:.1f}", ttft]
        table.add_row(*cells)
    console.print(table)
    same = sum(agree(a, b) for a, b in zip(ours.outputs, theirs.outputs, strict=True))
    what = "same output text" if generated else "log-likelihoods within 1e-4"
    console.print(f"{what}: {same}/{len(ours.outputs)}")
    if not generated:
        worst = max(
            abs(a - b)
            for x, y in zip(ours.outputs, theirs.outputs, strict=True)
            for a, b in zip(x, y, strict=True)
        )
        console.print(f"largest log-likelihood difference: {worst:.2e}")
    ratio = f"llmselect / lm-eval: items/s x{ours.items_per_s / theirs.items_per_s:.2f}"
    if generated:
        ratio += f", tokens/s x{ours.tokens_per_s / theirs.tokens_per_s:.2f}"
    console.print(ratio)


def copy_bandwidth(device: str, size: int, repeats: int = 10) -> float:
    """Bytes per second of a device-to-device copy of `size` bytes (read plus written), the
    median of `repeats` after a warm-up: the most a memory-bound decode step can stream."""
    import torch

    source = torch.empty(size, dtype=torch.uint8, device=device)
    source.fill_(1)
    target = torch.empty_like(source)
    target.copy_(source)  # warm-up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            event: Any = torch.cuda.Event
            start, end = event(enable_timing=True), event(enable_timing=True)
            start.record()
            target.copy_(source)
            end.record()
            end.synchronize()
            times.append(float(start.elapsed_time(end)) / 1e3)
        else:
            began = time.perf_counter()
            target.copy_(source)
            times.append(time.perf_counter() - began)
    del source, target
    return float(2 * size / statistics.median(times))


@dataclass
class Roofline:
    bandwidth: float
    """Bytes per second, measured."""
    weights: int
    """Bytes one decode step reads at least."""

    @property
    def steps_per_s(self) -> float:
        return self.bandwidth / self.weights


def report_roofline(ours: Measured, roofline: Roofline, batch: int) -> dict[str, Any]:
    best = roofline.steps_per_s
    steps = ours.decode_steps_per_s
    if steps is None:
        console.print("roofline: no decode time measured (no first-token time)")
        return {}
    console.print(
        f"roofline, batch {batch}: {roofline.weights / 1e9:.2f} GB of weights a step at "
        f"{roofline.bandwidth / 1e12:.2f} TB/s = {1e3 / best:.2f} ms a step at best; llmselect "
        f"decodes {steps:.1f} steps/s ({1e3 / steps:.2f} ms a step, {steps * batch:.1f} "
        f"tokens/s) = {steps / best:.1%} of the roofline",
        highlight=False,
    )
    return {
        "bandwidth_bytes_per_s": roofline.bandwidth,
        "weights_bytes_per_step": roofline.weights,
        "roofline_steps_per_s": best,
        "decode_steps_per_s": steps,
        "decode_tokens_per_s": steps * batch,
        "roofline_fraction": steps / best,
    }


def profile_step(engine: LlmselectEngine, prompt: str) -> None:
    """Trace one batch-1 generation: GPU busy time against the call's wall time, and the
    host-side operations that took longest (where a decode step's time goes besides the GPU)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    engine.set_batch(1)
    engine.backend.generate([prompt], engine.settings)  # the shape is warm before the trace
    activities = [ProfilerActivity.CPU]
    if engine.backend.device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as trace:
        began = time.perf_counter()
        out = engine.backend.generate([prompt], engine.settings)[0]
        wall = time.perf_counter() - began
    # The GPU's own events (kernels, also those a CUDA graph replays, and copies): their time.
    device_us = sum(e.device_time_total for e in trace.events() if e.device_type.name == "CUDA")
    console.print(
        f"profile, batch 1, {out.output_tokens} tokens: wall {wall * 1e3:.1f} ms, GPU busy "
        f"{device_us / 1e3:.1f} ms ({device_us / 1e6 / wall:.0%}); "
        f"{wall * 1e3 / max(out.output_tokens, 1):.2f} ms a token",
        highlight=False,
    )
    events = trace.key_averages()
    # What makes the host wait or launch: syncs, scalar reads, graph replays, single launches.
    marks = ("Synchronize", "local_scalar_dense", "GraphLaunch", "LaunchKernel", "Memcpy", "item")
    for event in events:
        if any(mark in event.key for mark in marks):
            print(
                f"  host: {event.key}: {event.count} calls, {event.cpu_time_total / 1e3:.1f} ms",
                flush=True,
            )
    print(events.table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=50))
    if len(activities) > 1:
        print(events.table(sort_by="self_device_time_total", row_limit=8, max_name_column_width=50))
    del torch


def token_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    try:
        pair = (int(low), int(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW-HIGH in tokens, got {text!r}") from None
    if not 1 <= pair[0] <= pair[1]:
        raise argparse.ArgumentTypeError(f"expected 1 <= LOW <= HIGH, got {text!r}")
    return pair


def counts(text: str) -> list[int]:
    try:
        values = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected counts such as 1,8, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected counts of at least 1, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=["generate", "multiple-choice"], default="generate")
    parser.add_argument("--choices", choices=["sentences", "letters"], default="sentences")
    parser.add_argument("--model", type=Path, help="a local Hugging Face model folder")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--items", type=counts, default=[64], help="one, or one per batch size")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=counts, default=[8], help="e.g. 1,8")
    parser.add_argument(
        "--warmup",
        choices=["all", "batch"],
        default="all",
        help="warm each engine on all the items, or on one batch of them",
    )
    parser.add_argument(
        "--roofline", action="store_true", help="decode steps against the bandwidth roofline"
    )
    parser.add_argument(
        "--roofline-bytes",
        type=int,
        help="size of the copy that measures bandwidth (default 4 GiB on CUDA, 64 MiB on CPU)",
    )
    parser.add_argument("--profile", action="store_true", help="trace one batch-1 generation")
    parser.add_argument("--json", type=Path, help="append one summary line per batch size here")
    parser.add_argument("--prompt-tokens", type=token_range, default=(16, 128))
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="where to keep built models (default: temp)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if len(args.items) not in (1, len(args.batch_size)):
        parser.error("--items: one count, or one per batch size")
    items = dict(zip(args.batch_size, args.items * len(args.batch_size), strict=False))

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA GPU here")
    if args.shape == "7b" and not args.model and args.device != "cuda":
        parser.error("--shape 7b builds a 13 GB bf16 model and runs on a GPU: add --device cuda")
    with tempfile.TemporaryDirectory(prefix="llmselect-bench-") as scratch:
        root = args.workdir or Path(scratch)
        model = args.model or build_model(root / f"llama-{args.shape}", args.shape, args.device)
        console.print(
            f"model {model} on {args.device}; items {args.items} of {args.prompt_tokens[0]}-"
            f"{args.prompt_tokens[1]} tokens; torch {torch.__version__}, threads "
            f"{torch.get_num_threads()}",
            highlight=False,
        )
        roofline = None
        if args.roofline:
            size = args.roofline_bytes or (4 << 30 if args.device == "cuda" else 64 << 20)
            bandwidth = copy_bandwidth(args.device, size)
            console.print(
                f"copy bandwidth on {args.device}: {bandwidth / 1e12:.3f} TB/s (read + written, "
                f"{size / 2**30:.2f} GiB copied, median of 10)",
                highlight=False,
            )
        setup = (model, args.max_tokens, args.batch_size[0], args.device)
        ours_engine = LlmselectEngine(*setup)
        engines: list[Any] = [ours_engine, LmEvalEngine(*setup)]
        if args.roofline:
            roofline = Roofline(bandwidth, ours_engine.weights_read_per_step())
        for batch in args.batch_size:
            for engine in engines:
                engine.set_batch(batch)
            n = items[batch]
            summary: dict[str, Any] = {"task": args.task, "batch": batch, "items": n}
            if args.task == "generate":
                prompts = make_prompts(model, n, args.prompt_tokens, args.seed)
                few = prompts[:batch] if args.warmup == "batch" else prompts
                ours, theirs = measure(
                    engines,
                    generating(prompts),
                    args.repeats,
                    generating(few),
                )
                title = f"Generation: batch {batch}, {args.max_tokens} new tokens, greedy"
            else:
                questions = make_questions(model, n, args.prompt_tokens, args.choices, args.seed)
                few_q = questions[:batch] if args.warmup == "batch" else questions
                ours, theirs = measure(
                    engines,
                    scoring(questions),
                    args.repeats,
                    scoring(few_q),
                )
                title = f"Multiple choice: batch {batch}, 4 choices ({args.choices})"
            report(ours, theirs, title, args.repeats)
            summary.update(
                max_tokens=args.max_tokens,
                repeats=args.repeats,
                llmselect_items_per_s=ours.items_per_s,
                lm_eval_items_per_s=theirs.items_per_s,
                llmselect_tokens_per_s=ours.tokens_per_s,
                lm_eval_tokens_per_s=theirs.tokens_per_s,
                ratio_items_per_s=ours.items_per_s / theirs.items_per_s,
                compiled=ours_engine.backend.compiled,
            )
            if roofline is not None and args.task == "generate":
                summary.update(report_roofline(ours, roofline, batch))
            print("summary " + json.dumps(summary), flush=True)
            if args.json:
                with args.json.open("a", encoding="utf-8") as file:
                    file.write(json.dumps(summary) + "\n")
            if args.profile and args.task == "generate" and batch == 1:
                # Now, while batch 1 is compiled and before a time limit can cut what follows.
                profile_step(ours_engine, prompts[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
