"""The model as training needs it: the device, the tokenizer, the weights in the method's
precision, and LoRA adapters (or every weight made trainable).

QLoRA loads the base weights in 4 bits with bitsandbytes, which needs a CUDA GPU:
`require_qlora` says so before anything is loaded.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

from llmselect.errors import LLMSelectError
from llmselect.evaluation.backends.weights import use_safetensors
from llmselect.finetune.config import BaseModelRef, TrainConfig
from llmselect.quiet import quiet_transformers as _quiet_loading
from llmselect.sizing.finetune import Method, target_modules


def train_device() -> Literal["cuda", "cpu"]:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def require_qlora() -> None:
    """QLoRA quantizes the base weights with bitsandbytes, which needs a CUDA GPU."""
    import torch

    missing = []
    if importlib.util.find_spec("bitsandbytes") is None:
        missing.append("the bitsandbytes package (pip install bitsandbytes)")
    if not torch.cuda.is_available():
        build = " (this PyTorch is a CPU-only build)" if torch.version.cuda is None else ""
        missing.append(f"a CUDA GPU{build}")
    if missing:
        raise LLMSelectError(
            "QLoRA needs " + " and ".join(missing),
            field="--method",
            hint="use --method lora (16-bit base weights), or run on a machine with an NVIDIA GPU",
        )


def load_tokenizer(base: BaseModelRef) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(base.path, trust_remote_code=base.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise LLMSelectError(f"cannot load the tokenizer: {exc}", file=base.path) from exc


def load_model(base: BaseModelRef, method: Method, where: str) -> Any:
    """The base weights on `where`, in the precision the method trains them in."""
    import torch
    from transformers import AutoModelForCausalLM

    options: dict[str, Any] = {
        "use_safetensors": use_safetensors(base.path, base.allow_pickle),
        "trust_remote_code": base.trust_remote_code,
    }
    if method == "qlora":
        import transformers

        bnb: Any = transformers.BitsAndBytesConfig
        options["quantization_config"] = bnb(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        options["device_map"] = {"": torch.cuda.current_device()}
        options["dtype"] = torch.bfloat16
    elif method == "lora" and where == "cuda":
        options["dtype"] = torch.bfloat16  # frozen weights in 16 bits; adapters stay fp32
    else:
        options["dtype"] = torch.float32  # trained weights: the fp32 master copy
    auto: Any = AutoModelForCausalLM
    try:
        with _quiet_loading():
            model = auto.from_pretrained(base.path, **options)
    except OSError as exc:
        raise LLMSelectError(
            f"cannot load the model: {exc}",
            file=base.path,
            hint="llmselect loads safetensors weights only; `allow_pickle: true` on the run "
            "entry accepts .bin files (pickle can run code: only for weights you trust)",
        ) from exc
    if method != "qlora":
        model.to(where)
    return model


def _attention_modules(model: Any) -> list[str]:
    """Names of the linear layers inside attention blocks (q/k/v/o, query_key_value, ...)."""
    import torch

    names = set()
    for name, module in model.named_modules():
        parent, _, leaf = name.rpartition(".")
        if isinstance(module, torch.nn.Linear) and ("attn" in parent or "attention" in parent):
            names.add(leaf)
    if not names:
        raise LLMSelectError(
            "no attention projections found in this model", hint="use --targets all-linear"
        )
    return sorted(names)


def make_trainable(model: Any, config: TrainConfig, where: str) -> Any:
    """Wrap the model for the method: LoRA adapters, or every weight trainable."""
    import peft

    prepare_kbit: Any = peft.prepare_model_for_kbit_training
    model.config.use_cache = False  # the key-value cache only serves generation
    recompute = config.checkpointing(where)
    options = {"use_reentrant": False}
    if config.method == "qlora":
        model = prepare_kbit(
            model, use_gradient_checkpointing=recompute, gradient_checkpointing_kwargs=options
        )
    elif recompute:
        # transformers 5 renamed it; older releases only know the first name.
        enable = getattr(model, "activation_checkpointing_enable", None)
        (enable or model.gradient_checkpointing_enable)(gradient_checkpointing_kwargs=options)
    if config.method == "full":
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model
    targets: str | list[str]
    if config.targets == "all-linear":
        targets = "all-linear"
    elif config.targets == "attention":
        targets = _attention_modules(model)
    else:  # module names, checked against the known projections when the request was made
        targets = list(target_modules(config.targets))
    lora = peft.LoraConfig(
        r=config.rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    with _quiet_loading():
        return peft.get_peft_model(model, lora)


def trainable_parameters(model: Any) -> dict[str, Any]:
    """The weights the optimizer updates (and a checkpoint saves), by name."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}
