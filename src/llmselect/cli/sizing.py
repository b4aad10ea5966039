"""Sizing: `llmselect hardware`, `llmselect fit` (inference, or with --finetune training) and
`llmselect calibrate add/show` (measured runs that correct the speed estimates)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmselect.cli.common import JsonFlag, _prompt_tokens, _target_hardware, _tokens, run
from llmselect.errors import LLMSelectError
from llmselect.present import present

if TYPE_CHECKING:
    from llmselect.catalog import ModelCard
    from llmselect.sizing.engines import EngineLookup
    from llmselect.sizing.hardware import Device

calibrate_app = typer.Typer(
    help="Measured runs that correct the speed estimates.", no_args_is_help=True
)


def hardware(
    gpu: Annotated[
        str | None, typer.Option("--gpu", help="Show this profile instead, e.g. 'H100-80GB x2'.")
    ] = None,
    list_all: Annotated[bool, typer.Option("--list", help="Every known hardware profile.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """What this machine has (NVIDIA GPUs, CPU, RAM), or a named hardware profile."""
    from llmselect.sizing.detect import detect
    from llmselect.sizing.hardware import hardware_profiles

    if list_all or gpu:
        present(run(as_json, lambda: hardware_profiles(gpu)), as_json=as_json)
    else:
        present(detect(), as_json=as_json)


def fit(
    model_id: Annotated[str, typer.Argument(help="Model id from the catalog.")],
    gpu: Annotated[
        str | None,
        typer.Option(
            "--gpu", help="Hardware, e.g. H100-80GB, '2x RTX-4090' (default: this machine)."
        ),
    ] = None,
    context: Annotated[
        str, typer.Option(help="Tokens per sequence, prompt plus generated, e.g. 8k.")
    ] = "4096",
    batch: Annotated[int, typer.Option(min=1, max=65536, help="Sequences at once.")] = 1,
    prompt: Annotated[
        str | None, typer.Option(help="Prompt tokens for the time to first token (default: half).")
    ] = None,
    quant: Annotated[
        str | None,
        typer.Option(
            "--quant",
            "--dtype",
            help="bf16, fp8, int8, awq, q4_k_m, ... (default: best that fits).",
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(help="vllm, llama.cpp, transformers-compiled, ... (default: by quant)."),
    ] = None,
    kv_dtype: Annotated[str, typer.Option("--kv-dtype", help="fp16, bf16, fp8 or int8.")] = "fp16",
    price: Annotated[
        float | None, typer.Option("--price", help="Price per device-hour, for cost per 1M tokens.")
    ] = None,
    table: Annotated[
        bool, typer.Option("--table", help="Memory across precisions and context lengths.")
    ] = False,
    finetune: Annotated[
        str | None,
        typer.Option("--finetune", help="Training memory and time instead: full, lora or qlora."),
    ] = None,
    lora_rank: Annotated[int, typer.Option("--lora-rank", min=1, max=4096)] = 16,
    targets: Annotated[
        str,
        typer.Option(
            "--targets", help="LoRA targets: attention, all-linear, or names (q_proj,v_proj)."
        ),
    ] = "all-linear",
    checkpointing: Annotated[
        bool, typer.Option("--checkpointing/--no-checkpointing", help="Gradient checkpointing.")
    ] = True,
    precision: Annotated[
        str,
        typer.Option(
            "--precision", help="Full fine-tuning state: mixed (fp32 master), bf16 or fp32."
        ),
    ] = "mixed",
    optimizer: Annotated[
        str,
        typer.Option("--optimizer", help="adamw, adamw-8bit, paged-adamw-8bit or sgd."),
    ] = "adamw",
    examples: Annotated[
        int | None, typer.Option("--examples", min=1, help="Training examples, for epoch time.")
    ] = None,
    tokens_per_example: Annotated[
        int | None, typer.Option("--tokens-per-example", min=1, help="Average tokens per example.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Will it fit, how fast, at what cost (with --finetune: what training needs).

    Memory breakdown, largest context and batch, time to first token, tokens per second."""
    from llmselect.catalog import load_catalog
    from llmselect.sizing.engines import EngineLookup
    from llmselect.sizing.estimate import KV_BYTES, require_sizable

    context_tokens = _tokens("--context", context)
    prompt_tokens = _prompt_tokens(prompt, context_tokens)
    if price is not None and not (math.isfinite(price) and price >= 0):
        raise typer.BadParameter(
            f"{price} is not a price: give 0 or more per device-hour", param_hint="--price"
        )
    if kv_dtype not in KV_BYTES:
        raise typer.BadParameter(f"choose one of {', '.join(KV_BYTES)}", param_hint="--kv-dtype")
    catalog = run(as_json, load_catalog)
    card = run(as_json, lambda: catalog.get(model_id))
    run(as_json, lambda: require_sizable(card))
    device, count = run(as_json, lambda: _target_hardware(gpu))
    engines = run(as_json, lambda: EngineLookup(device, catalog, engine))
    if finetune:
        _fit_finetune(
            card,
            device,
            count,
            method=finetune,
            seq=context_tokens,
            batch=batch,
            rank=lora_rank,
            targets=targets,
            checkpointing=checkpointing,
            examples=examples,
            tokens_per_example=tokens_per_example,
            precision=precision,
            optimizer=optimizer,
            as_json=as_json,
        )
    elif table:
        _fit_table(card, device, count, engines, batch, kv_dtype, as_json)
    else:
        _fit_one(
            card,
            count,
            engines,
            quant=quant,
            context=context_tokens,
            batch=batch,
            prompt_tokens=prompt_tokens,
            kv_dtype=kv_dtype,
            price=price,
            as_json=as_json,
        )


def _fit_one(
    card: ModelCard,
    count: int,
    engines: EngineLookup,
    *,
    quant: str | None,
    context: int,
    batch: int,
    prompt_tokens: int | None,
    kv_dtype: str,
    price: float | None,
    as_json: bool,
) -> None:
    """`fit`: the precision asked for, or the best one that fits (exit 4 when none does)."""
    from llmselect.sizing.estimate import choose_fit

    choice = run(
        as_json,
        lambda: choose_fit(
            card,
            engines,
            count,
            quant=quant,
            context=context,
            batch=batch,
            prompt_tokens=prompt_tokens,
            kv_dtype=kv_dtype,
            price_per_device_hour=price,
        ),
    )
    present(choice, as_json=as_json)
    if not choice.fit.fits:
        raise typer.Exit(4)


def _fit_table(
    card: ModelCard,
    device: Device,
    count: int,
    engines: EngineLookup,
    batch: int,
    kv_dtype: str,
    as_json: bool,
) -> None:
    """`fit --table`: memory across precisions and context lengths."""
    from llmselect.sizing.estimate import FitGrid, fit_grid

    grid = run(as_json, lambda: fit_grid(card, device, count, engines, batch, kv_dtype))
    present(FitGrid(grid), as_json=as_json)


def _fit_finetune(
    card: ModelCard,
    device: Device,
    count: int,
    *,
    method: str,
    seq: int,
    batch: int,
    rank: int,
    targets: str,
    checkpointing: bool,
    examples: int | None,
    tokens_per_example: int | None,
    precision: str,
    optimizer: str,
    as_json: bool,
) -> None:
    """`fit --finetune`: what training needs (exit 4 when it does not fit)."""
    from llmselect.sizing.finetune import FinetunePlan, finetune_memory, target_modules

    if method not in ("full", "lora", "qlora"):
        raise typer.BadParameter("choose full, lora or qlora", param_hint="--finetune")
    try:
        target_modules(targets)
    except LLMSelectError as exc:
        raise typer.BadParameter(str(exc), param_hint="--targets") from None
    if precision not in ("mixed", "bf16", "fp32"):
        raise typer.BadParameter("choose mixed, bf16 or fp32", param_hint="--precision")
    if optimizer not in ("adamw", "adamw-8bit", "paged-adamw-8bit", "sgd"):
        raise typer.BadParameter(
            "choose adamw, adamw-8bit, paged-adamw-8bit or sgd", param_hint="--optimizer"
        )
    training = run(
        as_json,
        lambda: finetune_memory(
            card.architecture,
            device,
            count,
            method=method,  # type: ignore[arg-type]
            seq=seq,
            batch=batch,
            rank=rank,
            targets=targets,
            checkpointing=checkpointing,
            examples=examples,
            tokens_per_example=tokens_per_example,
            precision=precision,  # type: ignore[arg-type]
            optimizer=optimizer,  # type: ignore[arg-type]
        ),
    )
    present(
        FinetunePlan(model=card.id, device=device.id, count=count, memory=training), as_json=as_json
    )
    if not training.fits:
        raise typer.Exit(4)


@calibrate_app.command("add")
def calibrate_add(
    model_id: Annotated[str, typer.Option("--model", help="Model id from the catalog.")],
    gpu: Annotated[str, typer.Option("--gpu", help="Hardware it ran on, e.g. 'H100-80GB'.")],
    engine: Annotated[str, typer.Option(help="Engine profile id, e.g. vllm.")],
    quant: Annotated[str, typer.Option("--quant", help="Precision or GGUF type.")],
    tps: Annotated[
        float | None, typer.Option("--tps", help="Measured decode tokens/s per sequence.")
    ] = None,
    ttft: Annotated[
        float | None, typer.Option("--ttft", help="Measured seconds to 1st token.")
    ] = None,
    batch: Annotated[int, typer.Option(min=1)] = 1,
    context: Annotated[str, typer.Option(help="Tokens per sequence.")] = "4096",
    prompt: Annotated[str | None, typer.Option(help="Prompt tokens (default: half).")] = None,
    source: Annotated[str, typer.Option(help="Who or what measured it.")] = "manual entry",
    as_json: JsonFlag = False,
) -> None:
    """Record one measured run (decode tokens/s and/or time to first token)."""
    import datetime

    from llmselect.catalog import load_catalog
    from llmselect.sizing.calibration import Measurement, Recorded, record
    from llmselect.sizing.engines import get_engine
    from llmselect.sizing.quant import normalize

    if tps is None and ttft is None:
        raise typer.BadParameter("give --tps, --ttft or both", param_hint="--tps")
    card = run(as_json, lambda: load_catalog().get(model_id))
    device, count = run(as_json, lambda: _target_hardware(gpu))
    context_tokens = _tokens("--context", context)
    measurement = Measurement(
        model=card.id,
        device=device.id,
        devices=count,
        engine=run(as_json, lambda: get_engine(engine)).id,
        quant=run(as_json, lambda: normalize(quant)),
        batch=batch,
        context=context_tokens,
        prompt_tokens=_prompt_tokens(prompt, context_tokens) or max(1, context_tokens // 2),
        decode_tokens_per_s=tps,
        ttft_s=ttft,
        measured_at=datetime.datetime.now(datetime.UTC),
        source=source,
    )
    present(Recorded(measurement, record(measurement)), as_json=as_json)


@calibrate_app.command("bench")
def calibrate_bench(
    summary: Annotated[
        Path, typer.Argument(help="The summary.json that `llmselect bench --out DIR` wrote.")
    ],
    model_id: Annotated[str, typer.Option("--model", help="Model id from the catalog.")],
    gpu: Annotated[str, typer.Option("--gpu", help="Hardware it ran on, e.g. 'H100-80GB'.")],
    engine: Annotated[str, typer.Option(help="Engine profile id, e.g. vllm or llama.cpp.")],
    quant: Annotated[str, typer.Option("--quant", help="Precision or GGUF type it served.")],
    as_json: JsonFlag = False,
) -> None:
    """Record a bench's concurrency levels as measured runs: decode tokens/s per user and time
    to first token at each level's batch, so `fit` and `select` are calibrated by them."""
    from llmselect.jobs.bench import bench_calibration_runs
    from llmselect.sizing.calibration import record_all

    runs = run(
        as_json,
        lambda: bench_calibration_runs(
            summary, model=model_id, gpu=gpu, engine=engine, quant=quant
        ),
    )
    present(record_all(runs), as_json=as_json)


@calibrate_app.command("show")
def calibrate_show(as_json: JsonFlag = False) -> None:
    """Calibrated efficiencies per engine and device, from the recorded measurements."""
    from llmselect.catalog import load_catalog
    from llmselect.sizing.calibration import calibration_report

    present(run(as_json, lambda: calibration_report(load_catalog())), as_json=as_json)
