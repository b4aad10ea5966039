"""Sizing accuracy: predicted against measured memory and speed.

    python benchmarks/sizing_accuracy.py [--record] [--skip-gguf] [--prompt N] [--new N]
    python benchmarks/sizing_accuracy.py --device cuda [--model ID] [--engines A,B]
        [--batches 1,8] [--prompt 512] [--new 128] [--ship] [--runs-jsonl FILE]
    python benchmarks/sizing_accuracy.py --from-runs FILE      # report a saved sweep

1. Weights of real GGUF files (reference: their published sizes, data/gguf_file_sizes.yaml).
2. On this machine's CPU, a model of the catalog's HuggingFaceTB/SmolLM-135M shape with random
   weights, run by transformers in bf16 (random weights run exactly as fast as trained ones):
   weights and KV cache after generation against what torch holds, and time to first token,
   decode tokens per second and peak memory against `fit`'s estimate for the `cpu` engine on
   this machine (uncalibrated: the ratio says how far the default profile is).

`--record` stores that CPU run in the user's calibration store (the file `llmselect calibrate
show` reads), so that `llmselect fit` on this machine is calibrated from then on.

The sweep (`--device`): a catalog shape (default meta-llama/Llama-3.1-8B) with random weights on
one device, run by each engine profile transformers implements (`transformers-eager`: dynamic
cache; `transformers-compiled`: static cache and a compiled decode step) at each batch size.
Memory is torch's peak reservation plus what the process holds outside it (CUDA context, cuBLAS
workspaces, graphs). Speed is checked the way a user calibrates: each run is predicted from the
profile calibrated on the same engine's other runs (target: decode within 25%). `--ship` appends
the GPU runs, with their date and device, to src/llmselect/sizing/data/measurements.jsonl: the
measurements llmselect ships, which calibrate `fit` for that GPU wherever a user has none of
their own. `--device cpu` is a dry run of the same code on this CPU (nothing to ship).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml
from rich.console import Console
from rich.table import Table

from llmselect.catalog import ModelCard, load_builtin
from llmselect.sizing.calibration import BUILTIN_MEASUREMENTS, Measurement, calibrate, record
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
    """Peak resident set size of this process (Python and torch included) while generating, or
    since it started where the peak cannot be reset (macOS: model construction included); None
    off Unix."""
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
    """This process's peak resident set size since start, or since `_reset_peak_rss`."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:  # Linux: resettable
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB else


def _reset_peak_rss() -> bool:
    """Start the peak over (Linux 4.0+: writing 5 to clear_refs resets VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def llama_shape(model_id: str) -> dict[str, Any]:
    """A LlamaConfig's arguments for a catalog card's shape (what latency and memory depend on;
    biases and rotary settings do not move either measurably)."""
    arch = load_builtin().get(model_id).architecture
    return {
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


def _llama(shape: dict[str, Any], device: str = "cpu") -> Any:
    """A Llama of this shape with random weights, built in bf16 directly on `device` (an fp32
    copy first would hold twice the memory)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            return LlamaForCausalLM(LlamaConfig(**shape)).train(False)  # inference mode
    finally:
        torch.set_default_dtype(torch.float32)


def _generate(model: Any, ids: Any, tokens: int, **options: Any) -> tuple[float, Any, Any]:
    """Greedy generation of exactly `tokens` tokens: seconds, sequences, KV cache."""
    import torch

    start = time.perf_counter()
    out = model.generate(
        ids,
        max_new_tokens=tokens,
        min_new_tokens=tokens,
        do_sample=False,
        return_dict_in_generate=True,
        **options,
    )
    if ids.is_cuda:
        torch.cuda.synchronize()  # the last step's kernels may still be running
    seconds = time.perf_counter() - start
    # transformers 5 names the returned cache `cache`; 4.x `past_key_values`.
    return seconds, out["sequences"], out.get("cache") or out.get("past_key_values")


def _cache_bytes(cache: Any) -> int:
    """What a transformers KV cache holds: its layers' key and value tensors."""
    return sum(
        int(t.numel() * t.element_size())
        for layer in cache.layers
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None))
        if t is not None
    )


def run_cpu(model_id: str = BENCH_MODEL, prompt: int = 128, new: int = 32) -> CpuRun:
    """Generate `new` tokens after a `prompt`-token prompt, greedy, batch 1, on the CPU."""
    import gc

    import torch

    arch = load_builtin().get(model_id).architecture
    shape = llama_shape(model_id)
    torch.manual_seed(0)
    with torch.no_grad():
        # The runtime's first forward pass maps kernel code and allocator pools into memory: a
        # two-layer model of the same kind pays for that before the baseline is taken, so the
        # run's memory is the model's, as `fit` counts it (the runtime is the fixed overhead).
        tiny = {**shape, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
        tiny.update(num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=320)
        _generate(_llama(tiny), torch.randint(0, 320, (1, prompt)), 2)
    gc.collect()
    baseline = psutil.Process().memory_info().rss
    model = _llama(shape)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    # Random initialization holds temporaries that loading saved weights does not: the peak
    # starts over once the model is built, where the OS allows.
    _reset_peak_rss()
    ids = torch.randint(0, arch.vocab_size, (1, prompt))
    with torch.no_grad():
        _generate(model, ids, 2)  # warm-up: first-call allocations and kernel selection
        ttft, _, _ = _generate(model, ids, 1)
        total, sequences, cache = _generate(model, ids, new)
    kv = _cache_bytes(cache)
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
        tokens_in_cache=sequences.shape[1] - 1,  # the last token's keys and values are not stored
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


# -- sweep: engines and batch sizes on one device (a GPU, or this CPU for a dry run) ----------

SWEEP_MODEL = "meta-llama/Llama-3.1-8B"
"""The sweep's default shape: the size most users deploy first, and vLLM's nightly test model."""
SWEEP_ENGINES = ("transformers-eager", "transformers-compiled")
"""The engine profiles the sweep runs: transformers' dynamic cache, and its static cache with a
compiled decode step (what `llmselect eval` runs on CUDA)."""


@dataclass(frozen=True)
class SweepRun:
    """One timed generation of the sweep."""

    model: str
    device: str
    """Hardware profile id (`this-machine-cpu` on a CPU)."""
    device_name: str
    """What the driver calls it."""
    engine: str
    batch: int
    prompt_tokens: int
    new_tokens: int
    ttft_s: float
    decode_tokens_per_s: float
    """Per sequence, after the first token."""
    weights_bytes: int
    kv_cache_bytes: int
    peak_torch_bytes: int | None
    """Most memory torch's allocator reserved during the run (CUDA only)."""
    runtime_bytes: int | None
    """Device memory in use outside torch's allocator: CUDA context, cuBLAS, graphs."""

    @property
    def peak_memory_bytes(self) -> int | None:
        if self.peak_torch_bytes is None or self.runtime_bytes is None:
            return None
        return self.peak_torch_bytes + self.runtime_bytes


def sweep_device(device: str) -> tuple[Device, str]:
    """The hardware profile of `device` (a CUDA GPU matched by name and memory) and its name."""
    if device == "cpu":
        return local_cpu(), "this CPU"
    import torch

    from llmselect.sizing.detect import match_profile

    name = torch.cuda.get_device_name(device)
    total = torch.cuda.get_device_properties(device).total_memory
    profile = match_profile(name, total)
    if profile is None:
        raise SystemExit(f"no hardware profile matches {name!r} ({total / 2**30:.0f} GiB)")
    return profile, name


def _decode_options(engine: str, cache_length: int, device: str) -> dict[str, Any]:
    if engine == "transformers-eager":
        return {}
    options: dict[str, Any] = {"cache_implementation": "static", "max_cache_len": cache_length}
    if device == "cpu":
        # transformers compiles the step by itself only on accelerators; a CPU dry run asks.
        from transformers import CompileConfig

        config = CompileConfig()
        config._compile_all_devices = True
        options["compile_config"] = config
    return options


def run_sweep(
    model_id: str,
    engines: list[str],
    batches: list[int],
    prompt: int,
    new: int,
    device: str = "cuda",
    on_run: Callable[[SweepRun], None] | None = None,
) -> list[SweepRun]:
    """Each engine at each batch size: a warm-up (compiles the step), the first token alone,
    then `new` tokens; the model is built once with random weights. `on_run` gets each run as
    soon as it is measured (a sweep cut short by a time limit keeps the runs it finished)."""
    import gc

    import torch

    profile, name = sweep_device(device)
    cuda = device != "cpu"
    torch.manual_seed(0)
    shape = llama_shape(model_id)
    model = _llama(shape, device)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    runs = []
    for engine in engines:
        for batch in batches:
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            ids = torch.randint(0, shape["vocab_size"], (batch, prompt), device=device)
            options = _decode_options(engine, prompt + new, device)
            with torch.no_grad():
                _generate(model, ids, new, **options)  # warm-up: compiles and captures the step
                ttft, _, _ = _generate(model, ids, 1, **options)
                total, _, cache = _generate(model, ids, new, **options)
            if engine == "transformers-compiled" and not hasattr(model, "_compiled_call"):
                # transformers leaves the step it compiled on the model; without it, the timing
                # is the uncompiled path's and would calibrate the wrong profile.
                raise SystemExit("transformers did not compile the decode step on this device")
            kv = _cache_bytes(cache)
            peak_torch = runtime = None
            if cuda:
                free, total_memory = torch.cuda.mem_get_info(device)
                peak_torch = torch.cuda.max_memory_reserved(device)
                # What the process holds beyond torch's pools (a lent machine runs nothing else).
                runtime = max(0, total_memory - free - torch.cuda.memory_reserved(device))
            runs.append(
                SweepRun(
                    model=model_id,
                    device=profile.id,
                    device_name=name,
                    engine=engine,
                    batch=batch,
                    prompt_tokens=prompt,
                    new_tokens=new,
                    ttft_s=ttft,
                    decode_tokens_per_s=(new - 1) / max(total - ttft, 1e-9),
                    weights_bytes=weights,
                    kv_cache_bytes=kv,
                    peak_torch_bytes=peak_torch,
                    runtime_bytes=runtime,
                )
            )
            if on_run is not None:
                on_run(runs[-1])
            del cache
    return runs


def as_measurement(run: SweepRun) -> Measurement:
    return Measurement(
        model=run.model,
        device=run.device,
        devices=1,
        # On a CPU, `fit` sizes every transformers run with the `cpu` profile.
        engine=ENGINE if run.device == LOCAL_CPU_ID else run.engine,
        quant="bf16",
        batch=run.batch,
        context=run.prompt_tokens + run.new_tokens,
        prompt_tokens=run.prompt_tokens,
        decode_tokens_per_s=run.decode_tokens_per_s,
        ttft_s=run.ttft_s,
        peak_memory_bytes=run.peak_memory_bytes,
        measured_at=datetime.datetime.now(datetime.UTC),
        source=f"{SOURCE} on {run.device_name}",
    )


def sweep_predictions(run: SweepRun, measurements: list[Measurement]) -> tuple[Fit, Fit]:
    """`fit`'s estimate for a run with the default profile, and with the profile calibrated from
    `measurements` (the other runs of the same engine: this run is held out)."""
    catalog = load_builtin()
    card = catalog.get(run.model)
    device = local_cpu() if run.device == LOCAL_CPU_ID else find_device(run.device)
    measurement = as_measurement(run)
    base = get_engine(measurement.engine)
    tuned, _ = calibrate(base, device, measurements, catalog)

    def with_engine(engine: Any) -> Fit:
        return estimate(
            card,
            device,
            1,
            engine,
            quant="bf16",
            context=measurement.context,
            batch=run.batch,
            prompt_tokens=run.prompt_tokens,
        )

    return with_engine(base), with_engine(tuned)


def report_sweep(runs: list[SweepRun]) -> list[float]:
    """Print predicted against measured for each run; return the calibrated decode errors
    (each run predicted from the profile calibrated on the same engine's other runs)."""
    first = runs[0]
    title = (
        f"{first.model} shape on {first.device_name} (bf16, random weights, prompt "
        f"{first.prompt_tokens}, {first.new_tokens} new tokens)"
    )
    memory = Table(title=f"memory (GB, predicted / measured): {title}")
    speed = Table(title="speed: default profile, calibrated on the engine's other runs, measured")
    for table, columns in (
        (memory, ("engine", "batch", "weights", "KV cache", "peak", "ratio")),
        (speed, ("engine", "batch", "TTFT s", "decode tok/s", "calibrated error")),
    ):
        for col in columns:
            table.add_column(col, justify="left" if col == "engine" else "right")
    errors = []
    for run in runs:
        others = [as_measurement(r) for r in runs if r.engine == run.engine and r is not run]
        default, tuned = sweep_predictions(run, others)
        predicted = default.memory
        peak = run.peak_memory_bytes
        memory.add_row(
            run.engine,
            str(run.batch),
            f"{predicted.weights_bytes / 1e9:.2f} / {run.weights_bytes / 1e9:.2f}",
            f"{predicted.kv_cache_bytes / 1e9:.3f} / {run.kv_cache_bytes / 1e9:.3f}",
            f"{predicted.total_bytes / 1e9:.2f} / "
            + (f"{peak / 1e9:.2f}" if peak is not None else "–"),
            f"{predicted.total_bytes / peak:.3f}" if peak else "–",
        )
        measured = run.decode_tokens_per_s
        error = tuned.estimates.decode_tokens_per_s / measured - 1 if others else None
        if error is not None:
            errors.append(error)
        calibrated = f"{tuned.estimates.decode_tokens_per_s:.1f}" if others else "–"
        speed.add_row(
            run.engine,
            str(run.batch),
            f"{default.estimates.ttft_s:.3f} / {run.ttft_s:.3f}",
            f"{default.estimates.decode_tokens_per_s:.1f} / {calibrated} / {measured:.1f}",
            f"{error:+.1%}" if error is not None else "–",
        )
    console.print(memory)
    console.print(speed)
    return errors


def ship(runs: list[SweepRun], path: Path = BUILTIN_MEASUREMENTS) -> Path:
    """Append the runs to the measurements llmselect ships (commit the file with its date)."""
    if any(r.device == LOCAL_CPU_ID for r in runs):
        raise SystemExit("--ship takes GPU runs: this machine's CPU is no profile others have")
    for run in runs:
        record(as_measurement(run), path)
    return path


def save_run(run: SweepRun, path: Path) -> None:
    """Append one run, every field, as a JSON line (what `--from-runs` reports from)."""
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(dataclasses.asdict(run)) + "\n")


def load_runs(path: Path) -> list[SweepRun]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [SweepRun(**json.loads(line)) for line in lines if line.strip()]


def _progress(run: SweepRun) -> None:
    peak = f"{run.peak_memory_bytes / 1e9:.2f} GB" if run.peak_memory_bytes else "-"
    print(
        f"run {run.model} {run.engine} batch {run.batch}: TTFT {run.ttft_s:.4f} s, decode "
        f"{run.decode_tokens_per_s:.1f} tok/s per sequence, peak {peak}",
        flush=True,
    )


def _counts(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n.strip()]


def _report_errors(errors: list[float]) -> None:
    if errors:
        worst = max(errors, key=abs)
        console.print(
            f"calibrated decode: mean |error| {statistics.mean(map(abs, errors)):.1%}, "
            f"worst {worst:+.1%} (target within 25%)"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Sizing accuracy: predicted against measured.")
    parser.add_argument(
        "--record",
        action="store_true",
        help="store the CPU run in the calibration store, so `llmselect fit` uses it",
    )
    parser.add_argument("--skip-gguf", action="store_true", help="only the CPU part")
    parser.add_argument("--prompt", type=int, help="prompt tokens (default 128; sweep 512)")
    parser.add_argument("--new", type=int, help="tokens to generate (default 32; sweep 128)")
    sweep = parser.add_argument_group("sweep (engines x batch sizes on one device)")
    sweep.add_argument("--device", help="run the sweep on this torch device: cuda, cuda:1, cpu")
    sweep.add_argument("--model", default=SWEEP_MODEL, help=f"catalog shape ({SWEEP_MODEL})")
    sweep.add_argument("--engines", default=",".join(SWEEP_ENGINES), help="profiles to run")
    sweep.add_argument("--batches", default="1,8", help="batch sizes (default 1,8)")
    sweep.add_argument(
        "--ship",
        action="store_true",
        help=f"append the GPU runs to {BUILTIN_MEASUREMENTS.name}, shipped with llmselect",
    )
    sweep.add_argument(
        "--runs-jsonl", type=Path, help="also append each run, every field, to this file"
    )
    sweep.add_argument(
        "--from-runs",
        type=Path,
        help="report a sweep saved with --runs-jsonl (on any machine; runs nothing)",
    )
    args = parser.parse_args(argv)
    if args.from_runs:
        runs = load_runs(args.from_runs)
        for model in dict.fromkeys(r.model for r in runs):
            _report_errors(report_sweep([r for r in runs if r.model == model]))
        return
    prompt = args.prompt or (512 if args.device else 128)
    new = args.new or (128 if args.device else 32)
    if new < 2 or prompt < 1:
        parser.error("--new must be at least 2 and --prompt at least 1")

    if args.device:
        engines = [e for e in args.engines.split(",") if e]
        unknown = set(engines) - set(SWEEP_ENGINES)
        if unknown:
            parser.error(f"--engines: {', '.join(sorted(unknown))}; choose from {SWEEP_ENGINES}")

        def on_run(run: SweepRun) -> None:
            _progress(run)
            if args.runs_jsonl:
                save_run(run, args.runs_jsonl)
            if args.ship:  # each run as it ends: a sweep cut short keeps what it finished
                ship([run])

        batches = _counts(args.batches)
        runs = run_sweep(args.model, engines, batches, prompt, new, args.device, on_run)
        if args.ship:
            console.print(f"shipped {len(runs)} runs in {BUILTIN_MEASUREMENTS}", markup=False)
        _report_errors(report_sweep(runs))
        return

    if not args.skip_gguf:
        gguf = gguf_files()
        console.print(f"GGUF weights: mean ratio predicted / real = {statistics.mean(gguf):.4f}")
    try:
        run = run_cpu(prompt=prompt, new=new)
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
