"""`llmselect finetune`: fine-tune a candidate on the study's data, measured before and after."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmselect.cli.common import JsonFlag, progress_bars, run
from llmselect.present import present, render


def finetune(
    study_file: Annotated[
        Path, typer.Argument(help="Selection study (YAML) with a finetune_dataset.")
    ],
    model: Annotated[
        str,
        typer.Option("--model", help="A candidates.run id: its transformers folder is the base."),
    ],
    method: Annotated[
        str, typer.Option(help="lora, qlora (4-bit base; CUDA and bitsandbytes) or full.")
    ] = "lora",
    rank: Annotated[int, typer.Option(min=1, max=4096, help="LoRA rank.")] = 16,
    targets: Annotated[
        str, typer.Option(help="LoRA targets: attention, all-linear, or names (q_proj,v_proj).")
    ] = "all-linear",
    steps: Annotated[
        int | None, typer.Option(min=1, help="Optimizer steps (instead of --epochs).")
    ] = None,
    epochs: Annotated[
        float | None, typer.Option(min=0.001, help="Passes over the data (default 3).")
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(min=0.0, help="Peak learning rate (default 2e-4; 2e-5 with --method full)."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Examples per forward pass.")] = 8,
    grad_accum: Annotated[
        int, typer.Option("--grad-accum", min=1, help="Forward passes per optimizer step.")
    ] = 1,
    seed: Annotated[int | None, typer.Option(help="Seed (default: the study's).")] = None,
    checkpoint_every: Annotated[
        int, typer.Option("--checkpoint-every", min=1, help="Steps between checkpoints.")
    ] = 50,
    recompute: Annotated[
        bool | None,
        typer.Option(
            "--checkpointing/--no-checkpointing",
            help="Gradient checkpointing (default: on a GPU, off on a CPU).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default: STUDY_DIR/finetuned/NAME)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the last checkpoint in the output.")
    ] = False,
    curve: Annotated[
        bool,
        typer.Option("--curve", help="Also train on 12.5, 25 and 50% of the data: does more help?"),
    ] = False,
    against: Annotated[
        list[str] | None,
        typer.Option("--against", help="Another candidates.run id to measure as is (repeat)."),
    ] = None,
    evaluate: Annotated[
        bool, typer.Option("--eval/--no-eval", help="Measure before and after on the dataset.")
    ] = True,
    gpu: Annotated[
        str | None,
        typer.Option("--gpu", help="Hardware for the memory check (default: this machine)."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Train although the license gate stops (the card says so)."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune a candidate on the study's training data; measure it before and after.

    License gate first (exit 3 when it stops), then a memory check before any weights are
    loaded (exit 4 when it will not fit), training with checkpoints (--resume continues
    exactly), the adapter or weights with a model card, and paired scores with 95% CIs."""
    from llmselect.finetune.config import TrainConfig, TrainStep
    from llmselect.jobs.finetune import Events, FinetuneRequest
    from llmselect.jobs.finetune import finetune_study as run_finetune

    if steps is not None and epochs is not None:
        raise typer.BadParameter("give --steps or --epochs, not both", param_hint="--steps")
    try:
        config = TrainConfig.model_validate(
            {
                "method": method,
                "rank": rank,
                "targets": targets,
                "steps": steps,
                "epochs": epochs,
                "lr": lr,
                "batch": batch,
                "grad_accum": grad_accum,
                "checkpoint_every": checkpoint_every,
                "gradient_checkpointing": recompute,
            }
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc).splitlines()[-1].strip()) from None
    request = FinetuneRequest(
        study=study_file,
        model=model,
        config=config,
        out=out,
        seed=seed,
        resume=resume,
        curve=curve,
        gpu=gpu,
        force=force,
        against=against or [],
        evaluate=evaluate,
    )
    with progress_bars(as_json, fields=("loss",)) as bars:

        def step(s: TrainStep) -> None:
            loss = f"loss {s.loss:.4f}" if s.loss is not None else ""
            bars(f"train {s.run}", s.step, s.total, loss=loss)

        events = Events(
            gate=lambda g: bars.print(render(g)),
            preflight=lambda p: bars.print(render(p, model=model)),
            step=step,
            evaluation=lambda name, done, total: bars(f"eval {name}", done, total),
        )
        result = run(as_json, lambda: run_finetune(request, events))
    present(result, as_json=as_json)
