"""Sizing in the terminal: hardware, fit, training memory and calibration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from llmselect.present.layout import fields as _fields
from llmselect.units import gib

if TYPE_CHECKING:
    from llmselect.sizing.calibration import CalibrationReport, Recorded, RecordedRuns
    from llmselect.sizing.detect import LocalMachine
    from llmselect.sizing.estimate import CacheShare, FitChoice, FitGrid
    from llmselect.sizing.finetune import FinetuneMemory, FinetunePlan
    from llmselect.sizing.hardware import DeviceList


def device_table(listing: DeviceList) -> Table:
    devices, count = listing.devices, listing.count
    title = f"{len(devices)} hardware profiles" if len(devices) > 1 else ""
    table = Table(title=title, header_style="bold")
    for col, justify in (
        ("id", "left"),
        ("name", "left"),
        ("kind", "left"),
        ("memory GiB", "right"),
        ("bandwidth GB/s", "right"),
        ("bf16 TFLOP/s", "right"),
        ("int8 TOP/s", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for d in devices:
        prefix = f"{count}x " if count > 1 else ""
        table.add_row(
            Text(prefix + d.id),
            Text(d.name),
            d.kind,
            gib(d.memory_bytes * count),
            f"{d.memory_bandwidth * count / 1e9:,.0f}",
            f"{d.bf16_flops * count / 1e12:,.1f}",
            f"{d.int8_ops * count / 1e12:,.0f}" if d.int8_ops else "",
        )
    return table


def machine_detail(machine: LocalMachine) -> RenderableType:
    rows: list[tuple[str, str | Text]] = [
        ("CPU", machine.cpu),
        ("cores", str(machine.cores)),
        ("RAM", f"{gib(machine.ram_bytes)} GiB"),
    ]
    for g in machine.gpus:
        profile = g.profile or "no matching profile (use --gpu)"
        rows.append((f"GPU {g.index}", f"{g.name}, {gib(g.memory_bytes)} GiB → {profile}"))
    if not machine.gpus:
        rows.append(("GPU", "none found"))
    for note in machine.notes:
        rows.append(("note", note))
    return Panel(_fields(rows), title="this machine", title_align="left")


def _cache_share(share: CacheShare) -> str:
    if not share.tokens:
        return f"{gib(share.bytes)} GiB (a fixed state per sequence)"
    state = " and a fixed state" if share.state_bytes else ""
    return f"{gib(share.bytes)} GiB ({share.tokens:,} tokens kept{state})"


def fit_detail(choice: FitChoice) -> RenderableType:
    fit, tried, chose = choice.fit, choice.tried, choice.chosen
    m = fit.memory
    verdict = Text("fits", style="green") if fit.fits else Text("does not fit", style="bold red")
    margin = f"{gib(abs(fit.margin_bytes))} GiB {'free' if fit.fits else 'short'} per device"
    active = f", {fit.active_params / 1e9:,.1f}B active" if fit.active_params < fit.params else ""
    head = Text.assemble(
        verdict,
        f" — {fit.quant} on {fit.hardware} with {fit.engine}, context {fit.context:,}, "
        f"batch {fit.batch}: {margin}\n{fit.params / 1e9:,.1f}B parameters{active}",
    )
    limit = " (the model's own limit)" if fit.max_context == fit.model_context else ""
    memory_rows: list[tuple[str, str | Text]] = [
        ("weights", f"{gib(m.weights_bytes)} GiB"),
        ("KV cache", f"{gib(m.kv_cache_bytes)} GiB"),
        *(
            (f"  {share.layers} {share.kind} layers", _cache_share(share))
            for share in m.kv_cache_by_kind
            if len(m.kv_cache_by_kind) > 1 or share.kind != "full"
        ),
        ("activations, logits", f"{gib(m.activations_bytes)} GiB"),
        ("engine overhead", f"{gib(m.overhead_bytes)} GiB"),
        ("total", f"{gib(m.total_bytes)} GiB of {gib(m.available_bytes)} GiB"),
        ("largest context", f"{fit.max_context:,} tokens at batch {fit.batch}{limit}"),
        ("largest batch", f"{fit.max_batch:,} at context {fit.context:,}"),
    ]
    e = fit.estimates
    speed_rows: list[tuple[str, str | Text]] = [
        ("time to first token", f"{e.ttft_s * 1000:,.0f} ms"),
        ("tokens/s per sequence", f"{e.decode_tokens_per_s:,.1f}"),
        ("tokens/s in total", f"{e.total_tokens_per_s:,.1f}"),
        ("decode is", f"{e.decode_bound}-bound (compute-bound from batch ~{e.knee_batch})"),
    ]
    if e.cost_per_million_tokens is not None:
        speed_rows.append(("cost", f"{e.cost_per_million_tokens:,.2f} per million tokens"))
    parts: list[RenderableType] = [
        Panel(head, title=Text(fit.model), title_align="left"),
        Panel(_fields(memory_rows), title="memory per device", title_align="left"),
        Panel(_fields(speed_rows), title="estimated speed", title_align="left"),
    ]
    notes = list(fit.warnings)
    if fit.offload:
        o = fit.offload
        notes.append(
            f"with llama.cpp offload: {o.gpu_layers} of {o.layers} layers on the GPU, "
            f"{gib(o.host_bytes)} GiB in system RAM, about {o.decode_tokens_per_s:,.1f} tokens/s "
            f"(system memory at {o.host_bandwidth / 1e9:,.0f} GB/s effective)"
        )
    if chose and len(tried) > 1:
        notes.append(
            "tried, best quality first: "
            + ", ".join(
                f"{t.quant} ({'fits' if t.fits else gib(t.memory.total_bytes) + ' GiB'})"
                for t in tried
            )
        )
    if fit.ppl_increase_7b is not None:
        notes.append(
            f"{fit.quant} trades +{fit.ppl_increase_7b} perplexity (LLaMA-7B, llama.cpp's table)"
        )
    if notes:
        parts.append(Panel(Text("\n".join(notes)), title="notes", title_align="left"))
    return Group(*parts)


def fit_grid_table(grid: FitGrid) -> Table:
    fits = grid.fits
    contexts = sorted({f.context for f in fits})
    table = Table(
        title=f"{fits[0].model} on {fits[0].hardware}: GiB per device (✗ does not fit)",
        header_style="bold",
    )
    table.add_column("precision")
    table.add_column("engine")
    for context in contexts:
        table.add_column(f"{context:,} tok", justify="right")
    for quant in dict.fromkeys(f.quant for f in fits):
        row = [f for f in fits if f.quant == quant]
        cells = [
            Text(
                gib(f.memory.total_bytes) + ("" if f.fits else " ✗"), style="" if f.fits else "red"
            )
            for f in row
        ]
        table.add_row(quant, row[0].engine, *cells)
    return table


def finetune_plan(plan: FinetunePlan) -> RenderableType:
    return finetune_detail(plan.model, plan.device, plan.count, plan.memory)


def finetune_detail(model: str, device: str, count: int, m: FinetuneMemory) -> RenderableType:
    verdict = Text("fits", style="green") if m.fits else Text("does not fit", style="bold red")
    where = f"{count}x {device}" if count > 1 else device
    head = Text.assemble(verdict, f" — {m.method} fine-tuning on {where}")
    rows: list[tuple[str, str | Text]] = [
        ("trainable parameters", f"{m.trainable_params:,}"),
        ("frozen base weights", f"{gib(m.base_weights_bytes)} GiB"),
        ("trained weights, grads, Adam", f"{gib(m.trainable_state_bytes)} GiB"),
        ("activations", f"{gib(m.activations_bytes)} GiB"),
        ("logits and their gradient", f"{gib(m.logits_bytes)} GiB"),
        ("overhead", f"{gib(m.overhead_bytes)} GiB"),
        ("total", f"{gib(m.total_bytes)} GiB of {gib(m.available_bytes)} GiB per device"),
    ]
    step = m.step
    rows.append(
        (
            "one step",
            f"{step.seconds:.3g} s, {step.tokens_per_s:,.0f} tokens/s "
            f"({step.engine}: compute {step.compute_s:.2g} s, memory {step.memory_s:.2g} s, "
            f"launches {step.launch_s:.2g} s)",
        )
    )
    if m.epoch_seconds is not None:
        rows.append(("one epoch", f"{m.epoch_seconds / 3600:,.2f} h"))
    return Group(
        Panel(head, title=Text(model), title_align="left"),
        Panel(_fields(rows), title="training memory per device and time", title_align="left"),
    )


def recorded(done: Recorded) -> Text:
    return Text(f"recorded in {done.file}")


def recorded_runs(done: RecordedRuns) -> RenderableType:
    table = Table(title=f"recorded in {done.file}", header_style="bold")
    for col in ("model", "device", "engine", "precision", "batch", "prompt", "tokens/s", "TTFT s"):
        table.add_column(col)
    for m in done.measurements:
        table.add_row(
            Text(m.model),
            Text(f"{m.devices}x {m.device}" if m.devices > 1 else m.device),
            Text(m.engine),
            Text(m.quant),
            str(m.batch),
            f"{m.prompt_tokens:,}",
            f"{m.decode_tokens_per_s:.3g}" if m.decode_tokens_per_s else "",
            f"{m.ttft_s:.3g}" if m.ttft_s else "",
        )
    return table


def calibration_table(report: CalibrationReport) -> Table:
    results, yours, shipped = report.calibrations, report.measurements, report.shipped
    title = f"calibration from {yours} of your measurements"
    if shipped:
        title += f" and {shipped} shipped with llmselect (used where you have none)"
    table = Table(title=title, header_style="bold")
    columns = ("engine", "device", "decode efficiency", "prefill efficiency")
    for col in (*columns, "ms per layer, decode / prefill", "samples", "from"):
        table.add_column(col)
    for base, c in results:
        table.add_row(
            Text(c.engine),
            Text(c.device),
            f"{base.bandwidth_efficiency:.2f} → {c.bandwidth_efficiency:.2f}",
            f"{base.compute_efficiency:.2f} → {c.compute_efficiency:.2f}",
            " / ".join(
                f"{cost * 1e3:.2f}"
                for cost in (c.decode_overhead_per_layer_s, c.prefill_overhead_per_layer_s)
            ),
            f"{c.decode_samples} decode, {c.prefill_samples} prefill",
            "llmselect" if c.shipped else "yours",
        )
    return table
