"""Memory and latency of one model on one piece of hardware: the `fit` answer.

Memory (per device under tensor parallelism): weights, KV cache (layers x KV heads x head dim x
tokens x batch x bytes, keys and values), the prefill workspace and logits, and the engine's
fixed overhead plus allocator slack. Latency: prefill is compute-bound (2 x active parameters x
prompt tokens, plus attention); each decode step is memory-bound (the active weights and the KV
cache read once) until the batch is large enough to make it compute-bound.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from llmselect.catalog import Architecture, ModelCard, count_params
from llmselect.sizing.engines import Engine
from llmselect.sizing.hardware import Device
from llmselect.sizing.quant import PPL_INCREASE_7B, active_weight_bytes, normalize, weight_bytes

KV_BYTES = {"fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "fp32": 4.0}


class Memory(BaseModel):
    weights_bytes: int
    kv_cache_bytes: int
    activations_bytes: int
    overhead_bytes: int
    total_bytes: int
    """Per device."""
    available_bytes: int
    """Per device."""
    devices: int


class Estimates(BaseModel):
    ttft_s: float
    """Time to first token: the prefill of one full batch of prompts."""
    decode_tokens_per_s: float
    """Tokens per second for one sequence while the batch decodes."""
    total_tokens_per_s: float
    """Tokens per second across the batch."""
    decode_bound: str
    """`memory` or `compute`: what limits a decode step at this batch."""
    knee_batch: int
    """Batch size past which decoding becomes compute-bound."""
    cost_per_million_tokens: float | None = None


class Offload(BaseModel):
    """llama.cpp can keep some layers in system RAM when the model does not fit (`-ngl`)."""

    gpu_layers: int
    layers: int
    host_bytes: int
    """Weights and KV cache of the layers left in system RAM."""
    decode_tokens_per_s: float
    """Per sequence, with the host layers read at system-memory bandwidth."""
    host_bandwidth: float


class Fit(BaseModel):
    model: str
    hardware: str
    quant: str
    engine: str
    context: int
    batch: int
    model_context: int | None
    """The model's own maximum context (positions)."""
    memory: Memory
    fits: bool
    margin_bytes: int
    """Free memory per device (negative: missing)."""
    max_context: int
    """Largest context that fits at this batch (0 when even one token does not)."""
    max_batch: int
    """Largest batch that fits at this context."""
    estimates: Estimates
    ppl_increase_7b: float | None
    """What the quantization trades: perplexity increase measured on LLaMA-7B (llama.cpp)."""
    offload: Offload | None = None
    """For llama.cpp on a GPU, when the model does not fit: how many layers do."""
    warnings: list[str]


def kv_bytes_per_token(arch: Architecture, kv_dtype: str = "fp16") -> int:
    """Keys and values of one token across all layers."""
    layers = arch.num_hidden_layers or 0
    kv = (arch.num_key_value_heads or 0) * (arch.head_dim or 0)
    return round(2 * layers * kv * KV_BYTES[kv_dtype])


def _kv_tokens(arch: Architecture, context: int, engine: Engine) -> int:
    if arch.sliding_window and engine.honors_sliding_window:
        return min(context, arch.sliding_window)
    return context


def memory(
    arch: Architecture,
    quant: str,
    device: Device,
    devices: int,
    engine: Engine,
    context: int,
    batch: int,
    kv_dtype: str = "fp16",
    *,
    total_weight_bytes: int | None = None,
) -> Memory:
    """Per-device memory. `total_weight_bytes` saves recounting the weights for each call."""
    if total_weight_bytes is None:
        total_weight_bytes = weight_bytes(arch, quant)
    weights = total_weight_bytes / devices
    kv = kv_bytes_per_token(arch, kv_dtype) * _kv_tokens(arch, context, engine) * batch / devices
    chunk = min(context, engine.prefill_chunk or context)
    h, inter = arch.hidden_size or 0, arch.intermediate_size or 0
    # Hidden states, MLP intermediates (gate and up) of one prefill chunk, at 16 bits.
    act = batch * chunk * (4 * h + 2 * inter) * 2 / devices
    if engine.attention == "eager":
        heads = (arch.num_attention_heads or 0) / devices
        act += batch * heads * chunk * _kv_tokens(arch, context, engine) * 2
    logit_rows = batch * (chunk if engine.logits_all_positions else 1)
    act += logit_rows * (arch.vocab_size or 0) * 4
    used = weights + kv + act
    overhead = engine.fixed_overhead_bytes + engine.slack_fraction * used
    return Memory(
        weights_bytes=round(weights),
        kv_cache_bytes=round(kv),
        activations_bytes=round(act),
        overhead_bytes=round(overhead),
        total_bytes=round(used + overhead),
        available_bytes=device.memory_bytes,
        devices=devices,
    )


def _fits(m: Memory) -> bool:
    return m.total_bytes <= m.available_bytes


def _largest(fits_at: Callable[[int], bool], upper: int) -> int:
    """Largest n in [1, upper] with fits_at(n) true, by bisection; 0 if none."""
    if not fits_at(1):
        return 0
    low, high = 1, upper
    while low < high:
        mid = (low + high + 1) // 2
        if fits_at(mid):
            low = mid
        else:
            high = mid - 1
    return low


def estimate(
    card: ModelCard,
    device: Device,
    devices: int,
    engine: Engine,
    *,
    quant: str,
    context: int,
    batch: int,
    prompt_tokens: int | None = None,
    kv_dtype: str = "fp16",
    price_per_device_hour: float | None = None,
) -> Fit:
    arch = card.architecture
    scheme = normalize(quant)
    stored = weight_bytes(arch, scheme)
    mem = memory(
        arch, scheme, device, devices, engine, context, batch, kv_dtype, total_weight_bytes=stored
    )

    def at(ctx: int, b: int) -> bool:
        m = memory(
            arch, scheme, device, devices, engine, ctx, b, kv_dtype, total_weight_bytes=stored
        )
        return _fits(m)

    warnings = []
    if arch.context_length and context > arch.context_length:
        warnings.append(
            f"context {context:,} is beyond the model's {arch.context_length:,} positions"
        )
    if arch.sliding_window and not engine.honors_sliding_window:
        warnings.append(f"{engine.id} keeps the full context in the KV cache (no sliding window)")
    max_context = _largest(lambda c: at(c, batch), max(arch.context_length or 0, context))
    max_batch = _largest(lambda b: at(context, b), 4096)

    counted = count_params(arch)
    active = counted.active
    prompt = prompt_tokens if prompt_tokens is not None else max(1, context // 2)
    # The weights' matrix products run at the precision of the scheme; attention in 16 bits.
    peak_flops = matmul_flops(device, scheme) * devices * engine.compute_efficiency
    attention_peak = device.bf16_flops * devices * engine.compute_efficiency
    bandwidth = device.memory_bandwidth * devices * engine.bandwidth_efficiency
    layers, heads, hd = arch.num_hidden_layers or 0, arch.num_attention_heads or 0, arch.head_dim
    # Causal attention over the prompt: QK^T and AV, half the square each.
    attention_flops = 2 * layers * heads * (hd or 0) * prompt * prompt
    ttft = batch * (2 * active * prompt / peak_flops + attention_flops / attention_peak)

    # A decode step reads the active weights once for the whole batch, and each sequence's KV
    # cache (on average half-way through its generation).
    weights_read = active_weight_bytes(arch, scheme)
    kv_full = kv_bytes_per_token(arch, kv_dtype) * _kv_tokens(arch, context, engine) * batch
    kv_read = kv_full * (prompt + context) / (2 * context)
    memory_time = (weights_read + kv_read) / bandwidth
    compute_time = batch * (
        2 * active / peak_flops + attention_flops / max(prompt, 1) / attention_peak
    )
    step = max(memory_time, compute_time)
    knee = max(1, int(weights_read / bandwidth / (2 * active / peak_flops)))
    total_tps = batch / step
    cost = None
    if price_per_device_hour is not None:
        cost = price_per_device_hour * devices / 3600 / total_tps * 1_000_000
    offload = None
    if not _fits(mem) and engine.id == "llama.cpp" and device.kind == "gpu":
        offload = _offload(arch, mem, device, devices, engine, weights_read, kv_read, step)
    return Fit(
        model=card.id,
        hardware=f"{devices}x {device.id}" if devices > 1 else device.id,
        quant=scheme,
        engine=engine.id,
        context=context,
        batch=batch,
        model_context=arch.context_length,
        memory=mem,
        fits=_fits(mem),
        margin_bytes=mem.available_bytes - mem.total_bytes,
        max_context=max_context,
        max_batch=max_batch,
        estimates=Estimates(
            ttft_s=ttft,
            decode_tokens_per_s=1 / step,
            total_tokens_per_s=total_tps,
            decode_bound="compute" if compute_time > memory_time else "memory",
            knee_batch=knee,
            cost_per_million_tokens=cost,
        ),
        ppl_increase_7b=PPL_INCREASE_7B.get(scheme),
        offload=offload,
        warnings=warnings,
    )


HOST_PROFILE = "CPU-DDR4-DUAL"
"""The system memory assumed behind a GPU when layers are offloaded (a dual-channel desktop)."""


def _offload(
    arch: Architecture,
    mem: Memory,
    device: Device,
    devices: int,
    engine: Engine,
    weights_read: float,
    kv_read: float,
    gpu_step: float,
) -> Offload:
    from llmselect.sizing.engines import get_engine
    from llmselect.sizing.hardware import find_device

    layers = arch.num_hidden_layers or 1
    per_layer = (mem.weights_bytes + mem.kv_cache_bytes) / layers
    fixed = mem.total_bytes - mem.weights_bytes - mem.kv_cache_bytes
    gpu_layers = max(0, min(layers, int((mem.available_bytes - fixed) // per_layer)))
    host = find_device(HOST_PROFILE)
    host_bandwidth = host.memory_bandwidth * get_engine("cpu").bandwidth_efficiency
    on_host = (layers - gpu_layers) / layers
    # Decode reads the GPU layers at GPU speed and the host layers at system-memory speed.
    step = gpu_step * (1 - on_host) + (weights_read + kv_read) * on_host / host_bandwidth
    return Offload(
        gpu_layers=gpu_layers,
        layers=layers,
        host_bytes=round(per_layer * (layers - gpu_layers) * devices),
        decode_tokens_per_s=1 / step,
        host_bandwidth=host_bandwidth,
    )


PREFERENCE = ["bf16", "fp8", "int8", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K"]
"""Precisions tried, best quality first, when the user names none."""


def schemes_for(device: Device) -> list[str]:
    """`PREFERENCE` without fp8 and int8 on devices that have no such tensor cores."""
    lacking = {s for s, ok in (("fp8", device.fp8_flops), ("int8", device.int8_ops)) if not ok}
    return [s for s in PREFERENCE if s not in lacking]


def matmul_flops(device: Device, scheme: str) -> float:
    """Dense throughput of the precision the weights' matrix products run in. fp8 and int8 are
    weights and activations both quantized (W8A8, as vLLM runs them), so those tensor cores do
    the work; every other scheme (int4, AWQ/GPTQ, GGUF types) is dequantized to 16 bits."""
    if scheme == "fp8" and device.fp8_flops:
        return device.fp8_flops
    if scheme == "int8" and device.int8_ops:
        return device.int8_ops
    return device.bf16_flops


def default_engine_id(quant: str, device: Device) -> str:
    if device.kind == "cpu":
        return "cpu"
    if normalize(quant).isupper():  # GGUF file types are upper case
        return "llama.cpp"
    return "vllm"


def best_fit(
    card: ModelCard,
    device: Device,
    devices: int,
    engine_for: Callable[[str], Engine],
    *,
    context: int,
    batch: int,
    prompt_tokens: int | None = None,
    kv_dtype: str = "fp16",
    price_per_device_hour: float | None = None,
) -> tuple[Fit, list[Fit]]:
    """The highest-precision scheme that fits, and every scheme tried (best quality first)."""
    tried: list[Fit] = []
    for scheme in schemes_for(device):
        fit = estimate(
            card,
            device,
            devices,
            engine_for(scheme),
            quant=scheme,
            context=context,
            batch=batch,
            prompt_tokens=prompt_tokens,
            kv_dtype=kv_dtype,
            price_per_device_hour=price_per_device_hour,
        )
        tried.append(fit)
        if fit.fits:
            return fit, tried
    return tried[-1], tried


GRID_CONTEXTS = (2048, 8192, 32768, 131072)


def fit_grid(
    card: ModelCard,
    device: Device,
    devices: int,
    engine_for: Callable[[str], Engine],
    batch: int = 1,
    kv_dtype: str = "fp16",
) -> list[Fit]:
    """Every precision at a few context lengths (up to the model's own), for one table."""
    limit = card.architecture.context_length or GRID_CONTEXTS[-1]
    contexts = sorted({c for c in GRID_CONTEXTS if c < limit} | {limit})
    fits = []
    for scheme in schemes_for(device):
        for context in contexts:
            fits.append(
                estimate(
                    card,
                    device,
                    devices,
                    engine_for(scheme),
                    quant=scheme,
                    context=context,
                    batch=batch,
                    kv_dtype=kv_dtype,
                )
            )
    return fits
