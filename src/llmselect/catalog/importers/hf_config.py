"""Turn a Hugging Face `config.json` into an `Architecture`.

Configs name the same thing differently (`n_layer`, `num_layers`, `n_layers`...), and how a
layer is built (biases, norms, gated MLP) follows from the model type rather than from fields.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from llmselect.catalog.schema import Architecture
from llmselect.errors import LLMSelectError
from llmselect.yamlfile import LineDict, validate

MAX_CONFIG_BYTES = 2_000_000

ALIASES: dict[str, tuple[str, ...]] = {
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "n_layers", "num_layers"),
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_attention_heads": ("num_attention_heads", "n_head", "n_heads"),
    "num_key_value_heads": ("num_key_value_heads", "n_head_kv", "num_kv_heads"),
    "intermediate_size": ("intermediate_size", "n_inner", "ffn_hidden_size"),
    "vocab_size": ("vocab_size", "padded_vocab_size"),
    "context_length": (
        "max_position_embeddings",
        "n_positions",
        "max_seq_len",
        "seq_length",
        "n_ctx",
    ),
    "num_local_experts": ("num_local_experts", "num_experts", "n_routed_experts"),
    "num_experts_per_tok": ("num_experts_per_tok", "moe_top_k", "top_k_experts"),
    "head_dim": ("head_dim",),
    "sliding_window": ("sliding_window",),
    "moe_intermediate_size": ("moe_intermediate_size",),
    "shared_expert_intermediate_size": ("shared_expert_intermediate_size",),
    "first_k_dense_replace": ("first_k_dense_replace",),
    "moe_layer_step": ("decoder_sparse_step", "interleave_moe_layer_step", "moe_layer_freq"),
    "q_lora_rank": ("q_lora_rank",),
    "kv_lora_rank": ("kv_lora_rank",),
    "qk_rope_head_dim": ("qk_rope_head_dim",),
    "qk_nope_head_dim": ("qk_nope_head_dim",),
    "v_head_dim": ("v_head_dim",),
    "attention_chunk_size": ("attention_chunk_size",),
    "mamba_n_heads": ("mamba_n_heads", "mamba_num_heads"),
    "mamba_d_head": ("mamba_d_head", "mamba_head_dim"),
    "mamba_d_state": ("mamba_d_state", "ssm_state_size"),
    "mamba_n_groups": ("mamba_n_groups", "n_groups"),
    "mamba_d_conv": ("mamba_d_conv", "conv_kernel"),
    "linear_num_key_heads": ("linear_num_key_heads",),
    "linear_num_value_heads": ("linear_num_value_heads",),
    "linear_key_head_dim": ("linear_key_head_dim",),
    "linear_value_head_dim": ("linear_value_head_dim",),
    "linear_conv_kernel_dim": ("linear_conv_kernel_dim",),
    "global_head_dim": ("global_head_dim",),
    "global_num_key_value_heads": ("num_global_key_value_heads",),
    "num_kv_shared_layers": ("num_kv_shared_layers",),
    "hidden_size_per_layer_input": ("hidden_size_per_layer_input",),
    "vocab_size_per_layer_input": ("vocab_size_per_layer_input",),
}

# config.json's names for layer kinds. `linear_attention` means Gated DeltaNet in the Qwen
# models and Mamba-2 in Granite's, so it is read per model type.
LAYER_NAMES = {
    "full_attention": "full",
    "attention": "full",
    "sliding_attention": "sliding",
    "chunked_attention": "chunked",
    "mamba": "mamba2",
    "mlp": "mlp",
    "moe": "moe",
}
LINEAR_ATTENTION = {
    "qwen3_next": "gated-deltanet",
    "qwen3_5_text": "gated-deltanet",
    "qwen3_5_moe_text": "gated-deltanet",
    "granitemoehybrid": "mamba2",
    "nemotron_h": "mamba2",
}
# Nemotron-H's `hybrid_override_pattern`: one character a block.
NEMOTRON_BLOCKS = {"M": "mamba2", "*": "full", "-": "mlp", "E": "moe"}

# How layers are built, per `model_type`; anything unlisted is treated as Llama-like.
SHAPES: dict[str, dict[str, Any]] = {
    "qwen2": {"attention_bias": "qkv"},
    "qwen2_moe": {"attention_bias": "qkv", "shared_expert_gate": True},
    "qwen3": {"qk_norm": "per-head"},
    "qwen3_moe": {"qk_norm": "per-head"},
    "qwen3_next": {
        "qk_norm": "per-head",
        "attention_output_gate": True,
        "shared_expert_gate": True,
    },
    "qwen3_5_text": {"qk_norm": "per-head", "attention_output_gate": True},
    "qwen3_5_moe_text": {
        "qk_norm": "per-head",
        "attention_output_gate": True,
        "shared_expert_gate": True,
    },
    "gemma": {"tie_word_embeddings": True},
    "gemma2": {"tie_word_embeddings": True, "norms_per_layer": 4},
    "gemma3_text": {"tie_word_embeddings": True, "norms_per_layer": 4, "qk_norm": "per-head"},
    "gemma4_text": {"tie_word_embeddings": True, "norms_per_layer": 4, "qk_norm": "per-head"},
    "gpt_oss": {
        "attention_bias": "all",
        "attention_sinks": True,
        "router_bias": True,
        "mlp_bias": True,
    },
    "exaone4": {"qk_norm": "per-head"},
    "cohere": {"norm": "layernorm-no-bias", "norms_per_layer": 1, "tie_word_embeddings": True},
    "cohere2": {"norm": "layernorm-no-bias", "norms_per_layer": 1, "tie_word_embeddings": True},
    "olmo3": {"qk_norm": "full"},
    "nemotron_h": {"mlp": "plain", "norms_per_layer": 1},
    "falcon_h1": {"layer_pattern": ["hybrid-mamba2"]},
    "phi": {
        "mlp": "plain",
        "norm": "layernorm",
        "norms_per_layer": 1,
        "attention_bias": "all",
        "mlp_bias": True,
        "parallel_attention": True,
        "lm_head_bias": True,
    },
    "gpt_neox": {"mlp": "plain", "norm": "layernorm", "attention_bias": "all", "mlp_bias": True},
    "bloom": {
        "mlp": "plain",
        "norm": "layernorm",
        "attention_bias": "all",
        "mlp_bias": True,
        "position_embedding": "alibi",
        "embedding_norm": True,
        "tie_word_embeddings": True,
    },
    "mpt": {
        "mlp": "plain",
        "norm": "layernorm-no-bias",
        "position_embedding": "alibi",
        "tie_word_embeddings": True,
    },
    "gpt2": {
        "mlp": "plain",
        "norm": "layernorm",
        "attention_bias": "all",
        "mlp_bias": True,
        "position_embedding": "learned",
        "tie_word_embeddings": True,
    },
    "gptj": {
        "mlp": "plain",
        "norm": "layernorm",
        "norms_per_layer": 1,
        "mlp_bias": True,
        "parallel_attention": True,
        "lm_head_bias": True,
    },
    "falcon": {"mlp": "plain", "norm": "layernorm", "tie_word_embeddings": True},
    "olmo": {"norm": "none"},
    "olmo2": {"qk_norm": "full"},
    "stablelm": {"norm": "layernorm"},
    "starcoder2": {"mlp": "plain", "norm": "layernorm"},
}


def _int_field(config: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = config.get(name)
        if value is not None:
            return value
    return None


def architecture_from_config(config: dict[str, Any], *, file: str | Path) -> Architecture:
    """Map a parsed config.json to an `Architecture`; bad values raise with file and line."""
    if isinstance(config.get("text_config"), dict):
        # Multimodal wrappers keep the language model's shape under text_config.
        outer_type = config.get("model_type")
        config = {**config, **config["text_config"], "architectures": config.get("architectures")}
        config.setdefault("outer_model_type", outer_type)
    model_type = str(config.get("model_type") or "").lower()
    fields: dict[str, Any] = dict(SHAPES.get(model_type, {}))
    for target, names in ALIASES.items():
        value = _int_field(config, names)
        if value is not None:
            fields[target] = value

    classes = config.get("architectures")
    if isinstance(classes, list) and classes:
        fields["architectures"] = str(classes[0])
    if model_type:
        fields["model_type"] = model_type
    if "tie_word_embeddings" in config:
        fields["tie_word_embeddings"] = config["tie_word_embeddings"]

    _type_specific(model_type, config, fields)
    plain_4x = ("gpt2", "gptj", "gpt_neox", "bloom", "falcon", "phi", "mpt")
    if (
        fields.get("intermediate_size") is None
        and fields.get("hidden_size")
        and model_type in plain_4x
    ):
        # These configs leave the MLP width out: it is 4 x hidden by construction.
        fields["intermediate_size"] = 4 * int(fields["hidden_size"])
    if fields.get("num_local_experts") in (0, 1):
        fields.pop("num_local_experts", None)
        fields.pop("num_experts_per_tok", None)
    if fields.get("sliding_window") is not None and config.get("use_sliding_window") is False:
        fields.pop("sliding_window")
    _layer_kinds(model_type, config, fields)
    lines = _json_lines(file)
    return validate(Architecture, fields, file=file, sources=(lines,))


def _layer_kinds(model_type: str, config: dict[str, Any], fields: dict[str, Any]) -> None:
    """`layer_types` as the config lists them, or the pattern older configs give as a number."""
    names = config.get("layer_types") or config.get("layers_block_type")
    pattern = config.get("hybrid_override_pattern")
    if not names and isinstance(pattern, str) and pattern:
        names = [NEMOTRON_BLOCKS.get(char, char) for char in pattern]
    kinds: list[str] | None = None
    if isinstance(names, list) and names:
        linear = LINEAR_ATTENTION.get(model_type, "gated-deltanet")
        kinds = [
            linear if name == "linear_attention" else LAYER_NAMES.get(str(name), str(name))
            for name in names
        ]
    elif fields.get("sliding_window") and model_type in ("gemma2", "gemma3_text", "cohere2"):
        every = {"gemma2": 2, "cohere2": 4}.get(model_type, 6)
        step = config.get("sliding_window_pattern") or config.get("_sliding_window_pattern")
        every = step if isinstance(step, int) and step > 0 else every
        fields["layer_pattern"] = ["sliding"] * (every - 1) + ["full"]
    elif model_type == "llama4_text" and fields.get("attention_chunk_size"):
        rope = config.get("no_rope_layers")
        if isinstance(rope, list) and rope:
            kinds = ["chunked" if use else "full" for use in rope]
        else:
            interval = config.get("no_rope_layer_interval") or 4
            fields["layer_pattern"] = ["chunked"] * (interval - 1) + ["full"]
    if kinds is None:
        return
    # Nemotron-H's config has no layer count: its block list is the count.
    fields.setdefault("num_hidden_layers", len(kinds))
    if all(kind == "full" for kind in kinds):
        fields.pop("sliding_window", None)  # a window nobody uses (Qwen2.5, Qwen3)
    elif all(kind == "sliding" for kind in kinds):
        pass  # every layer sliding: `sliding_window` alone says so (Mistral-7B v0.1)
    else:
        fields["layer_types"] = kinds


def _type_specific(model_type: str, config: dict[str, Any], fields: dict[str, Any]) -> None:
    if model_type in ("llama", "mistral", "mixtral", "qwen3", "olmo2"):
        if config.get("attention_bias"):
            fields["attention_bias"] = "all"
        if config.get("mlp_bias"):
            fields["mlp_bias"] = True
    elif model_type == "falcon":
        bias = bool(config.get("bias"))
        fields["attention_bias"] = "all" if bias else "none"
        fields["mlp_bias"] = bias
        if config.get("alibi"):
            fields["position_embedding"] = "alibi"
        if config.get("new_decoder_architecture"):
            fields["norms_per_layer"] = 2
        else:
            if config.get("multi_query", True):
                fields["num_key_value_heads"] = 1
            fields["norms_per_layer"] = 1 if config.get("parallel_attn", True) else 2
        fields["parallel_attention"] = bool(config.get("parallel_attn", True))
    elif model_type == "gpt_neox":
        fields["parallel_attention"] = bool(config.get("use_parallel_residual", True))
    elif model_type == "mpt":
        ratio = config.get("expansion_ratio")
        if isinstance(ratio, int | float) and fields.get("hidden_size"):
            fields["intermediate_size"] = int(ratio * int(fields["hidden_size"]))
        attn = config.get("attn_config") or {}
        if isinstance(attn, dict) and attn.get("kv_n_heads"):
            fields["num_key_value_heads"] = attn["kv_n_heads"]
        if config.get("no_bias") is False:
            fields.update(norm="layernorm", attention_bias="all", mlp_bias=True)
    elif model_type == "stablelm":
        if config.get("use_qkv_bias"):
            fields["attention_bias"] = "qkv"
    elif model_type == "starcoder2" and config.get("use_bias", True):
        fields.update(attention_bias="all", mlp_bias=True)
    elif model_type == "phi3" and config.get("attention_bias"):
        fields["attention_bias"] = "all"
    elif model_type in ("deepseek_v2", "deepseek_v3", "kimi_k2", "glm4_moe"):
        shared = config.get("n_shared_experts")
        if isinstance(shared, int) and shared and fields.get("moe_intermediate_size"):
            fields["shared_expert_intermediate_size"] = shared * fields["moe_intermediate_size"]
        if model_type == "glm4_moe":
            if config.get("attention_bias"):
                fields["attention_bias"] = "qkv"  # q, k and v; the output projection has none
            if config.get("use_qk_norm"):
                fields["qk_norm"] = "per-head"
        elif fields.get("kv_lora_rank"):
            # MLA has no grouped heads: every head reads the same latent.
            fields["num_key_value_heads"] = fields.get("num_attention_heads")
            fields["head_dim"] = (fields.get("qk_nope_head_dim") or 0) + (
                fields.get("qk_rope_head_dim") or 0
            )
    elif model_type == "llama4_text":
        # Experts and the shared expert have `intermediate_size`; dense layers the larger
        # `intermediate_size_mlp`.
        expert = config.get("intermediate_size")
        fields["moe_intermediate_size"] = expert
        fields["shared_expert_intermediate_size"] = expert
        if config.get("intermediate_size_mlp"):
            fields["intermediate_size"] = config["intermediate_size_mlp"]
    elif model_type == "gemma4_text":
        _gemma4(config, fields)
    elif model_type == "falcon_h1":
        fields["mamba_norm"] = bool(config.get("mamba_rms_norm", False))
        fields["mamba_conv_bias"] = bool(config.get("mamba_conv_bias", True))
        ssm = config.get("mamba_d_ssm")
        heads = fields.get("mamba_n_heads")
        if isinstance(ssm, int) and heads and not config.get("mamba_d_head"):
            fields["mamba_d_head"] = ssm // heads  # the inner width is heads x head size
    elif model_type == "nemotron_h":
        if fields.get("num_local_experts"):
            shared = config.get("moe_shared_expert_intermediate_size")
            if shared and config.get("n_shared_experts"):
                fields["shared_expert_intermediate_size"] = shared * config["n_shared_experts"]
        fields["mamba_conv_bias"] = bool(config.get("use_conv_bias", True))
        fields["mlp_bias"] = bool(config.get("mlp_bias", False))
    elif model_type == "granitemoehybrid":
        shared = config.get("shared_intermediate_size")
        if fields.get("num_local_experts"):
            fields["shared_expert_intermediate_size"] = shared
        elif shared:
            fields["intermediate_size"] = shared  # no experts: the shared MLP is the MLP
        fields["mamba_conv_bias"] = bool(config.get("mamba_conv_bias", True))
    elif model_type == "gemma3_text" and config.get("attention_bias"):
        fields["attention_bias"] = "all"


def _gemma4(config: dict[str, Any], fields: dict[str, Any]) -> None:
    """Gemma 4: global layers shaped apart (`per_layer_config` as transformers writes it, or the
    `global_*` keys), keys as values there, shared caches, per-layer inputs, MoE beside the MLP."""
    fields["attention_k_eq_v"] = bool(config.get("attention_k_eq_v"))
    fields["double_wide_mlp"] = bool(config.get("use_double_wide_mlp"))
    fields["moe_beside_mlp"] = bool(config.get("enable_moe_block"))
    if not config.get("enable_moe_block"):
        fields.pop("num_local_experts", None)
        fields.pop("num_experts_per_tok", None)
    if not config.get("hidden_size_per_layer_input"):
        fields.pop("hidden_size_per_layer_input", None)
        fields.pop("vocab_size_per_layer_input", None)
    overrides = config.get("per_layer_config")
    names = config.get("layer_types")
    if isinstance(overrides, dict) and isinstance(names, list):
        for index, override in overrides.items():
            position = int(index) if str(index).isdigit() else -1
            if not isinstance(override, dict) or not 0 <= position < len(names):
                continue
            if names[position] == "full_attention":
                if "head_dim" in override:
                    fields.setdefault("global_head_dim", override["head_dim"])
                if "num_key_value_heads" in override:
                    fields.setdefault("global_num_key_value_heads", override["num_key_value_heads"])


def _json_lines(file: str | Path) -> LineDict:
    """Line of each top-level key in a JSON file, so errors can point at it."""
    lines = LineDict()
    lines.key_lines = {}
    lines.line = 1
    try:
        text = Path(file).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return lines
    for number, row in enumerate(text.splitlines(), start=1):
        for key in re.findall(r'"([A-Za-z_][\w]*)"\s*:', row):
            lines.key_lines.setdefault(key, number)
    for target, names in ALIASES.items():
        for name in names:
            if name in lines.key_lines:
                lines.key_lines.setdefault(target, lines.key_lines[name])
                lines.setdefault(target, None)
                break
    for key in lines.key_lines:
        lines.setdefault(key, None)
    return lines


def read_config(path: Path) -> dict[str, Any]:
    """Parse config.json; never executes anything it names (`auto_map` is only reported)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LLMSelectError(f"cannot read: {exc.strerror}", file=path) from exc
    if size > MAX_CONFIG_BYTES:
        raise LLMSelectError(f"config is {size} bytes; that is not a model config", file=path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise LLMSelectError("not UTF-8 text", file=path) from exc
    except json.JSONDecodeError as exc:
        raise LLMSelectError(
            f"invalid JSON: {exc.msg} (column {exc.colno})",
            file=path,
            line=exc.lineno,
            hint="config.json must be a JSON object as written by save_pretrained",
        ) from exc
    if not isinstance(config, dict):
        raise LLMSelectError("config.json must hold a JSON object", file=path, line=1)
    return config
