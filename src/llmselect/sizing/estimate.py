"""Memory and latency of one model on one piece of hardware: the `fit` answer.

Memory (per device under tensor parallelism): weights, the cache of each kind of layer, the
prefill workspace and logits, and the engine's fixed overhead plus allocator slack. The cache of
an attention layer grows with the tokens it keeps (all of them, or a window or chunk for sliding
and chunked layers where the engine frees the rest); multi-head latent attention keeps one
compressed latent plus the rotary key per token; a Mamba-2 or Gated DeltaNet layer keeps a state
of fixed size per sequence. Latency: prefill is compute-bound (2 x active parameters x prompt
tokens, plus attention); each decode step is memory-bound (the weights the batch touches and the
cache read once) until the batch is large enough to make it compute-bound. A mixture-of-experts
step reads the experts its batch routes to, which grows with the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel

from llmselect.catalog import Architecture, ModelCard, ParamCount, count_params
from llmselect.catalog.params import LayerWeights, all_layers
from llmselect.catalog.schema import ATTENTION_KINDS, MLP_KINDS, LayerKind
from llmselect.errors import UsageError
from llmselect.sizing.engines import Engine, EngineLookup
from llmselect.sizing.hardware import Device
from llmselect.sizing.quant import (
    PPL_INCREASE_7B,
    decode_weight_bytes,
    normalize,
    weight_bytes,
    weight_split,
)

KV_BYTES = {"fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "fp32": 4.0}
KV_KINDS = ATTENTION_KINDS | {LayerKind.hybrid_mamba2}
"""Kinds of layer that keep keys and values per token."""


class CacheShare(BaseModel):
    """The cache of the layers of one kind."""

    kind: str
    """full, sliding, chunked, latent (multi-head latent attention), mamba2, gated-deltanet."""
    layers: int
    tokens: int
    """Tokens kept per sequence; 0 for a recurrent state, whose size does not grow."""
    bytes_per_token: int
    """Per token, over these layers (0 for a recurrent state)."""
    state_bytes: int = 0
    """The fixed state of these layers per sequence (Mamba-2, Gated DeltaNet), per device."""
    bytes: int
    """Per device, for the whole batch: tokens x bytes_per_token + state_bytes, times batch."""


class Memory(BaseModel):
    weights_bytes: int
    kv_cache_bytes: int
    kv_cache_by_kind: list[CacheShare] = []
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
    """`memory`, `compute` or `launch` (the engine's fixed cost per layer outweighs both): what
    limits a decode step at this batch."""
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
    params: int
    active_params: int
    """Parameters used per token (all of them for a dense model)."""
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


def _state_dtype_bytes(kv_dtype: str) -> float:
    # Recurrent states stay at the model's precision; an fp8 KV cache does not apply to them.
    return 4.0 if kv_dtype == "fp32" else 2.0


def attention_bytes_per_token(
    arch: Architecture, kv_dtype: str = "fp16", kind: LayerKind = LayerKind.full
) -> int:
    """Cache bytes one token adds to one attention layer of `kind`."""
    if arch.uses_mla:
        width = (arch.kv_lora_rank or 0) + (arch.qk_rope_head_dim or 0)
    else:
        head_dim, kv_heads = arch.attention_shape(kind)
        width = 2 * kv_heads * head_dim
    return round(width * KV_BYTES[kv_dtype])


def state_bytes(arch: Architecture, kind: LayerKind, kv_dtype: str = "fp16") -> int:
    """The fixed state one sequence keeps in one recurrent layer: the convolution window and
    the recurrent matrix (as transformers' cache holds them)."""
    if kind in (LayerKind.mamba2, LayerKind.hybrid_mamba2):
        inner = (arch.mamba_n_heads or 0) * (arch.mamba_d_head or 0)
        d_state = arch.mamba_d_state or 0
        conv = (inner + 2 * arch.mamba_n_groups * d_state) * arch.mamba_d_conv
        values = conv + inner * d_state
    elif kind == LayerKind.gated_deltanet:
        key_dim = (arch.linear_num_key_heads or 0) * (arch.linear_key_head_dim or 0)
        value_heads, value_dim = arch.linear_num_value_heads or 0, arch.linear_value_head_dim or 0
        conv = (2 * key_dim + value_heads * value_dim) * arch.linear_conv_kernel_dim
        values = conv + value_heads * (arch.linear_key_head_dim or 0) * value_dim
    else:
        return 0
    return round(values * _state_dtype_bytes(kv_dtype))


def kv_bytes_per_token(arch: Architecture, kv_dtype: str = "fp16") -> int:
    """Cache bytes of one token across all attention layers (when every one keeps it)."""
    return sum(
        attention_bytes_per_token(arch, kv_dtype, kind)
        for i, kind in enumerate(arch.layer_kinds())
        if kind in KV_KINDS and not arch.kv_shared(i)
    )


def _token_limit(arch: Architecture, kind: LayerKind, engine: Engine) -> int | None:
    """The most tokens a layer of `kind` keeps per sequence under `engine`: its window or chunk
    where the engine frees the rest; None when it keeps the whole context."""
    window = {LayerKind.sliding: arch.sliding_window, LayerKind.chunked: arch.attention_chunk_size}
    limit = window.get(kind)
    mode = engine.sliding_window_cache
    if not limit or mode == "context":
        return None
    if mode == "window-1":
        limit -= 1
    elif mode == "window+chunk":
        limit += engine.prefill_chunk or 0
    return limit


class CacheLayout:
    """The layers of a model grouped by what their cache keeps, worked out once so that the
    cache at any context is a short sum (`fit` asks at many contexts and batches)."""

    def __init__(self, arch: Architecture, engine: Engine, kv_dtype: str = "fp16") -> None:
        self.arch, self.engine = arch, engine
        counts: dict[LayerKind, int] = {}
        # Layers from `own` on reuse an earlier layer's cache (`Architecture.kv_shared`); MLP
        # blocks keep nothing.
        own = max(0, (arch.num_hidden_layers or 0) - arch.num_kv_shared_layers)
        for kind in arch.layer_kinds()[:own]:
            if kind not in MLP_KINDS:
                counts[kind] = counts.get(kind, 0) + 1
        self.kinds = list(counts.items())
        self.per_token = {kind: attention_bytes_per_token(arch, kv_dtype, kind) for kind in counts}
        self.states = {
            kind: state_bytes(arch, kind, kv_dtype) for kind in counts
        }  # a recurrent layer's fixed state; 0 for attention layers
        # Per kind: its label, layers, bytes a token adds and fixed state over those layers, and
        # the most tokens it keeps (None: all; 0: a recurrent state, which does not grow).
        self._groups: list[tuple[str, int, int, int, int | None]] = []
        for kind, layers in self.kinds:
            keys = kind in KV_KINDS
            self._groups.append(
                (
                    "latent" if keys and arch.uses_mla else kind.value,
                    layers,
                    layers * self.per_token[kind] if keys else 0,
                    layers * self.states[kind],
                    _token_limit(arch, kind, engine) if keys else 0,
                )
            )

    def sizes(self, context: int) -> list[tuple[str, int, int, int, int]]:
        """`at` as plain numbers, (kind, layers, tokens, bytes_per_token, state_bytes) per
        kind, for the bisections that ask thousands of times and read only the total."""
        return [
            (label, layers, context if limit is None else min(context, limit), per_token, state)
            for label, layers, per_token, state, limit in self._groups
        ]

    def at(self, context: int) -> list[CacheShare]:
        """The cache of one sequence at `context` (bytes for batch 1, one device)."""
        return [
            CacheShare(
                kind=label,
                layers=layers,
                tokens=tokens,
                bytes_per_token=per_token,
                state_bytes=state,
                bytes=per_token * tokens + state,
            )
            for label, layers, tokens, per_token, state in self.sizes(context)
        ]


def cache_shares(
    arch: Architecture, context: int, engine: Engine, kv_dtype: str = "fp16"
) -> list[CacheShare]:
    """The cache of one sequence at `context`, by kind of layer (bytes for batch 1, 1 device)."""
    return CacheLayout(arch, engine, kv_dtype).at(context)


class _MemoryModel:
    """The arithmetic of `memory` on plain numbers. `estimate` bisects on `total` for the
    largest context and batch (some 30 probes each): building pydantic objects at every probe
    was most of the time `select` spent sizing the catalog. `memory` reads the same numbers,
    so the bisection and the figures shown cannot disagree."""

    def __init__(
        self,
        arch: Architecture,
        devices: int,
        engine: Engine,
        layout: CacheLayout,
        total_weight_bytes: int,
    ) -> None:
        self.devices, self.engine, self.layout = devices, engine, layout
        self.weights = total_weight_bytes / devices
        h, inter = arch.hidden_size or 0, arch.intermediate_size or 0
        # Hidden states, MLP intermediates (gate and up) of one prefill chunk, at 16 bits.
        self.width = (4 * h + 2 * inter) * 2
        self.heads = (arch.num_attention_heads or 0) / devices
        self.vocab = arch.vocab_size or 0

    def parts(
        self, context: int, batch: int
    ) -> tuple[list[tuple[tuple[str, int, int, int], int, int]], int, float, float, float]:
        """Per kind of cache ((kind, layers, tokens, bytes_per_token), bytes, state_bytes) for
        the batch on one device; then kv, activations, overhead and the total, per device."""
        devices = self.devices
        shares = [
            (
                (label, layers, tokens, per_token),
                round((per_token * tokens + state) * batch / devices),
                round(state * batch / devices),
            )
            for label, layers, tokens, per_token, state in self.layout.sizes(context)
        ]
        kv = sum(share[1] for share in shares)
        longest = max((share[0][2] for share in shares), default=0)
        return shares, kv, *self._rest(context, batch, kv, longest)

    def total(self, context: int, batch: int) -> int:
        """The total of `parts`, without the tuples of each kind that the bisections, which
        ask thousands of times, never read."""
        kv = longest = 0
        for _, _, tokens, per_token, state in self.layout.sizes(context):
            kv += round((per_token * tokens + state) * batch / self.devices)
            longest = max(longest, tokens)
        return round(self._rest(context, batch, kv, longest)[2])

    def _rest(self, context: int, batch: int, kv: int, longest: int) -> tuple[float, float, float]:
        """Activations, overhead and the total per device, from the cache's bytes and the most
        tokens a layer keeps."""
        engine, devices = self.engine, self.devices
        chunk = min(context, engine.prefill_chunk or context)
        act = batch * chunk * self.width / devices
        if engine.attention == "eager":
            act += batch * self.heads * chunk * longest * 2
        logit_rows = batch * (chunk if engine.logits_all_positions else 1)
        act += logit_rows * self.vocab * 4
        used = self.weights + kv + act
        overhead = engine.fixed_overhead_bytes + engine.slack_fraction * used
        return act, overhead, used + overhead


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
    layout: CacheLayout | None = None,
) -> Memory:
    """Per-device memory. `total_weight_bytes` and `layout` save working them out again for
    each call."""
    if total_weight_bytes is None:
        total_weight_bytes = weight_bytes(arch, quant)
    layout = layout or CacheLayout(arch, engine, kv_dtype)
    model = _MemoryModel(arch, devices, engine, layout, total_weight_bytes)
    return _memory(model, device, context, batch)


def _memory(model: _MemoryModel, device: Device, context: int, batch: int) -> Memory:
    shares, kv, act, overhead, total = model.parts(context, batch)
    return Memory(
        weights_bytes=round(model.weights),
        kv_cache_bytes=round(kv),
        kv_cache_by_kind=[
            CacheShare(
                kind=label,
                layers=layers,
                tokens=tokens,
                bytes_per_token=per_token,
                state_bytes=state,
                bytes=size,
            )
            for (label, layers, tokens, per_token), size, state in shares
        ],
        activations_bytes=round(act),
        overhead_bytes=round(overhead),
        total_bytes=round(total),
        available_bytes=device.memory_bytes,
        devices=model.devices,
    )


def _fits(m: Memory) -> bool:
    return m.total_bytes <= m.available_bytes


def _largest(total: Callable[[int], int], available: int, upper: int) -> int:
    """Largest n in [1, upper] with total(n) <= available; 0 if none.

    `total` never falls as n grows (more tokens or sequences never take less memory), so the
    answer is one boundary. A straight line through total(1) and total(upper) guesses it (the
    memory model is linear in the batch and piecewise linear in the context), a galloping
    search from the guess brackets it, and bisection finishes: some 5 probes where bisection
    alone took 20 (`select` asks twice for each precision of each model)."""
    first = total(1)
    if first > available:
        return 0
    last = total(upper)
    if last <= available:
        return upper
    low, high = 1, upper - 1  # total(low) fits, total(high + 1) does not
    guess = min(max(1 + (available - first) * (upper - 1) // (last - first), low), high)
    step = 1
    if total(guess) <= available:
        low = guess
        while low < high:
            probe = min(low + step, high)
            if total(probe) > available:
                high = probe - 1
                break
            low, step = probe, step * 2
    else:
        high = guess - 1
        while low < high:
            probe = max(high - step + 1, low + 1)
            if total(probe) <= available:
                low = probe
                break
            high, step = probe - 1, step * 2
    while low < high:
        mid = (low + high + 1) // 2
        if total(mid) <= available:
            low = mid
        else:
            high = mid - 1
    return low


def prefill_passes(engine: Engine, batch: int, prompt: int) -> int:
    """Forward passes a batch's prefill takes: one, or one per chunk of its prompt tokens."""
    chunk = engine.prefill_chunk
    return -(-batch * prompt // chunk) if chunk else 1


def require_sizable(card: ModelCard) -> None:
    """Sizing needs the whole architecture; say which fields a card lacks, and where to get them."""
    missing = card.architecture.missing_fields()
    if missing:
        raise UsageError(
            f"cannot size {card.id}: its architecture lacks {', '.join(missing)}",
            hint="import its config.json (`llmselect catalog import FOLDER_OR_REPO`); the card "
            "says why the catalog leaves the architecture incomplete",
        )


class Shapes:
    """What sizing reads from an architecture whatever the precision: its layers' weights, its
    parameter count, its attention work and cache layout. Worked out once per model when
    several precisions are tried (`select` tries up to nine for each model of the catalog),
    and passed to `estimate`."""

    def __init__(self, arch: Architecture) -> None:
        self.arch = arch
        self.layers: list[LayerWeights] = all_layers(arch)
        self.counted: ParamCount = count_params(arch, self.layers)
        self._attention: dict[int, float] = {}
        self._layouts: dict[tuple[int, str], tuple[Engine, CacheLayout]] = {}
        self._splits: dict[str, tuple[int, int]] = {}

    def weight_split(self, scheme: str) -> tuple[int, int]:
        """`weight_split(arch, scheme)`, worked out once per scheme (the release format's and
        each scheme's are asked for by `schemes_for_card`, then again by `estimate`)."""
        if scheme not in self._splits:
            self._splits[scheme] = weight_split(self.arch, scheme, self.layers)
        return self._splits[scheme]

    def attention_flops(self, prompt: int) -> float:
        """`prefill_attention_flops(arch, prompt)`, worked out once per prompt length."""
        if prompt not in self._attention:
            self._attention[prompt] = prefill_attention_flops(self.arch, prompt)
        return self._attention[prompt]

    def layout(self, engine: Engine, kv_dtype: str) -> CacheLayout:
        """`CacheLayout(arch, engine, kv_dtype)`, made once per engine (the same object: the
        engine is kept with its layout, so its id cannot be another's)."""
        key = (id(engine), kv_dtype)
        if key not in self._layouts:
            self._layouts[key] = (engine, CacheLayout(self.arch, engine, kv_dtype))
        return self._layouts[key][1]


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
    shapes: Shapes | None = None,
) -> Fit:
    """`shapes`: `Shapes(card.architecture)` when the caller has it already."""
    arch = card.architecture
    require_sizable(card)
    shapes = shapes or Shapes(arch)
    scheme = normalize(quant)
    split = shapes.weight_split(scheme)
    stored = sum(split)
    layout = shapes.layout(engine, kv_dtype)
    model = _MemoryModel(arch, devices, engine, layout, stored)
    mem = _memory(model, device, context, batch)

    warnings = []
    if arch.context_length and context > arch.context_length:
        warnings.append(
            f"context {context:,} is beyond the model's {arch.context_length:,} positions"
        )
    windowed = {LayerKind.sliding, LayerKind.chunked} & set(arch.layer_kinds())
    if windowed and engine.sliding_window_cache == "context":
        warnings.append(
            f"{engine.id} keeps the full context in the KV cache of sliding-window layers"
        )
    available = device.memory_bytes
    max_context = _largest(
        lambda c: model.total(c, batch), available, max(arch.context_length or 0, context)
    )
    max_batch = _largest(lambda b: model.total(context, b), available, 4096)

    counted = shapes.counted
    active = counted.active
    prompt = prompt_tokens if prompt_tokens is not None else max(1, context // 2)
    # The weights' matrix products run at the precision of the scheme; attention in 16 bits.
    peak_flops = matmul_flops(device, scheme) * devices * engine.compute_efficiency
    attention_peak = device.bf16_flops * devices * engine.compute_efficiency
    bandwidth = device.memory_bandwidth * devices * engine.bandwidth_efficiency
    attention_flops = shapes.attention_flops(prompt)
    # Each forward pass of the prefill (one, or one per chunk of the batch's prompt tokens) also
    # pays the engine's fixed cost per layer: launches and host work, the floor of a short prompt.
    layers = arch.num_hidden_layers or 1
    passes = prefill_passes(engine, batch, prompt)
    ttft = batch * (2 * active * prompt / peak_flops + attention_flops / attention_peak)
    ttft += passes * layers * engine.prefill_overhead_per_layer_s

    # A decode step reads the weights the batch touches once, and each sequence's cache (on
    # average half-way through its generation; a window at most; a recurrent state whole).
    weights_read = decode_weight_bytes(arch, scheme, 1, split)
    step_weights = decode_weight_bytes(arch, scheme, batch, split)
    halfway = (prompt + context) / 2
    kv_read = batch * sum(
        per_token * min(tokens, halfway) + state
        for _, _, tokens, per_token, state in layout.sizes(context)
    )
    memory_time = (step_weights + kv_read) / bandwidth
    compute_time = batch * (
        2 * active / peak_flops + attention_flops / max(prompt, 1) / attention_peak
    )
    # Reading and computing overlap; the per-layer fixed cost of a step (launch-bound engines)
    # comes on top of both, whatever the model's width.
    launches = layers * engine.decode_overhead_per_layer_s
    step = max(memory_time, compute_time) + launches
    bound = "compute" if compute_time > memory_time else "memory"
    if launches > max(memory_time, compute_time):
        bound = "launch"  # the fixed cost per layer outweighs reading and computing
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
        params=counted.total,
        active_params=active,
        memory=mem,
        fits=_fits(mem),
        margin_bytes=mem.available_bytes - mem.total_bytes,
        max_context=max_context,
        max_batch=max_batch,
        estimates=Estimates(
            ttft_s=ttft,
            decode_tokens_per_s=1 / step,
            total_tokens_per_s=total_tps,
            decode_bound=bound,
            knee_batch=knee,
            cost_per_million_tokens=cost,
        ),
        ppl_increase_7b=PPL_INCREASE_7B.get(scheme),
        offload=offload,
        warnings=warnings,
    )


def prefill_attention_flops(arch: Architecture, prompt: int) -> float:
    """Attention's own work over a prompt (QK^T and AV): every query against the keys it sees,
    all earlier ones in a full layer, at most a window in a sliding one, its chunk in a chunked
    one. Recurrent layers have no quadratic term."""
    heads, hd = arch.num_attention_heads or 0, arch.head_dim or 0
    pairs = 0.0
    for kind in arch.layer_kinds():
        if kind in (LayerKind.full, LayerKind.hybrid_mamba2):
            pairs += prompt * prompt / 2
        elif kind == LayerKind.sliding and arch.sliding_window:
            w = min(prompt, arch.sliding_window)
            pairs += prompt * w - w * w / 2
        elif kind == LayerKind.chunked and arch.attention_chunk_size:
            pairs += prompt * min(prompt, arch.attention_chunk_size) / 2
    return 4 * heads * hd * pairs


HOST_PROFILE = "CPU-DDR4-DUAL"
"""The system memory assumed behind a GPU when layers are offloaded (a dual-channel desktop)."""


@cache  # looked up once: `select` offloads hundreds of models
def _host_bandwidth() -> float:
    from llmselect.sizing.engines import get_engine
    from llmselect.sizing.hardware import find_device

    return find_device(HOST_PROFILE).memory_bandwidth * get_engine("cpu").bandwidth_efficiency


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
    layers = arch.num_hidden_layers or 1
    per_layer = (mem.weights_bytes + mem.kv_cache_bytes) / layers
    fixed = mem.total_bytes - mem.weights_bytes - mem.kv_cache_bytes
    gpu_layers = max(0, min(layers, int((mem.available_bytes - fixed) // per_layer)))
    host_bandwidth = _host_bandwidth()
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


def schemes_for_card(
    card: ModelCard,
    device: Device,
    allowed: list[str] | None = None,
    *,
    shapes: Shapes | None = None,
) -> list[str]:
    """Schemes to try for `card`, best quality first, among `allowed` (default: all the device
    runs). A model released below 16 bits (gpt-oss in MXFP4, DeepSeek-V3 in block FP8) starts
    at its release format, which stands for any allowed scheme at least as wide: higher
    precisions only cost memory without restoring what was never there. `shapes`:
    `Shapes(card.architecture)` when the caller has it already."""
    schemes = [normalize(s) for s in allowed] if allowed else schemes_for(device)
    if not card.weights_format:
        return schemes
    shapes = shapes or Shapes(card.architecture)
    native = normalize(card.weights_format)
    size = sum(shapes.weight_split(native))
    smaller = [s for s in schemes if s != native and sum(shapes.weight_split(s)) < size]
    if len(smaller) == len(schemes) and native not in schemes:
        return schemes  # every allowed scheme is narrower than the release: no room for it
    return [native, *smaller]


def matmul_flops(device: Device, scheme: str) -> float:
    """Dense throughput of the precision the weights' matrix products run in. fp8 and int8 are
    weights and activations both quantized (W8A8, as vLLM runs them), so those tensor cores do
    the work; every other scheme (int4, AWQ/GPTQ, GGUF types) is dequantized to 16 bits."""
    if scheme == "fp8" and device.fp8_flops:
        return device.fp8_flops
    if scheme == "int8" and device.int8_ops:
        return device.int8_ops
    return device.bf16_flops


@dataclass(frozen=True)
class FitChoice:
    """`fit`: the precision asked for, or the best that fits (`chosen`), and every one tried."""

    fit: Fit
    tried: list[Fit]
    chosen: bool

    def to_json(self) -> dict[str, Any]:
        return self.fit.model_dump(mode="json") | {"tried": [t.quant for t in self.tried]}


@dataclass(frozen=True)
class FitGrid:
    """`fit --table`: every precision at a few context lengths."""

    fits: list[Fit]

    def to_json(self) -> list[dict[str, Any]]:
        return [f.model_dump(mode="json") for f in self.fits]


def choose_fit(
    card: ModelCard,
    engines: EngineLookup,
    devices: int,
    *,
    quant: str | None,
    context: int,
    batch: int,
    prompt_tokens: int | None,
    kv_dtype: str,
    price_per_device_hour: float | None,
) -> FitChoice:
    """The precision asked for, or the best one that fits; says which calibration it used."""
    device = engines.device
    if quant:
        fit = estimate(
            card,
            device,
            devices,
            engines(quant),
            quant=quant,
            context=context,
            batch=batch,
            prompt_tokens=prompt_tokens,
            kv_dtype=kv_dtype,
            price_per_device_hour=price_per_device_hour,
        )
        tried = [fit]
    else:
        fit, tried = best_fit(
            card,
            device,
            devices,
            engines,
            context=context,
            batch=batch,
            prompt_tokens=prompt_tokens,
            kv_dtype=kv_dtype,
            price_per_device_hour=price_per_device_hour,
        )
    calibration = engines.calibrations.get(fit.engine)
    if calibration:
        samples = max(calibration.decode_samples, calibration.prefill_samples)
        whose = " shipped with llmselect" if calibration.shipped else ""
        fit.warnings.append(f"{fit.engine} on {device.id} calibrated from {samples} run(s){whose}")
    return FitChoice(fit, tried, chosen=quant is None)


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
    for scheme in schemes_for_card(card, device):
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
    for scheme in schemes_for_card(card, device):
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
