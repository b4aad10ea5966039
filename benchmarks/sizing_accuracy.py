"""Sizing accuracy: predicted against measured memory and speed.

    python benchmarks/sizing_accuracy.py [--record] [--skip-gguf] [--prompt N] [--new N]

1. Weights of real GGUF files (reference: their published sizes, data/gguf_file_sizes.yaml).
2. On this machine's CPU, a model of the catalog's HuggingFaceTB/SmolLM-135M shape with random
   weights, run by transformers in bf16 (random weights run exactly as fast as trained ones):
   weights and KV cache after generation against what torch holds, and time to first token,
   decode tokens per second and peak memory against `fit`'s estimate for the `cpu` engine on
   this machine (uncalibrated: the ratio says how far the default profile is).

`--record` stores that CPU run in the user's calibration store (the file `llmselect calibrate
show` reads), so that `llmselect fit` on this machine is calibrated from then on.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml
from rich.console import Console
from rich.table import Table

from llmselect.catalog import ModelCard, load_builtin
from llmselect.sizing.calibration import Measurement, record
from llmselect.sizing.detect import CPU_REFERENCE, LOCAL_CPU_ID
from llmselect.sizing.engines import get_engine
from llmselect.sizing.estimate import Fit, estimate, kv_bytes_per_token
from llmselect.sizing.hardware import Device, find_device
from llmselect.sizing.quant import weight_bytes

HERE = Path(__file__).parent
BENCH_MODEL = "HuggingFaceTB/SmolLM-135M"
"""A catalog model small enough for any CPU; its card is what `fit` and calibration look up."""
SOURCE = "benchmarks/sizing_accuracy.py"
ENGINE = "cpu"
"""The profile `fit` picks on a machine without a GPU (transformers on CPU belongs to it)."""
console = Console()


@dataclass(frozen=True)
class CpuRun:
    """One timed generation on this machine's CPU."""

    model: str
    """Catalog id of the shape that ran."""
    prompt_tokens: int
    new_tokens: int
    ttft_s: float
    decode_tokens_per_s: float
    """After the first token, one sequence."""
    peak_memory_bytes: int | None
    """Peak resident set size of this process (Python and torch included); None off Unix."""
    baseline_memory_bytes: int
    """Resident set size just before the model was built: Python, torch and transformers."""
    weights_bytes: int
    """What torch holds for the parameters."""
    kv_cache_bytes: int
    tokens_in_cache: int


def gguf_files() -> list[float]:
    data = yaml.safe_load((HERE / "data" / "gguf_file_sizes.yaml").read_text())
    catalog = load_builtin()
    table = Table(title="GGUF weights: predicted vs real file size")
    for col in ("file", "predicted GB", "real GB", "ratio"):
        table.add_column(col, justify="left" if col == "file" else "right")
    ratios = []
    for f in data["files"]:
        predicted = weight_bytes(catalog.get(f["model"]).architecture, f["quant"])
        ratio = predicted / f["bytes"]
        ratios.append(ratio)
        table.add_row(
            f["file"], f"{predicted / 1e9:.3f}", f"{f['bytes'] / 1e9:.3f}", f"{ratio:.4f}"
        )
    console.print(table)
    return ratios


def _peak_rss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB else


def run_cpu(model_id: str = BENCH_MODEL, prompt: int = 128, new: int = 32) -> CpuRun:
    """Generate `new` tokens after a `prompt`-token prompt, greedy, batch 1, on the CPU."""
    import torch
    from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

    arch = load_builtin().get(model_id).architecture
    shape: dict[str, Any] = {
        "hidden_size": arch.hidden_size,
        "intermediate_size": arch.intermediate_size,
        "num_hidden_layers": arch.num_hidden_layers,
        "num_attention_heads": arch.num_attention_heads,
        "num_key_value_heads": arch.num_key_value_heads,
        "head_dim": arch.head_dim,
        "vocab_size": arch.vocab_size,
        "max_position_embeddings": arch.context_length,
        "tie_word_embeddings": arch.tie_word_embeddings,
    }
    config = LlamaConfig(**shape)
    torch.manual_seed(0)
    baseline = psutil.Process().memory_info().rss
    # Built in bf16 directly: an fp32 copy first would set the process's peak, not inference.
    torch.set_default_dtype(torch.bfloat16)
    try:
        model = LlamaForCausalLM(config).train(False)  # inference mode
    finally:
        torch.set_default_dtype(torch.float32)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    ids = torch.randint(0, config.vocab_size, (1, prompt))

    def generate(tokens: int, cache: DynamicCache) -> tuple[float, torch.Tensor]:
        start = time.perf_counter()
        out = model.generate(
            ids,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            do_sample=False,
            past_key_values=cache,
        )
        return time.perf_counter() - start, out

    with torch.no_grad():
        generate(2, DynamicCache())  # warm-up: first-call allocations and kernel selection
        ttft, _ = generate(1, DynamicCache())
        cache = DynamicCache()
        total, out = generate(new, cache)
    kv = sum(
        int(t.numel() * t.element_size())
        for layer in cache.layers
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None))
        if t is not None
    )
    decode_time = max(total - ttft, 1e-9)  # the prefill is in both timings
    return CpuRun(
        model=model_id,
        prompt_tokens=prompt,
        new_tokens=new,
        ttft_s=ttft,
        decode_tokens_per_s=(new - 1) / decode_time,
        peak_memory_bytes=_peak_rss_bytes(),
        baseline_memory_bytes=baseline,
        weights_bytes=weights,
        kv_cache_bytes=kv,
        tokens_in_cache=out.shape[1] - 1,  # the last token's keys and values are not stored
    )


def local_cpu() -> Device:
    """This machine's CPU as `fit` sees it without a GPU: the reference desktop's figures."""
    return find_device(CPU_REFERENCE).model_copy(update={"id": LOCAL_CPU_ID})


def predict(run: CpuRun, card: ModelCard) -> Fit:
    """What `fit` says for this run, with the default (uncalibrated) profile."""
    return estimate(
        card,
        local_cpu(),
        1,
        get_engine(ENGINE),
        quant="bf16",
        context=run.prompt_tokens + run.new_tokens,
        batch=1,
        prompt_tokens=run.prompt_tokens,
    )


def report_cpu(run: CpuRun) -> list[float]:
    """Print predicted against measured; return the memory ratios (the speed rows calibrate)."""
    card = load_builtin().get(run.model)
    fit = predict(run, card)
    arch = card.architecture
    rows: list[tuple[str, float, float | None, str]] = [
        ("weights (bytes)", weight_bytes(arch, "bf16"), run.weights_bytes, ",.0f"),
        (
            f"KV cache after {run.tokens_in_cache} tokens (bytes)",
            kv_bytes_per_token(arch, "bf16") * run.tokens_in_cache,
            run.kv_cache_bytes,
            ",.0f",
        ),
        ("time to first token (s)", fit.estimates.ttft_s, run.ttft_s, ".3f"),
        ("decode tokens/s", fit.estimates.decode_tokens_per_s, run.decode_tokens_per_s, ",.1f"),
        (
            # The engine's fixed overhead stands for the runtime, here the Python process
            # measured before the model was built; both sides leave it out.
            "peak memory of the run, measured as peak RSS - RSS before loading (bytes)",
            fit.memory.total_bytes - get_engine(ENGINE).fixed_overhead_bytes,
            run.peak_memory_bytes - run.baseline_memory_bytes if run.peak_memory_bytes else None,
            ",.0f",
        ),
    ]
    table = Table(
        title=f"{run.model} shape on this CPU (bf16, random weights, prompt "
        f"{run.prompt_tokens}, {run.new_tokens} new tokens; profile `{ENGINE}`, uncalibrated)"
    )
    for col in ("quantity", "predicted", "measured", "ratio"):
        table.add_column(col, justify="left" if col == "quantity" else "right")
    ratios = []
    for name, predicted, measured, fmt in rows:
        ratio = predicted / measured if measured else None
        if ratio is not None and name.endswith("(bytes)"):
            ratios.append(ratio)
        table.add_row(
            name,
            format(predicted, fmt),
            format(measured, fmt) if measured is not None else "–",
            f"{ratio:.3f}" if ratio is not None else "–",
        )
    console.print(table)
    return ratios


def record_run(run: CpuRun, path: Path | None = None) -> Path:
    """Append this run to the calibration store (default: the user's `measurements.jsonl`)."""
    measurement = Measurement(
        model=run.model,
        device=LOCAL_CPU_ID,
        devices=1,
        engine=ENGINE,
        quant="bf16",
        batch=1,
        context=run.prompt_tokens + run.new_tokens,
        prompt_tokens=run.prompt_tokens,
        decode_tokens_per_s=run.decode_tokens_per_s,
        ttft_s=run.ttft_s,
        peak_memory_bytes=run.peak_memory_bytes,
        measured_at=datetime.datetime.now(datetime.UTC),
        source=SOURCE,
    )
    return record(measurement, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Sizing accuracy: predicted against measured.")
    parser.add_argument(
        "--record",
        action="store_true",
        help="store the CPU run in the calibration store, so `llmselect fit` uses it",
    )
    parser.add_argument("--skip-gguf", action="store_true", help="only the CPU part")
    parser.add_argument("--prompt", type=int, default=128, help="prompt tokens (default 128)")
    parser.add_argument("--new", type=int, default=32, help="tokens to generate (default 32)")
    args = parser.parse_args(argv)
    if args.new < 2 or args.prompt < 1:
        parser.error("--new must be at least 2 and --prompt at least 1")

    if not args.skip_gguf:
        gguf = gguf_files()
        console.print(f"GGUF weights: mean ratio predicted / real = {statistics.mean(gguf):.4f}")
    try:
        run = run_cpu(prompt=args.prompt, new=args.new)
    except ImportError:
        console.print("transformers/torch not installed: pip install -e .[hf] for the CPU part")
        return
    memory = report_cpu(run)
    console.print(f"CPU memory: mean ratio predicted / measured = {statistics.mean(memory):.4f}")
    if args.record:
        path = record_run(run)
        console.print(
            f"recorded in {path}: engine {ENGINE} on {LOCAL_CPU_ID}, "
            f"{run.decode_tokens_per_s:.2f} tokens/s, first token in {run.ttft_s:.3f} s; "
            "`llmselect fit` on this machine is calibrated from it (`llmselect calibrate show`)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


if __name__ == "__main__":
    main()
