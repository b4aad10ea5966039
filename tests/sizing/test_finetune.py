"""Fine-tuning memory: LoRA parameter counts against peft, and the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmselect.catalog import count_params, load_builtin
from llmselect.catalog.importers.hf_config import architecture_from_config
from llmselect.cli import app
from llmselect.errors import UsageError
from llmselect.sizing.finetune import TRAINABLE_BYTES, finetune_memory, lora_params
from llmselect.sizing.hardware import find_device

CATALOG = load_builtin()


@pytest.mark.parametrize(
    ("targets", "modules"),
    [
        ("attention", ["q_proj", "k_proj", "v_proj", "o_proj"]),
        (
            "all-linear",
            ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        ),
    ],
)
def test_lora_params_match_peft(targets: str, modules: list[str]) -> None:
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    config = transformers.LlamaConfig(
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=128,
    )
    model = transformers.LlamaForCausalLM(config)
    tuned = peft.get_peft_model(model, peft.LoraConfig(r=8, target_modules=modules))
    trainable = sum(p.numel() for p in tuned.parameters() if p.requires_grad)
    arch = architecture_from_config(config.to_dict(), file="<config>")
    assert lora_params(arch, 8, targets) == trainable  # type: ignore[arg-type]


def test_full_finetuning_holds_16_bytes_per_parameter() -> None:
    arch = CATALOG.get("meta-llama/Llama-2-7b-hf").architecture
    m = finetune_memory(arch, find_device("A100-80GB"), 1, method="full", seq=2048, batch=1)
    assert m.trainable_state_bytes == TRAINABLE_BYTES * count_params(arch).total
    assert not m.fits  # about 100 GiB of state alone


def test_qlora_base_is_a_quarter_of_lora_and_checkpointing_saves_activations() -> None:
    arch = CATALOG.get("meta-llama/Llama-2-13b-hf").architecture
    device = find_device("RTX-4090")
    lora = finetune_memory(arch, device, 1, method="lora", seq=2048, batch=2)
    qlora = finetune_memory(arch, device, 1, method="qlora", seq=2048, batch=2)
    assert 0.25 < qlora.base_weights_bytes / lora.base_weights_bytes < 0.35
    assert qlora.fits and not lora.fits
    plain = finetune_memory(arch, device, 1, method="qlora", seq=2048, batch=2, checkpointing=False)
    assert plain.activations_bytes > 10 * qlora.activations_bytes


def test_fit_finetune_cli() -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "fit",
            "meta-llama/Llama-2-7b-hf",
            "--gpu",
            "A100-80GB",
            "--finetune",
            "lora",
            "--examples",
            "1000",
            "--tokens-per-example",
            "512",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["finetune"]
    assert data["method"] == "lora" and data["fits"] is True
    assert data["trainable_params"] == 39_976_960  # r=16 on all linear layers, as peft reports
    assert data["epoch_seconds"] > 0
    full = runner.invoke(
        app, ["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "A100-80GB", "--finetune", "full"]
    )
    assert full.exit_code == 4 and "does not fit" in full.output


# Llama-2-7B on an H100 (llmselect data set h100-measurements, 2026-11-22: torch 2.11, peft,
# AdamW, bf16 base): one training step's peak allocated bytes, which count no CUDA context.
H100_STEPS = [
    # targets, rank, batch, seq, checkpointing, trainable parameters, peak allocated bytes
    ("q_proj,v_proj", 16, 4, 512, False, 8_388_608, 26_406_644_736),
    ("q_proj,v_proj", 16, 4, 512, True, 8_388_608, 15_132_825_600),
    ("all-linear", 64, 8, 1024, True, 159_907_840, 21_415_184_384),
]


@pytest.mark.parametrize(
    ("targets", "rank", "batch", "seq", "ckpt", "trainable", "peak"), H100_STEPS
)
def test_lora_step_memory_within_ten_percent_of_an_h100(
    targets: str, rank: int, batch: int, seq: int, ckpt: bool, trainable: int, peak: int
) -> None:
    arch = load_builtin().get("meta-llama/Llama-2-7b-hf").architecture
    m = finetune_memory(
        arch,
        find_device("H100-80GB"),
        1,
        method="lora",
        seq=seq,
        batch=batch,
        rank=rank,
        targets=targets,
        checkpointing=ckpt,
    )
    assert m.trainable_params == trainable  # module names count what peft adapts
    allocated = m.total_bytes - m.overhead_bytes  # what torch's peak-allocated figure counts
    assert abs(allocated - peak) / peak < 0.10, (allocated, peak)


def test_recipes_size_the_trained_state() -> None:
    arch = load_builtin().get("meta-llama/Llama-2-7b-hf").architecture
    device, params = find_device("H100-80GB"), count_params(arch).total

    def state(**recipe: str) -> int:
        m = finetune_memory(arch, device, 1, method="full", seq=512, batch=1, **recipe)  # type: ignore[arg-type]
        return m.trainable_state_bytes

    # bf16 weight and gradient, fp32 master copy and two fp32 moments: 16 bytes a parameter.
    assert state() == 16 * params
    # torch's AdamW on bf16 parameters keeps its moments in bf16: 2 + 2 + 2 x 2 = 8 bytes.
    assert state(precision="bf16") == 8 * params
    # 8-bit AdamW keeps each moment in one byte: 2 + 2 + 2 = 6; plain SGD keeps none: 4.
    assert state(precision="bf16", optimizer="adamw-8bit") == 6 * params
    assert state(precision="bf16", optimizer="sgd") == 4 * params
    assert state(precision="fp32") == 16 * params


def test_lora_targets_by_module_name_and_refused_names() -> None:
    arch = load_builtin().get("meta-llama/Llama-2-7b-hf").architecture
    qv = lora_params(arch, 16, "q_proj,v_proj")
    # 32 layers x 2 matrices x 16 x (4096 + 4096)
    assert qv == 32 * 2 * 16 * 8192 == 8_388_608
    assert lora_params(arch, 16, "v_proj , q_proj") == qv  # order and spaces do not matter
    assert lora_params(arch, 16, "attention") == lora_params(
        arch, 16, "q_proj,k_proj,v_proj,o_proj"
    )
    with pytest.raises(UsageError, match="unknown LoRA target 'qkv'"):
        lora_params(arch, 16, "q_proj,qkv")


def test_fit_finetune_takes_a_recipe_and_module_names() -> None:
    runner = CliRunner()
    args = ["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "H100-80GB", "--finetune", "full"]
    pure = runner.invoke(app, [*args, "--precision", "bf16", "--optimizer", "adamw-8bit", "--json"])
    assert pure.exit_code in (0, 4), pure.output
    training = json.loads(pure.stdout)["finetune"]
    assert (training["precision"], training["optimizer"]) == ("bf16", "adamw-8bit")
    assert training["trainable_state_bytes"] == 6 * training["trainable_params"]
    bad = runner.invoke(app, [*args[:-1], "lora", "--targets", "q_proj,qkv"])
    assert bad.exit_code == 2 and "unknown LoRA target 'qkv'" in bad.output
    bad = runner.invoke(app, [*args, "--precision", "fp16"])
    assert bad.exit_code == 2 and "choose mixed, bf16 or fp32" in bad.output
