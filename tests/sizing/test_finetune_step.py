"""Time per training step: the latency model's terms against measured H100 steps, and the CLI."""

from __future__ import annotations

import json
import statistics

import pytest
from typer.testing import CliRunner

from llmselect.catalog import load_builtin
from llmselect.cli import app
from llmselect.sizing.finetune import (
    TRAINING_SLOWDOWN,
    finetune_memory,
    training_step,
)
from llmselect.sizing.hardware import find_device

LLAMA_2_7B = load_builtin().get("meta-llama/Llama-2-7b-hf").architecture
H100 = find_device("H100-80GB")

# Llama-2-7B LoRA steps on an H100 (llmselect data set h100-measurements, 2026-11-22: torch
# 2.11, transformers 5.17, peft, AdamW, bf16 base, random weights of the real shape).
H100_STEPS = [
    # targets, rank, batch, seq, checkpointing, seconds per step
    ("q_proj,v_proj", 16, 4, 512, False, 0.16828426499999694),
    ("q_proj,v_proj", 16, 4, 512, True, 0.22310542700000013),
    ("all-linear", 64, 8, 1024, True, 1.3998357329999962),
]


def predicted(targets: str, rank: int, batch: int, seq: int, ckpt: bool) -> float:
    step = training_step(
        LLAMA_2_7B,
        H100,
        method="lora",
        seq=seq,
        batch=batch,
        rank=rank,
        targets=targets,
        checkpointing=ckpt,
    )
    assert step.engine == "transformers-eager"  # torch trains eagerly on a GPU
    return step.seconds


@pytest.mark.parametrize(("targets", "rank", "batch", "seq", "ckpt", "measured"), H100_STEPS)
def test_step_time_within_ten_percent_of_an_h100(
    targets: str, rank: int, batch: int, seq: int, ckpt: bool, measured: float
) -> None:
    seconds = predicted(targets, rank, batch, seq, ckpt)
    assert abs(seconds / measured - 1) < 0.10, (seconds, measured)


def test_the_training_factor_carries_over_between_runs() -> None:
    """Each run predicted from a factor fitted on the other two only: within 12%."""
    modelled = [predicted(*row[:5]) / TRAINING_SLOWDOWN for row in H100_STEPS]
    ratios = [row[5] / m for row, m in zip(H100_STEPS, modelled, strict=True)]
    assert pytest.approx(statistics.median(ratios), abs=0.005) == TRAINING_SLOWDOWN
    for held_out in range(len(H100_STEPS)):
        others = [r for i, r in enumerate(ratios) if i != held_out]
        guess = modelled[held_out] * statistics.median(others)
        assert abs(guess / H100_STEPS[held_out][5] - 1) < 0.12


def test_full_finetuning_and_checkpointing_cost_more_time() -> None:
    def step(**options: object) -> float:
        base = {"method": "lora", "seq": 1024, "batch": 4, "checkpointing": False}
        return training_step(LLAMA_2_7B, H100, **(base | options)).seconds  # type: ignore[arg-type]

    lora, full = step(), step(method="full")
    # LoRA skips the frozen weights' gradients (4 of full fine-tuning's 6 units of work) and
    # updates only its adapters, where AdamW reads and writes 16 bytes twice per parameter.
    assert full > 1.2 * lora
    assert step(checkpointing=True) > lora  # one more forward
    assert step(targets="all-linear", rank=64) > step(targets="q_proj,v_proj", rank=16)


def test_a_small_step_is_launch_bound_and_a_cpu_has_no_launch_cost() -> None:
    tiny = load_builtin().get("TinyLlama/TinyLlama-1.1B-Chat-v1.0").architecture
    small = training_step(tiny, H100, method="lora", seq=16, batch=1, checkpointing=False)
    # Three passes over 22 layers at the eager engine's fixed cost per layer: more than the work.
    assert small.launch_s > small.compute_s + small.memory_s
    assert small.seconds == pytest.approx(TRAINING_SLOWDOWN * small.launch_s)
    cpu = training_step(tiny, find_device("CPU-DDR4-DUAL"), method="lora", seq=16, batch=1)
    assert cpu.engine == "cpu" and cpu.launch_s == 0


def test_an_epoch_is_its_tokens_over_the_step_speed_on_every_device() -> None:
    one = finetune_memory(
        LLAMA_2_7B, H100, 1, method="lora", seq=512, batch=4, examples=1000, tokens_per_example=400
    )
    assert one.epoch_seconds == pytest.approx(1000 * 400 / one.step.tokens_per_s)
    two = finetune_memory(
        LLAMA_2_7B, H100, 2, method="lora", seq=512, batch=4, examples=1000, tokens_per_example=400
    )
    assert two.epoch_seconds == pytest.approx(one.epoch_seconds / 2)


def test_fit_finetune_shows_and_returns_the_step() -> None:
    runner = CliRunner()
    args = ["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "H100-80GB", "--finetune", "lora"]
    args += ["--context", "512", "--batch", "4", "--targets", "q_proj,v_proj"]
    args += ["--no-checkpointing", "--examples", "1000", "--tokens-per-example", "512"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["finetune"]
    step = data["step"]
    assert step["engine"] == "transformers-eager"
    assert step["seconds"] == pytest.approx(predicted("q_proj,v_proj", 16, 4, 512, False))
    assert data["epoch_seconds"] == pytest.approx(1000 * 512 / step["tokens_per_s"])
    shown = runner.invoke(app, args, env={"COLUMNS": "120"})
    assert shown.exit_code == 0, shown.output
    assert f"{step['seconds']:.3g} s" in shown.output and "transformers-eager" in shown.output
