"""How many bytes a model's weights take at a precision or quantization.

Plain dtypes store every weight alike. GGUF file types mix tensor types: llama.cpp's
`llama_tensor_get_type` (src/llama-quant.cpp) keeps the output matrix at Q6_K and gives some
layers' value and down projections more bits ("_M" and "_L" variants). Block sizes come from
ggml's own table (`GGML_BLOCKS`). AWQ/GPTQ store linear layers at 4 bits with a 16-bit
scale and a 4-bit zero point per group of 128, and keep embeddings and the LM head at 16 bits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import cache

from llmselect.catalog import Architecture
from llmselect.catalog.params import LayerWeights, all_layers, outside_layers
from llmselect.errors import UsageError

DTYPE_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
GROUP = 128
GROUPED_4BIT = 4 / 8 + (16 + 4) / 8 / GROUP  # bytes per weight: 4-bit value, scale and zero


# (weights per block, bytes per block) of the ggml types sizing uses, as ggml's table has them
# (`gguf.GGML_QUANT_SIZES`, which a test compares with this): importing `gguf` imports numpy,
# a tenth of a second of `llmselect select`. Other types are read from the package.
GGML_BLOCKS = {
    "F32": (1, 4),
    "F16": (1, 2),
    "BF16": (1, 2),
    "Q4_0": (32, 18),
    "Q4_1": (32, 20),
    "Q5_0": (32, 22),
    "Q5_1": (32, 24),
    "Q8_0": (32, 34),
    "Q2_K": (256, 84),
    "Q3_K": (256, 110),
    "Q4_K": (256, 144),
    "Q5_K": (256, 176),
    "Q6_K": (256, 210),
    "MXFP4": (32, 17),
    "NVFP4": (64, 36),
}


@cache
def ggml_bytes_per_weight(type_name: str) -> float:
    if type_name in GGML_BLOCKS:
        block, size = GGML_BLOCKS[type_name]
        return size / block
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[type_name]]
    return size / block


def linear_weights(arch: Architecture) -> int:
    """Weights of every matrix inside the decoder layers (what 4-bit schemes quantize)."""
    total = 0
    for layer in all_layers(arch):  # raises IncompleteArchitecture with the missing fields
        routed = layer.experts * (layer.expert_up + layer.expert_down)
        total += layer.q + layer.k + layer.v + layer.o + layer.mixer + layer.up + layer.down
        total += routed
    return total


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

# Formats a checkpoint is released in (not a runtime choice of llama.cpp's): bytes per weight
# as stored, from ggml's block table where ggml has the type.
#   mxfp4: OCP microscaling FP4, 32 E2M1 values and one E8M0 scale (4.25 bits); gpt-oss ships
#          its routed experts so and everything else in bf16.
#   nvfp4: NVIDIA FP4, 16 E2M1 values and one E4M3 scale (4.5 bits) for every matrix in the
#          layers; embeddings and LM head in bf16 (TensorRT Model Optimizer checkpoints).
#   fp8-block: e4m3 matrices with one fp32 scale per 128x128 block, embeddings and LM head in
#          bf16 (DeepSeek-V3 and Kimi K2 as released).
RELEASE_FORMATS = ("mxfp4", "nvfp4", "fp8-block")
FP8_BLOCK = 1 + 4 / (128 * 128)

QUANTS = sorted([*DTYPE_BYTES, *(q.lower() for q in _GGUF), "awq", "gptq", *RELEASE_FORMATS])


def normalize(quant: str) -> str:
    key = quant.strip().lower().replace("-", "_")
    if key in DTYPE_BYTES or key in ("awq", "gptq", "mxfp4", "nvfp4"):
        return key
    if key in ("fp8_block", "fp8block"):
        return "fp8-block"
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


def _uniform_sizes(scheme: str) -> tuple[float, float, float]:
    """Bytes per weight of a non-GGUF scheme: layer matrices, routed experts, vectors."""
    if scheme in DTYPE_BYTES:
        size = DTYPE_BYTES[scheme]
        return size, size, size
    if scheme == "mxfp4":  # only the routed experts are stored in MXFP4
        return 2.0, ggml_bytes_per_weight("MXFP4"), 2.0
    if scheme == "nvfp4":
        four = ggml_bytes_per_weight("NVFP4")
        return four, four, 2.0
    if scheme == "fp8-block":
        return FP8_BLOCK, FP8_BLOCK, 2.0
    return GROUPED_4BIT, GROUPED_4BIT, 2.0  # awq, gptq


ROLES = ("q", "k", "v", "o", "up", "down", "mixer")


def _role_types(scheme: str, index: int, layers: int, mla: bool) -> tuple[str, ...]:
    """The ggml type of each role of layer `index` under a GGUF file type."""
    base, rules = _GGUF[scheme]
    types = []
    for role in ROLES:
        rule = rules.get(role)
        if role == "v" and mla:
            rule = None  # llama.cpp's attn_v rule names a tensor latent attention does not have
        types.append(rule(index, layers) if rule else base)
    return tuple(types)


@cache  # one list per file type and depth: sizing the catalog asks for ~800 of them
def _all_role_types(scheme: str, layers: int, mla: bool) -> list[tuple[str, ...]]:
    """`_role_types` of every layer of a model `layers` deep."""
    return [_role_types(scheme, i, layers, mla) for i in range(layers)]


def _layer_bytes(
    layer: LayerWeights, scheme: str, role_types: tuple[str, ...] | None
) -> tuple[float, float]:
    """Bytes of one layer's weights outside and inside its routed experts; `role_types` gives
    each role's ggml type for a GGUF file type."""
    matrices = layer.q + layer.k + layer.v + layer.o + layer.mixer + layer.up + layer.down
    routed = layer.experts * (layer.expert_up + layer.expert_down)
    if role_types is None:
        matrix, expert, vector = _uniform_sizes(scheme)
        expert_vectors = layer.experts * layer.expert_small
        return matrices * matrix + layer.small * vector, routed * expert + expert_vectors * vector
    size = dict(zip(ROLES, map(ggml_bytes_per_weight, role_types), strict=True))
    dense = sum(getattr(layer, role) * size[role] for role in ROLES) + layer.small * 4.0
    experts = layer.experts * (layer.expert_up * size["up"] + layer.expert_down * size["down"])
    experts += layer.experts * layer.expert_small * 4.0
    return dense, experts


def _embedding_bytes(arch: Architecture, scheme: str, *, lookups_only: bool = False) -> float:
    """Bytes of the embedding tables; `lookups_only`: those a decode step reads one row of (not
    the input embedding when the LM head shares it)."""
    embedding = outside_layers(arch)[0]
    if lookups_only and arch.tie_word_embeddings:
        embedding -= (arch.vocab_size or 0) * (arch.hidden_size or 0)
    if scheme in DTYPE_BYTES:
        return embedding * DTYPE_BYTES[scheme]
    if scheme in _GGUF:
        return embedding * ggml_bytes_per_weight(_GGUF[scheme][0])
    return embedding * 2.0


def weight_split(
    arch: Architecture, quant: str, layers: list[LayerWeights] | None = None
) -> tuple[int, int]:
    """Bytes of all weights stored at `quant`: outside the routed experts, and inside them.
    `layers` is `all_layers(arch)` when the caller has it already."""
    scheme = normalize(quant)
    layers = layers if layers is not None else all_layers(arch)
    _, head, small = outside_layers(arch)
    outside = _embedding_bytes(arch, scheme)
    if scheme in DTYPE_BYTES:
        outside += (head + small) * DTYPE_BYTES[scheme]
    elif scheme in ("awq", "gptq", *RELEASE_FORMATS):
        outside += (head + small) * 2.0
    else:
        base = _GGUF[scheme][0]
        outside += small * 4.0
        if head:
            # The output matrix stays at Q6_K unless the base type is already 8-bit or wider.
            head_type = base if base in ("Q8_0", "F16", "BF16") else "Q6_K"
            outside += head * ggml_bytes_per_weight(head_type)
    dense, experts = outside, 0.0
    # Alike layers are counted once; llama.cpp gives some layers' roles more bits, so under a
    # GGUF file type a layer is alike another only with the same types too. `all_layers` gives
    # alike layers one shared object: counting by identity first spares hashing every layer's
    # fields (`select` sizes the whole catalog), and equal objects are merged after, in order.
    n, mla = len(layers), arch.uses_mla
    roles = _all_role_types(scheme, n, mla) if scheme in _GGUF else [None] * n
    by_identity = Counter(zip(map(id, layers), roles, strict=True))
    objects = {id(layer): layer for layer in layers}
    alike: Counter[tuple[LayerWeights, tuple[str, ...] | None]] = Counter()
    for (identity, role_types), count in by_identity.items():
        alike[(objects[identity], role_types)] += count
    for (layer, role_types), count in alike.items():
        in_dense, in_experts = _layer_bytes(layer, scheme, role_types)
        dense += count * in_dense
        experts += count * in_experts
    return round(dense), round(experts)


def weight_bytes(arch: Architecture, quant: str) -> int:
    """Bytes of all weights stored at `quant` (a dtype, a GGUF file type, awq or gptq, or a
    release format)."""
    dense, experts = weight_split(arch, quant)
    return dense + experts


def distinct_experts(experts: int, used: int, batch: int) -> float:
    """Expected number of different experts a batch of `batch` tokens routes to in one layer,
    each token choosing `used` of `experts`, routing taken as uniform and independent."""
    if experts <= 0:
        return 0.0
    return experts * (1 - (1 - used / experts) ** max(1, batch))


def decode_weight_bytes(
    arch: Architecture, quant: str, batch: int = 1, split: tuple[int, int] | None = None
) -> int:
    """Bytes of weights read by one decode step of `batch` sequences: every dense weight but
    the input embedding (a lookup reads one row per token, unless the LM head shares it), and
    for mixture-of-experts only the experts the batch touches (more as the batch grows).
    `split` is `weight_split(arch, quant)` when the caller has it already."""
    scheme = normalize(quant)
    dense, experts = split or weight_split(arch, scheme)
    dense -= round(_embedding_bytes(arch, scheme, lookups_only=True))
    if not arch.is_moe or not experts:
        return dense + experts
    total, used = arch.num_local_experts or 1, arch.num_experts_per_tok or 1
    return round(dense + experts * distinct_experts(total, used, batch) / total)


def active_weight_bytes(arch: Architecture, quant: str) -> int:
    """Bytes read per decoded token at batch 1: for mixture-of-experts, only the routed experts."""
    return decode_weight_bytes(arch, quant, 1)
