"""Parameter count from architecture fields.

Counts the weights a Hugging Face checkpoint stores: embeddings, each decoder layer (attention
or a recurrent mixer, MLP or experts, norms, biases), the final norm and the LM head. Layers
may differ (sliding and full attention, Mamba-2 or Gated DeltaNet layers between attention
layers, dense layers before the MoE ones), so each layer is counted on its own. Buffers
(rotary tables, DeepSeek's routing-correction bias) are not parameters. Checking the result
against a model's stated count catches typos in catalog data.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from llmselect.catalog.schema import ATTENTION_KINDS, MLP_KINDS, Architecture, LayerKind


class IncompleteArchitecture(ValueError):
    """The architecture lacks a field the count needs."""


@dataclass(frozen=True)
class LayerWeights:
    """The weights of one decoder layer, by role (what quantization rules tell apart)."""

    kind: LayerKind
    q: int
    k: int
    v: int
    o: int
    """Attention projections. MLA: q is the query path (compressed or not), k the shared
    key/value down-projection, v the up-projection of the latent to keys and values."""
    mixer: int
    """Matrices of a recurrent layer (Mamba-2 or Gated DeltaNet input and output projections)."""
    up: int
    down: int
    """Always-active MLP: the dense MLP, or a MoE layer's shared expert (gate and up in `up`)."""
    experts: int
    """Routed experts in this layer (0 when dense)."""
    used: int
    """Experts each token uses."""
    expert_up: int
    expert_down: int
    expert_small: int
    """Per routed expert: gate and up, down, and its biases."""
    small: int
    """Norms, biases, router, sinks, convolution filters, state parameters: vectors that stay at
    high precision when the matrices are quantized."""

    @property
    def total(self) -> int:
        per_expert = self.expert_up + self.expert_down + self.expert_small
        return self.dense + self.experts * per_expert

    @property
    def active(self) -> int:
        per_expert = self.expert_up + self.expert_down + self.expert_small
        return self.dense + self.used * per_expert

    @property
    def dense(self) -> int:
        """Everything but the routed experts."""
        return self.q + self.k + self.v + self.o + self.mixer + self.up + self.down + self.small


@dataclass(frozen=True)
class ParamCount:
    total: int
    active: int
    """Parameters used per token: equal to `total` for dense models."""
    embedding: int
    per_layer: int
    per_layer_active: int
    """Mean over the layers (layers may differ)."""
    routed_expert_params: int
    """All routed experts' weights, over every MoE layer (0 for dense models)."""
    moe_layers: int


def _norm_params(kind: str, width: int) -> int:
    return {"rmsnorm": width, "layernorm": 2 * width, "layernorm-no-bias": width, "none": 0}[kind]


def require_complete(arch: Architecture) -> None:
    missing = arch.missing_fields()
    if missing:
        raise IncompleteArchitecture(f"cannot count parameters: missing {', '.join(missing)}")


def _attention(
    arch: Architecture, kind: LayerKind = LayerKind.full, shared: bool = False
) -> tuple[int, int, int, int, int]:
    """q, k, v, o and the small parameters of one attention layer of `kind`; `shared`: it
    reuses an earlier layer's keys and values (no projections of its own)."""
    h, heads = arch.hidden_size or 0, arch.num_attention_heads or 0
    hd, kv = arch.attention_shape(kind)
    small = heads if arch.attention_sinks else 0
    if arch.kv_lora_rank is not None:
        rope, nope = arch.qk_rope_head_dim or 0, arch.qk_nope_head_dim or 0
        vd = arch.v_head_dim or 0
        latent = arch.kv_lora_rank
        if arch.q_lora_rank:
            q = h * arch.q_lora_rank + arch.q_lora_rank * heads * (nope + rope)
            small += _norm_params(arch.norm, arch.q_lora_rank)
        else:
            q = h * heads * (nope + rope)
        k = h * (latent + rope)
        v = latent * heads * (nope + vd)
        small += _norm_params(arch.norm, latent)
        return q, k, v, heads * vd * h, small
    q_width, kv_width = heads * hd, kv * hd
    q = h * q_width * (2 if arch.attention_output_gate else 1)
    k = 0 if shared else h * kv_width
    v = 0 if shared or (arch.attention_k_eq_v and kind == LayerKind.full) else h * kv_width
    o = q_width * h
    if arch.attention_bias in ("qkv", "all"):
        small += q_width + (k + v) // h
    if arch.attention_bias == "all":
        small += h
    if arch.qk_norm == "per-head":
        small += _norm_params(arch.norm, hd) * (1 if shared else 2)
    elif arch.qk_norm == "full":
        small += _norm_params(arch.norm, q_width) + _norm_params(arch.norm, kv_width)
    return q, k, v, o, small


def _mamba2(arch: Architecture) -> tuple[int, int]:
    """Matrices and small parameters of one Mamba-2 layer (transformers' Mamba2Mixer)."""
    h = arch.hidden_size or 0
    heads, d_head = arch.mamba_n_heads or 0, arch.mamba_d_head or 0
    d_state = arch.mamba_d_state or 0
    inner, groups = heads * d_head, arch.mamba_n_groups
    conv_channels = inner + 2 * groups * d_state
    in_proj = h * (2 * inner + 2 * groups * d_state + heads)  # z, x, B, C and dt
    small = conv_channels * arch.mamba_d_conv + 3 * heads  # conv filter; dt_bias, A_log, D
    if arch.mamba_conv_bias:
        small += conv_channels
    if arch.mamba_norm:
        small += inner
    return in_proj + inner * h, small


def _gated_deltanet(arch: Architecture) -> tuple[int, int]:
    """Matrices and small parameters of one Gated DeltaNet layer (Qwen3-Next, Qwen3.5)."""
    h = arch.hidden_size or 0
    key_dim = (arch.linear_num_key_heads or 0) * (arch.linear_key_head_dim or 0)
    value_heads = arch.linear_num_value_heads or 0
    value_dim = value_heads * (arch.linear_value_head_dim or 0)
    # q, k, v and the output gate z; the beta and decay inputs (one per value head each).
    in_proj = h * (2 * key_dim + 2 * value_dim) + h * 2 * value_heads
    conv = (2 * key_dim + value_dim) * arch.linear_conv_kernel_dim
    small = conv + 2 * value_heads + (arch.linear_value_head_dim or 0)  # dt_bias, A_log; norm
    return in_proj + value_dim * h, small


def layer_weights(arch: Architecture, index: int, kind: LayerKind) -> LayerWeights:
    """The weights of layer `index` (from 0), which is of `kind`."""
    return _layer_weights(arch, kind, moe=arch.is_moe_layer(index), own=arch.mlp_in_own_blocks)


def _layer_weights(
    arch: Architecture, kind: LayerKind, *, moe: bool, own: bool, shared: bool = False
) -> LayerWeights:
    """The weights of a layer of `kind`, routed to experts or not; `own`: MLPs are blocks of
    their own (Nemotron-H); `shared`: it reuses an earlier layer's cache (Gemma 4)."""
    h = arch.hidden_size or 0
    q = k = v = o = mixer = small = 0
    if kind in ATTENTION_KINDS:
        q, k, v, o, small = _attention(arch, kind, shared)
    elif kind == LayerKind.mamba2:
        mixer, small = _mamba2(arch)
    elif kind == LayerKind.hybrid_mamba2:  # both mixers read the same input (Falcon-H1)
        q, k, v, o, small = _attention(arch)
        mixer, mamba_small = _mamba2(arch)
        small += mamba_small
    elif kind == LayerKind.gated_deltanet:
        mixer, small = _gated_deltanet(arch)
    small += arch.norms_per_layer * _norm_params(arch.norm, h)
    if arch.hidden_size_per_layer_input:  # the per-layer input's gate, projection and norm
        mixer += 2 * h * arch.hidden_size_per_layer_input
        small += _norm_params(arch.norm, h)
    if own and kind not in MLP_KINDS:
        return LayerWeights(kind, q, k, v, o, mixer, 0, 0, 0, 0, 0, 0, 0, small)

    gated = arch.mlp == "gated"
    matrices = 3 if gated else 2
    experts = used = expert_up = expert_down = expert_small = 0
    if moe:
        experts, used = arch.num_local_experts or 0, arch.num_experts_per_tok or 0
        width = arch.moe_intermediate_size or arch.intermediate_size or 0
        expert_up, expert_down = (matrices - 1) * h * width, width * h
        if arch.mlp_bias:
            expert_small = (matrices - 1) * width + h
        small += h * experts + (experts if arch.router_bias else 0)
        width = arch.shared_expert_intermediate_size or 0
        if arch.moe_beside_mlp:
            # The dense MLP runs beside the experts; the router has a scale per channel and
            # per expert, and three more norms frame the two paths.
            width = arch.intermediate_size or 0
            small += h + experts + 3 * _norm_params(arch.norm, h)
        up, down = (matrices - 1) * h * width, width * h
        if width and arch.shared_expert_gate:
            small += h
    else:
        width = (arch.intermediate_size or 0) * (2 if shared and arch.double_wide_mlp else 1)
        up, down = (matrices - 1) * h * width, width * h
        if arch.mlp_bias:
            small += (matrices - 1) * width + h
    return LayerWeights(
        kind=kind,
        q=q,
        k=k,
        v=v,
        o=o,
        mixer=mixer,
        up=up,
        down=down,
        experts=experts,
        used=used,
        expert_up=expert_up,
        expert_down=expert_down,
        expert_small=expert_small,
        small=small,
    )


def all_layers(arch: Architecture) -> list[LayerWeights]:
    """Every layer's weights, in order. Layers of one kind and routing are alike, so each such
    shape is counted once."""
    require_complete(arch)
    own, routed = arch.mlp_in_own_blocks, arch.is_moe
    shapes: dict[tuple[LayerKind, bool, bool], LayerWeights] = {}
    layers = []
    first_moe, step = arch.first_k_dense_replace, arch.moe_layer_step
    # The rules of Architecture.is_moe_layer and .kv_shared, with the properties they read
    # taken once rather than per layer (`select` lists the layers of the whole catalog).
    first_shared = (arch.num_hidden_layers or 0) - arch.num_kv_shared_layers
    for i, kind in enumerate(arch.layer_kinds()):
        if own:
            moe = routed and kind == LayerKind.moe
        else:
            moe = routed and i >= first_moe and (i + 1) % step == 0
        key = (kind, moe, i >= first_shared)
        if key not in shapes:
            shapes[key] = _layer_weights(arch, kind, moe=moe, own=own, shared=key[2])
        layers.append(shapes[key])
    return layers


def outside_layers(arch: Architecture) -> tuple[int, int, int]:
    """Embedding, LM head (0 when tied) and the small parameters outside the layers."""
    h, vocab = arch.hidden_size or 0, arch.vocab_size or 0
    embedding = vocab * h
    head = 0 if arch.tie_word_embeddings else vocab * h
    small = _norm_params(arch.norm, h)  # the final norm
    per_layer = arch.hidden_size_per_layer_input
    if per_layer:
        # A second table looked up per token (an embedding: one row read per token), and the
        # projection of the hidden state onto every layer's slice, with its norm.
        width = per_layer * (arch.num_hidden_layers or 0)
        embedding += (arch.vocab_size_per_layer_input or vocab) * width
        small += h * width + _norm_params(arch.norm, per_layer)
    if arch.lm_head_bias:
        small += vocab
    if arch.position_embedding == "learned" and arch.context_length:
        small += arch.context_length * h
    if arch.embedding_norm:
        small += _norm_params(arch.norm, h)
    return embedding, head, small


def count_params(arch: Architecture, layers: list[LayerWeights] | None = None) -> ParamCount:
    """`layers`: `all_layers(arch)` when the caller has it already."""
    layers = all_layers(arch) if layers is None else layers
    # Alike layers are one shared object in `all_layers`: counting by identity spares hashing
    # every field of every layer, and the sums below come out the same either way.
    objects = {id(layer): layer for layer in layers}
    alike = [(objects[i], n) for i, n in Counter(map(id, layers)).items()]
    embedding, head, small = outside_layers(arch)
    outside = embedding + head + small
    in_layers = sum(n * layer.total for layer, n in alike)
    in_layers_active = sum(n * layer.active for layer, n in alike)
    routed = sum(n * (layer.total - layer.dense) for layer, n in alike)
    count = max(1, len(layers))
    return ParamCount(
        total=outside + in_layers,
        active=outside + in_layers_active,
        embedding=embedding,
        per_layer=round(in_layers / count),
        per_layer_active=round(in_layers_active / count),
        routed_expert_params=routed,
        moe_layers=sum(n for layer, n in alike if layer.experts),
    )
