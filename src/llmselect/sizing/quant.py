"""How many bytes a model's weights take at a precision or quantization.

Plain dtypes store every weight alike. GGUF file types mix tensor types: llama.cpp's
`llama_tensor_get_type` (src/llama-quant.cpp) keeps the output matrix at Q6_K and gives some
layers' value and down projections more bits ("_M" and "_L" variants). Block sizes come from
the `gguf` package (ggml's own table). AWQ/GPTQ store linear layers at 4 bits with a 16-bit
scale and a 4-bit zero point per group of 128, and keep embeddings and the LM head at 16 bits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from llmselect.catalog import Architecture, count_params
from llmselect.errors import UsageError

DTYPE_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
GROUP = 128
GROUPED_4BIT = 4 / 8 + (16 + 4) / 8 / GROUP  # bytes per weight: 4-bit value, scale and zero


@cache
def ggml_bytes_per_weight(type_name: str) -> float:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[type_name]]
    return size / block


@dataclass(frozen=True)
class Tensors:
    """Weight counts of one model, by role (per layer for the per-layer roles)."""

    layers: int
    q: int
    k: int
    v: int
    o: int
    up: int  # gate and up projections, all experts
    down: int  # all experts
    embedding: int
    output: int  # 0 when tied to the embedding
    other: int  # norms, biases, router, positions: kept at 32 bits in GGUF


def tensors(arch: Architecture) -> Tensors:
    counted = count_params(arch)  # raises IncompleteArchitecture with the missing fields
    h = arch.hidden_size or 0
    heads, kv, hd = arch.num_attention_heads or 0, arch.num_key_value_heads or 0, arch.head_dim or 0
    inter, vocab, layers = arch.intermediate_size or 0, arch.vocab_size or 0, arch.num_hidden_layers
    experts = arch.num_local_experts if arch.is_moe else 1
    experts = experts or 1
    up = (2 if arch.mlp == "gated" else 1) * h * inter * experts
    down = inter * h * experts
    q, k, o = h * heads * hd, h * kv * hd, heads * hd * h
    output = 0 if arch.tie_word_embeddings else vocab * h
    linear = (layers or 0) * (q + 2 * k + o + up + down) + vocab * h + output
    return Tensors(
        layers=layers or 0,
        q=q,
        k=k,
        v=k,
        o=o,
        up=up,
        down=down,
        embedding=vocab * h,
        output=output,
        other=counted.total - linear,
    )


def _more_bits(i: int, n: int) -> bool:
    """llama.cpp's use_more_bits: the first and last eighth of layers, and every third between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


# For each GGUF file type: the base tensor type, and overrides by role and layer.
Rule = Callable[[int, int], str]
_GGUF: dict[str, tuple[str, dict[str, Rule]]] = {
    "Q2_K": (
        "Q2_K",
        {"v": lambda i, n: "Q4_K", "down": lambda i, n: "Q3_K", "o": lambda i, n: "Q3_K"},
    ),
    "Q3_K_S": ("Q3_K", {}),
    "Q3_K_M": (
        "Q3_K",
        {
            "v": lambda i, n: "Q5_K" if i < 2 else "Q4_K",
            "down": lambda i, n: (
                "Q5_K" if i < n // 16 else ("Q4_K" if _more_bits(i, n) else "Q3_K")
            ),
            "o": lambda i, n: "Q4_K",
        },
    ),
    "Q3_K_L": (
        "Q3_K",
        {"v": lambda i, n: "Q5_K", "down": lambda i, n: "Q5_K", "o": lambda i, n: "Q5_K"},
    ),
    "Q4_0": ("Q4_0", {}),
    "Q4_1": ("Q4_1", {}),
    "Q4_K_S": (
        "Q4_K",
        {
            "v": lambda i, n: "Q5_K" if i < 4 else "Q4_K",
            "down": lambda i, n: "Q5_K" if i < n // 8 else "Q4_K",
        },
    ),
    "Q4_K_M": (
        "Q4_K",
        {
            "v": lambda i, n: "Q6_K" if _more_bits(i, n) else "Q4_K",
            "down": lambda i, n: "Q6_K" if _more_bits(i, n) else "Q4_K",
        },
    ),
    "Q5_0": ("Q5_0", {}),
    "Q5_1": ("Q5_1", {}),
    "Q5_K_S": ("Q5_K", {}),
    "Q5_K_M": (
        "Q5_K",
        {
            "v": lambda i, n: "Q6_K" if _more_bits(i, n) else "Q5_K",
            "down": lambda i, n: "Q6_K" if _more_bits(i, n) else "Q5_K",
        },
    ),
    "Q6_K": ("Q6_K", {}),
    "Q8_0": ("Q8_0", {}),
    "F16": ("F16", {}),
    "BF16": ("BF16", {}),
}

# Perplexity increase over F16 on wikitext for LLaMA-7B, from llama.cpp's quantize tool
# (examples/quantize/quantize.cpp, QUANT_OPTIONS, 2023): the quality a quantization trades.
PPL_INCREASE_7B = {
    "Q2_K": 0.8698,
    "Q3_K_S": 0.5505,
    "Q3_K_M": 0.2437,
    "Q3_K_L": 0.1803,
    "Q4_0": 0.2499,
    "Q4_1": 0.1846,
    "Q4_K_S": 0.1149,
    "Q4_K_M": 0.0535,
    "Q5_0": 0.0796,
    "Q5_1": 0.0415,
    "Q5_K_S": 0.0353,
    "Q5_K_M": 0.0142,
    "Q6_K": 0.0044,
    "Q8_0": 0.0004,
    "F16": 0.0,
    "bf16": 0.0,
    "fp16": 0.0,
    "fp32": 0.0,
}
PPL_SOURCE = "llama.cpp examples/quantize/quantize.cpp (QUANT_OPTIONS, 2023): +ppl @ LLaMA-7B"

QUANTS = sorted([*DTYPE_BYTES, *(q.lower() for q in _GGUF), "awq", "gptq"])


def normalize(quant: str) -> str:
    key = quant.strip().lower().replace("-", "_")
    if key in DTYPE_BYTES or key in ("awq", "gptq"):
        return key
    if key.upper() in _GGUF:
        return key.upper()
    raise UsageError(
        f"unknown precision or quantization {quant!r}", hint="choose one of " + ", ".join(QUANTS)
    )


_GGUF_DTYPES = {"ALL_F32": "fp32", "F32": "fp32"}


def gguf_file_scheme(file_type: str | None) -> str | None:
    """The sizing precision of a GGUF file type (`Q4_K_M`, `ALL_F32`), or None if unknown."""
    if not file_type:
        return None
    try:
        return normalize(_GGUF_DTYPES.get(file_type.upper(), file_type))
    except UsageError:
        return None


def weight_bytes(arch: Architecture, quant: str) -> int:
    """Bytes of all weights stored at `quant` (a dtype, a GGUF file type, awq or gptq)."""
    scheme = normalize(quant)
    t = tensors(arch)
    per_layer = t.q + t.k + t.v + t.o + t.up + t.down
    if scheme in DTYPE_BYTES:
        total = t.layers * per_layer + t.embedding + t.output + t.other
        return round(total * DTYPE_BYTES[scheme])
    if scheme in ("awq", "gptq"):
        linear = t.layers * per_layer * GROUPED_4BIT
        return round(linear + (t.embedding + t.output) * 2 + t.other * 2)

    base, rules = _GGUF[scheme]
    size = ggml_bytes_per_weight
    nbytes = t.other * 4.0 + t.embedding * size(base)
    if t.output:
        # The output matrix stays at Q6_K unless the base type is already 8-bit or wider.
        output_type = base if base in ("Q8_0", "F16", "BF16") else "Q6_K"
        nbytes += t.output * size(output_type)
    for i in range(t.layers):
        for role in ("q", "k", "v", "o", "up", "down"):
            rule = rules.get(role)
            nbytes += getattr(t, role) * size(rule(i, t.layers) if rule else base)
    return round(nbytes)


def active_weight_bytes(arch: Architecture, quant: str) -> int:
    """Bytes read per decoded token: for mixture-of-experts, only the routed experts."""
    full = weight_bytes(arch, quant)
    if not arch.is_moe:
        return full
    counted = count_params(arch)
    return round(full * counted.active / counted.total)
