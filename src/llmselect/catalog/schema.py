"""The catalog's data model: one `ModelCard` per model, plain typed data.

Field names follow Hugging Face `config.json` where one exists. Every fact group carries its
source in `ModelCard.sources` (a URL or a document name).
"""

from __future__ import annotations

import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

REPO_ID = r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$"
"""A Hugging Face repo id (`org/name`) or a bare local name."""
LICENSE_ID = r"^[a-z0-9][a-z0-9._+\-]{0,99}( (and|or) [a-z0-9][a-z0-9._+\-]{0,99}){0,5}$"
"""An SPDX id or a Hub license id, lower case (`apache-2.0`, `llama2`), or a short SPDX-style
expression of them (`apache-2.0 or mit`)."""


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a catalog file must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=False)


class Kind(StrEnum):
    base = "base"
    instruct = "instruct"
    chat = "chat"
    code = "code"


class LayerKind(StrEnum):
    """What mixes tokens in one decoder layer; it decides that layer's cache."""

    full = "full"
    """Attention over the whole context."""
    sliding = "sliding"
    """Attention over the last `sliding_window` tokens (Mistral-7B v0.1, Gemma 2/3, gpt-oss)."""
    chunked = "chunked"
    """Attention inside fixed chunks of `attention_chunk_size` tokens (Llama 4's RoPE layers)."""
    mamba2 = "mamba2"
    """A Mamba-2 state-space layer: a constant state per sequence (Granite 4.0-H, Nemotron-H)."""
    gated_deltanet = "gated-deltanet"
    """A Gated DeltaNet linear-attention layer: a constant state per sequence (Qwen3-Next, 3.5)."""
    hybrid_mamba2 = "hybrid-mamba2"
    """Full attention and a Mamba-2 mixer side by side in one layer (Falcon-H1): both caches."""
    mlp = "mlp"
    """A block that is only an MLP, no token mixing (Nemotron-H). Where a model has such blocks,
    its attention and recurrent blocks have no MLP of their own."""
    moe = "moe"
    """A block that is only a mixture of experts (Nemotron-H's MoE models)."""


ATTENTION_KINDS = frozenset({LayerKind.full, LayerKind.sliding, LayerKind.chunked})
RECURRENT_KINDS = frozenset({LayerKind.mamba2, LayerKind.gated_deltanet})
"""Kinds whose cache is a fixed state per sequence; `hybrid-mamba2` has one beside its KV cache."""
MLP_KINDS = frozenset({LayerKind.mlp, LayerKind.moe})


class Modality(StrEnum):
    text = "text"
    image = "image"
    audio = "audio"
    video = "video"


class Relation(StrEnum):
    """How a model derives from its `base_model` (the Hub's `base_model_relation`, plus one)."""

    finetune = "finetune"
    adapter = "adapter"
    quantized = "quantized"
    merge = "merge"
    continued_pretraining = "continued-pretraining"


class Architecture(Strict):
    """Shapes that decide memory, speed and parameter count.

    The first block mirrors `config.json`. The second says how each layer is built, which the
    parameter count needs; its defaults describe a Llama-style decoder.
    """

    architectures: str | None = None
    model_type: str | None = None
    num_hidden_layers: int | None = Field(default=None, ge=1, le=10_000)
    hidden_size: int | None = Field(default=None, ge=1, le=1_000_000)
    num_attention_heads: int | None = Field(default=None, ge=1, le=10_000)
    num_key_value_heads: int | None = Field(default=None, ge=1, le=10_000)
    head_dim: int | None = Field(default=None, ge=1, le=100_000)
    intermediate_size: int | None = Field(default=None, ge=1, le=10_000_000)
    vocab_size: int | None = Field(default=None, ge=1, le=100_000_000)
    context_length: int | None = Field(default=None, ge=1, le=1_000_000_000)
    num_local_experts: int | None = Field(default=None, ge=1, le=100_000)
    num_experts_per_tok: int | None = Field(default=None, ge=1, le=100_000)
    sliding_window: int | None = Field(default=None, ge=1, le=1_000_000_000)
    tie_word_embeddings: bool = False

    mlp: Literal["gated", "plain"] = "gated"
    """gated: gate, up and down projections (SwiGLU/GeGLU); plain: up and down only."""
    norm: Literal["rmsnorm", "layernorm", "layernorm-no-bias", "none"] = "rmsnorm"
    """`none` is a norm without learned weights (OLMo-1)."""
    norms_per_layer: int = Field(default=2, ge=0, le=8)
    attention_bias: Literal["none", "qkv", "all"] = "none"
    """qkv: bias on the query, key and value projections only (Qwen2); all: on the output too."""
    mlp_bias: bool = False
    qk_norm: Literal["none", "per-head", "full"] = "none"
    """Norms on queries and keys: over each head (Qwen3) or over the whole projection (OLMo-2)."""
    parallel_attention: bool = False
    """Attention and MLP read the same input (GPT-J, Falcon, phi); does not change the count."""
    position_embedding: Literal["rope", "alibi", "learned"] = "rope"
    embedding_norm: bool = False
    """A norm right after the token embedding (BLOOM)."""
    lm_head_bias: bool = False

    # Mixture of experts beyond one width for every expert (DeepSeek, Qwen3-MoE, Llama 4, GLM).
    moe_intermediate_size: int | None = Field(default=None, ge=1, le=10_000_000)
    """Width of each routed expert; None: `intermediate_size`."""
    shared_expert_intermediate_size: int | None = Field(default=None, ge=1, le=10_000_000)
    """Total width of the always-active shared expert(s) of a MoE layer (DeepSeek:
    n_shared_experts x moe_intermediate_size); None: no shared expert."""
    shared_expert_gate: bool = False
    """A one-output sigmoid gate on the shared expert (Qwen2-MoE, Qwen3-Next, Qwen3.5)."""
    first_k_dense_replace: int = Field(default=0, ge=0, le=10_000)
    """Leading layers that keep a dense MLP (DeepSeek-V3: 3, GLM-4.5: 3, Kimi K2: 1)."""
    moe_layer_step: int = Field(default=1, ge=1, le=10_000)
    """Every n-th layer is a MoE layer, the others dense (Llama 4 Maverick: 2)."""
    router_bias: bool = False
    """A bias on the router (gpt-oss); `mlp_bias` then also puts biases on every expert."""

    # Multi-head latent attention (DeepSeek-V2/V3, Kimi K2): keys and values are compressed.
    q_lora_rank: int | None = Field(default=None, ge=1, le=1_000_000)
    """Rank of the query compression; None: queries are projected directly."""
    kv_lora_rank: int | None = Field(default=None, ge=1, le=1_000_000)
    """Rank of the key/value latent; set for MLA models. The cache keeps this latent plus the
    rotary part of the key per token, not keys and values per head."""
    qk_rope_head_dim: int | None = Field(default=None, ge=1, le=100_000)
    qk_nope_head_dim: int | None = Field(default=None, ge=1, le=100_000)
    v_head_dim: int | None = Field(default=None, ge=1, le=100_000)

    # Per-layer patterns.
    layer_types: list[LayerKind] | None = None
    """The kind of each layer, in order (config.json's `layer_types`)."""
    layer_pattern: list[LayerKind] | None = None
    """A cycle of kinds repeated over the layers when `layer_types` is not spelled out:
    Gemma 3 is five sliding then one full."""
    attention_chunk_size: int | None = Field(default=None, ge=1, le=1_000_000_000)
    attention_sinks: bool = False
    """One learned sink logit per head in every attention layer (gpt-oss)."""
    attention_output_gate: bool = False
    """The query projection also yields a per-channel output gate (Qwen3-Next, Qwen3.5)."""

    # Gemma 4: global layers shaped apart, caches shared between layers, per-layer embeddings.
    global_head_dim: int | None = Field(default=None, ge=1, le=100_000)
    """Head size of the `full` layers when it differs from `head_dim`."""
    global_num_key_value_heads: int | None = Field(default=None, ge=1, le=10_000)
    """KV heads of the `full` layers when they differ from `num_key_value_heads`."""
    attention_k_eq_v: bool = False
    """The `full` layers project keys only and use them as values too (no value projection)."""
    num_kv_shared_layers: int = Field(default=0, ge=0, le=10_000)
    """The last n layers reuse the cache of the last earlier layer of their kind: no key or
    value projections, no cache of their own."""
    double_wide_mlp: bool = False
    """The cache-sharing layers have an MLP twice as wide."""
    hidden_size_per_layer_input: int | None = Field(default=None, ge=1, le=1_000_000)
    vocab_size_per_layer_input: int | None = Field(default=None, ge=1, le=100_000_000)
    """Per-layer embeddings: a second table of vocab x layers x this width, looked up per token
    and fed to every layer through a small gate and projection (Gemma 3n, Gemma 4 E2B/E4B)."""
    moe_beside_mlp: bool = False
    """A MoE layer runs its dense MLP and its experts side by side (Gemma 4 26B-A4B), with a
    scaled router and three more norms."""

    # Mamba-2 layers (config.json names of GraniteMoeHybrid / Falcon-H1).
    mamba_n_heads: int | None = Field(default=None, ge=1, le=100_000)
    mamba_d_head: int | None = Field(default=None, ge=1, le=100_000)
    mamba_d_state: int | None = Field(default=None, ge=1, le=100_000)
    mamba_n_groups: int = Field(default=1, ge=1, le=100_000)
    mamba_d_conv: int = Field(default=4, ge=1, le=1_000)
    mamba_conv_bias: bool = True
    mamba_norm: bool = True
    """A gated RMSNorm over the inner width before the output projection."""

    # Gated DeltaNet layers (config.json names of Qwen3-Next / Qwen3.5).
    linear_num_key_heads: int | None = Field(default=None, ge=1, le=100_000)
    linear_num_value_heads: int | None = Field(default=None, ge=1, le=100_000)
    linear_key_head_dim: int | None = Field(default=None, ge=1, le=100_000)
    linear_value_head_dim: int | None = Field(default=None, ge=1, le=100_000)
    linear_conv_kernel_dim: int = Field(default=4, ge=1, le=1_000)

    @model_validator(mode="after")
    def _fill_derived(self) -> Architecture:
        # config.json often leaves these out; they then take the documented default.
        if self.num_key_value_heads is None and self.num_attention_heads is not None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None and self.hidden_size and self.num_attention_heads:
            self.head_dim = self.hidden_size // self.num_attention_heads
        heads, kv = self.num_attention_heads, self.num_key_value_heads
        if heads and kv and heads % kv:
            raise ValueError(
                f"num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kv})"
            )
        if (self.num_local_experts is None) != (self.num_experts_per_tok is None):
            raise ValueError("num_local_experts and num_experts_per_tok go together")
        experts, used = self.num_local_experts, self.num_experts_per_tok
        if experts and used and used > experts:
            raise ValueError("num_experts_per_tok cannot exceed num_local_experts")
        layers = self.num_hidden_layers
        if self.layer_types is not None and layers and len(self.layer_types) != layers:
            raise ValueError(
                f"layer_types lists {len(self.layer_types)} layers, num_hidden_layers is {layers}"
            )
        kinds = set(self.layer_types or self.layer_pattern or [])
        if LayerKind.sliding in kinds and not self.sliding_window:
            raise ValueError("sliding layers need sliding_window")
        if LayerKind.chunked in kinds and not self.attention_chunk_size:
            raise ValueError("chunked layers need attention_chunk_size")
        needs: dict[LayerKind, tuple[str, ...]] = {
            LayerKind.mamba2: ("mamba_n_heads", "mamba_d_head", "mamba_d_state"),
            LayerKind.hybrid_mamba2: ("mamba_n_heads", "mamba_d_head", "mamba_d_state"),
            LayerKind.gated_deltanet: (
                "linear_num_key_heads",
                "linear_num_value_heads",
                "linear_key_head_dim",
                "linear_value_head_dim",
            ),
        }
        for kind, fields in needs.items():
            missing = [f for f in fields if kind in kinds and getattr(self, f) is None]
            if missing:
                raise ValueError(f"{kind} layers need {', '.join(missing)}")
        if self.kv_lora_rank is not None:
            missing = [
                f
                for f in ("qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")
                if getattr(self, f) is None
            ]
            if missing:
                raise ValueError(f"multi-head latent attention needs {', '.join(missing)}")
        return self

    def layer_kinds(self) -> list[LayerKind]:
        """The kind of every layer: spelled out, a repeated pattern, or uniform (every layer
        sliding when only `sliding_window` is given, as Mistral-7B v0.1)."""
        layers = self.num_hidden_layers or 0
        if self.layer_types is not None:
            return list(self.layer_types)
        if self.layer_pattern:
            cycle = self.layer_pattern
            return [cycle[i % len(cycle)] for i in range(layers)]
        return [LayerKind.sliding if self.sliding_window else LayerKind.full] * layers

    def is_moe_layer(self, index: int) -> bool:
        """Whether layer `index` (from 0) routes to experts."""
        if self.mlp_in_own_blocks:
            return self.is_moe and self.layer_kinds()[index] == LayerKind.moe
        return (
            self.is_moe
            and index >= self.first_k_dense_replace
            and (index + 1) % self.moe_layer_step == 0
        )

    def kv_shared(self, index: int) -> bool:
        """Whether layer `index` reuses an earlier layer's cache (Gemma 4's last layers)."""
        return index >= (self.num_hidden_layers or 0) - self.num_kv_shared_layers

    def attention_shape(self, kind: LayerKind) -> tuple[int, int]:
        """Head size and KV heads of an attention layer of `kind`."""
        if kind == LayerKind.full:
            return (
                self.global_head_dim or self.head_dim or 0,
                self.global_num_key_value_heads or self.num_key_value_heads or 0,
            )
        return self.head_dim or 0, self.num_key_value_heads or 0

    @property
    def mlp_in_own_blocks(self) -> bool:
        """Whether MLPs are blocks of their own (Nemotron-H) rather than part of every layer."""
        return bool(MLP_KINDS & set(self.layer_types or self.layer_pattern or []))

    @property
    def uses_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def is_moe(self) -> bool:
        return bool(self.num_local_experts and self.num_local_experts > 1)

    @property
    def is_complete(self) -> bool:
        """True when every field the parameter count needs is known."""
        return not self.missing_fields()

    def missing_fields(self) -> list[str]:
        """The fields the parameter count needs and lacks."""
        needed = [
            "num_hidden_layers",
            "hidden_size",
            "num_attention_heads",
            "num_key_value_heads",
            "head_dim",
            "vocab_size",
        ]
        # A model whose every layer routes to experts has no dense MLP width (Qwen3.5-MoE).
        all_moe = (
            self.is_moe
            and self.moe_intermediate_size is not None
            and self.first_k_dense_replace == 0
            and self.moe_layer_step == 1
        )
        if not all_moe:
            needed.append("intermediate_size")
        return [name for name in needed if getattr(self, name) is None]


class Dataset(Strict):
    """One body of training data, with its own license."""

    name: str
    license: str | None = None
    """License id of the data; None when not known."""
    stage: Literal["pretraining", "finetuning", "alignment"] = "pretraining"
    note: str | None = None
    """E.g. 'generated with OpenAI text-davinci-003': such outputs carry that vendor's terms."""
    source: str | None = None


class TrainingData(Strict):
    disclosure: Literal["full", "partial", "undisclosed"] = "undisclosed"
    datasets: list[Dataset] = Field(default_factory=list)
    note: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_word(cls, value: Any) -> Any:
        # `data: undisclosed` is the common case; let the file say just that.
        if value == "undisclosed":
            return {"disclosure": "undisclosed"}
        return value


class LicenseChange(Strict):
    """A license a component had before: phi-1.5's weights were research-only until MIT."""

    component: Literal["code", "weights", "data"]
    license: str = Field(pattern=LICENSE_ID)
    until: datetime.date | None
    """The last day it held; None when the change is known but its date is not."""
    source: str
    note: str | None = None


class Licenses(Strict):
    code: str = Field(pattern=LICENSE_ID)
    """License id of the architecture / inference code."""
    weights: str = Field(pattern=LICENSE_ID)
    data: TrainingData = Field(default_factory=TrainingData)
    history: list[LicenseChange] = Field(default_factory=list)

    @field_validator("code", "weights", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class Benchmark(Strict):
    name: str
    """e.g. `open-llm-v1/average`, `open-llm-v1/arc`, `mmlu`."""
    value: float
    source: str
    date: datetime.date | None = None
    shots: int | None = None
    origin: Literal["leaderboard", "published"] = "leaderboard"
    """leaderboard: measured by a third party on one harness for every model (Open LLM
    Leaderboard); published: the model's own card or technical report, in its own setup."""
    setup: str | None = None
    """How a published score was obtained: harness, prompting, chain of thought, variant."""

    @model_validator(mode="after")
    def _published_says_how(self) -> Benchmark:
        if self.origin == "published" and not (self.setup and self.date):
            raise ValueError("a published score needs its setup and the date it was published")
        return self


class Sources(Strict):
    """Where each group of facts comes from (URLs or document names)."""

    params: list[str] = Field(default_factory=list)
    architecture: list[str] = Field(default_factory=list)
    licenses: list[str] = Field(default_factory=list)
    release_date: list[str] = Field(default_factory=list)
    lineage: list[str] = Field(default_factory=list)
    other: list[str] = Field(default_factory=list)


class ModelCard(Strict):
    id: str = Field(pattern=REPO_ID, max_length=200)
    """Hugging Face repo id (`meta-llama/Llama-2-7b-hf`)."""
    name: str | None = None
    family: str
    organization: str | None = None
    release_date: datetime.date | None = None
    kind: list[Kind] = Field(default_factory=lambda: [Kind.base])
    params: int | None = Field(default=None, ge=1, le=100_000_000_000_000)
    active_params: int | None = Field(default=None, ge=1, le=100_000_000_000_000)
    """Parameters used per token, for mixture-of-experts models; None for dense ones."""
    architecture: Architecture = Field(default_factory=Architecture)
    licenses: Licenses
    base_model: str | None = Field(default=None, pattern=REPO_ID, max_length=200)
    base_model_relation: Relation | None = None
    quantization: str | None = None
    """How the weights are stored when not the original release, e.g. `Q4_K_M` for a GGUF file."""
    weights_format: str | None = None
    """The precision of the original release when it is not 16-bit: `mxfp4` (gpt-oss experts),
    `fp8-block` (DeepSeek-V3, Kimi K2). Sizing starts there, since no 16-bit weights exist."""
    input_modalities: list[Modality] = Field(default_factory=lambda: [Modality.text])
    """What the released model reads. For a multimodal model the catalog sizes its text model
    (the architecture is `text_config`); the vision or audio encoder is not counted."""
    languages: list[str] = Field(default_factory=list)
    benchmarks: list[Benchmark] = Field(default_factory=list)
    sources: Sources = Field(default_factory=Sources)
    notes: str | None = None
    origin: str = "builtin"
    """`builtin`, or the file a user-imported card was read from."""

    @field_validator("kind", mode="before")
    @classmethod
    def _kind_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _lineage_pairs(self) -> ModelCard:
        if self.base_model_relation is not None and self.base_model is None:
            raise ValueError("base_model_relation is set but base_model is not")
        if self.base_model == self.id:
            raise ValueError("a model cannot be its own base_model")
        return self

    @property
    def display_name(self) -> str:
        return self.name or self.id.split("/")[-1]

    def to_public_dict(self) -> dict[str, Any]:
        """The JSON contract of `catalog show --json` (see README)."""
        return self.model_dump(mode="json")

    aliases: list[str] = Field(default_factory=list)
    """Other Hub ids of the same weights (a renamed repo, the original release of a `-hf`
    conversion); `Catalog.find` resolves them to this card and says so."""
