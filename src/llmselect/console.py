"""Rich rendering of catalog data for the terminal.

Every string that comes from a model card is wrapped in `Text`, never parsed as Rich markup:
a card cannot style, hide or fake output. Every piece of text printed, whatever its source,
goes through `printable` on its way out: a control character in a card, a config, a dataset or
a model's output is shown as its escape, never sent to the terminal to obey.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from llmselect.catalog import Catalog, IncompleteArchitecture, ModelCard, count_params
from llmselect.errors import UsageError
from llmselect.licensing import commercial_use
from llmselect.units import format_count, format_tokens, gib

if TYPE_CHECKING:
    # Types only: a catalog command must not pay for importing every stage.
    from llmselect.evaluation.results import EvalResults
    from llmselect.licensing import License
    from llmselect.licensing.openness import Openness
    from llmselect.licensing.verdicts import LicenseReport
    from llmselect.selection.result import Entry, Selection
    from llmselect.sizing.calibration import Calibration
    from llmselect.sizing.detect import LocalMachine
    from llmselect.sizing.engines import Engine
    from llmselect.sizing.estimate import CacheShare, Fit
    from llmselect.sizing.finetune import FinetuneMemory
    from llmselect.sizing.hardware import Device


_CONTROL_CHARS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
"""C0 and C1 controls but tab and newline, and the bidi overrides (which turn text around)."""
_CONTROLS = re.compile(f"[{_CONTROL_CHARS}]")
_CONTROLS_AND_NEWLINE = re.compile(f"[{_CONTROL_CHARS}\n]")


def printable(text: str, *, multiline: bool = False) -> str:
    """`text` with each control character written as its escape (`\\x1b`, `\\x9b`, `\\u202e`):
    ESC sequences can clear the screen, retitle the window or hide a line. Tab stays, and a
    newline where the field may hold several lines."""
    pattern = _CONTROLS if multiline else _CONTROLS_AND_NEWLINE
    return pattern.sub(lambda m: ascii(m.group())[1:-1], text)


def printable_json(text: str) -> str:
    """JSON text with the controls `json` leaves as they are (DEL, C1, bidi) as `\\uXXXX`: the
    same data, safe on a terminal. They can only be inside strings, where the escape is valid."""
    return _CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _printable_text(text: Text) -> Text:
    """A `Text` through `printable`, keeping its styles (each escape takes its character's)."""
    if not _CONTROLS.search(text.plain):
        return text
    cuts = sorted({i for m in _CONTROLS.finditer(text.plain) for i in (m.start(), m.end())})
    out = text.blank_copy()
    for piece in text.divide(cuts):
        if _CONTROLS.fullmatch(piece.plain):
            escaped = Text(printable(piece.plain), style=piece.style)
            for span in piece.spans:
                escaped.stylize(span.style)
            piece = escaped
        out.append_text(piece)
    return out


class _PrintableConsole(Console):
    """A Rich console that passes all text through `printable`: strings and `Text` before they
    are laid out (so an escape wraps like any text), and every text segment on its way out, in
    case a renderable drew text of its own (Rich's cursor and screen controls are segments of
    another kind, and pass)."""

    def render_str(self, *args: Any, **kwargs: Any) -> Text:
        return _printable_text(super().render_str(*args, **kwargs))

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        if isinstance(renderable, Text):
            renderable = _printable_text(renderable)
        for segment in super().render(renderable, options):
            if segment.control is None and _CONTROLS.search(segment.text):
                yield Segment(printable(segment.text, multiline=True), segment.style)
            else:
                yield segment


def console() -> Console:
    """A console for stdout, made per call so it sees the current terminal and COLUMNS."""
    return _PrintableConsole()


def err_console() -> Console:
    return _PrintableConsole(stderr=True)


SORT_KEYS = ("family", "params", "date", "name")
_COMMERCIAL_STYLE = {
    "allowed": "green",
    "conditional": "yellow",
    "forbidden": "red",
    "unknown": "dim",
}


def sort_cards(cards: list[ModelCard], key: str) -> list[ModelCard]:
    if key == "family":
        return sorted(cards, key=lambda c: (c.family, c.params or 0, c.id))
    if key == "params":
        return sorted(cards, key=lambda c: (c.params or 0, c.id))
    if key == "date":
        return sorted(cards, key=lambda c: (c.release_date is None, c.release_date, c.id))
    if key == "name":
        return sorted(cards, key=lambda c: c.id.lower())
    raise UsageError(f"cannot sort by {key!r}", hint=f"choose one of {', '.join(SORT_KEYS)}")


def _commercial(license_id: str) -> Text:
    verdict = commercial_use(license_id)
    return Text(verdict, style=_COMMERCIAL_STYLE[verdict])


def model_table(cards: list[ModelCard], *, title: str) -> Table:
    table = Table(title=title, header_style="bold")
    # Only the id may wrap: short columns squeezed to one letter per line are unreadable.
    table.add_column("id", overflow="fold", min_width=32)
    table.add_column("params", justify="right", no_wrap=True)
    moe = any(c.active_params for c in cards)
    if moe:  # parameters used per token, for mixture-of-experts models
        table.add_column("active", justify="right", no_wrap=True)
    table.add_column("ctx", justify="right", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("license", overflow="fold", max_width=20)
    table.add_column("commercial", no_wrap=True)
    table.add_column("released", no_wrap=True)
    for c in cards:
        active = [format_count(c.active_params) if c.active_params else ""] if moe else []
        table.add_row(
            Text(c.id),
            format_count(c.params),
            *active,
            format_tokens(c.architecture.context_length),
            Text(",".join(k.value for k in c.kind)),
            Text(c.licenses.weights),
            _commercial(c.licenses.weights),
            str(c.release_date or "?"),
        )
    return table


def _fields(rows: list[tuple[str, str | Text]], pairs_per_row: int = 1) -> Table:
    """A label/value grid; several pairs per row keep long, short-valued lists compact."""
    grid = Table.grid(padding=(0, 2))
    for _ in range(pairs_per_row):
        grid.add_column(style="bold")
        grid.add_column()
    cells = [(label, value if isinstance(value, Text) else Text(value)) for label, value in rows]
    for start in range(0, len(cells), pairs_per_row):
        chunk = cells[start : start + pairs_per_row]
        chunk += [("", Text(""))] * (pairs_per_row - len(chunk))
        grid.add_row(*[cell for pair in chunk for cell in pair])
    return grid


def model_detail(card: ModelCard, catalog: Catalog) -> RenderableType:
    arch = card.architecture
    overview = _fields(
        [
            ("name", card.display_name),
            ("family", card.family),
            ("organization", card.organization or "?"),
            ("released", str(card.release_date or "?")),
            ("kind", ", ".join(k.value for k in card.kind)),
            ("languages", ", ".join(card.languages) or "?"),
            ("quantization", card.quantization or "none (original weights)"),
            ("released as", card.weights_format or "16-bit"),
            ("reads", ", ".join(m.value for m in card.input_modalities)),
            ("origin", card.origin),
        ]
    )
    try:
        counted = count_params(arch)
        computed = f"{counted.total:,}"
        if arch.is_moe:
            computed += f" (active {counted.active:,})"
    except IncompleteArchitecture as exc:
        computed = str(exc)
    size = _fields(
        [
            ("stated", f"{card.params:,}" if card.params else "?"),
            ("active (MoE)", f"{card.active_params:,}" if card.active_params else "dense"),
            ("from architecture", computed),
        ]
    )
    defaults = type(arch).model_fields
    arch_rows = [
        (name, str(value))
        for name, value in arch.model_dump(exclude={"layer_types", "layer_pattern"}).items()
        if value is not None and name != "architectures" and value != defaults[name].default
    ]
    kinds = arch.layer_kinds()
    if len(set(kinds)) > 1:
        counts = {kind.value: kinds.count(kind) for kind in dict.fromkeys(kinds)}
        arch_rows.append(("layers", ", ".join(f"{n} {kind}" for kind, n in counts.items())))
    architecture = _fields([("class", arch.architectures or "?"), *arch_rows], pairs_per_row=2)

    lic = card.licenses
    data = lic.data
    data_rows: list[tuple[str, str | Text]] = [("disclosure", data.disclosure)]
    for ds in data.datasets:
        note = f" — {ds.note}" if ds.note else ""
        data_rows.append(
            (f"  {ds.stage}", Text(f"{ds.name} [{ds.license or 'license unknown'}]{note}"))
        )
    if data.note:
        data_rows.append(("note", data.note))
    license_rows: list[tuple[str, str | Text]] = [
        ("code", lic.code),
        ("weights", Text.assemble(lic.weights, " (commercial: ", _commercial(lic.weights), ")")),
        *data_rows,
    ]
    for change in lic.history:
        until = f"until {change.until}" if change.until else "until an unrecorded date"
        note = f" {change.note}" if change.note else ""
        license_rows.append(
            ("earlier", f"{change.component}: {change.license} {until} ({change.source}).{note}")
        )

    chain = catalog.lineage(card.id)
    lineage_text = Text(" → ".join(chain))
    if card.base_model and card.base_model not in catalog:
        lineage_text.append("  (base model not in catalog)", style="yellow")
    if card.base_model_relation:
        lineage_text.append(f"  [{card.base_model_relation.value}]", style="dim")

    parts: list[RenderableType] = [
        Panel(overview, title=Text(card.id), title_align="left"),
        Panel(size, title="parameters", title_align="left"),
        Panel(architecture, title="architecture", title_align="left"),
        Panel(_fields(license_rows), title="licenses", title_align="left"),
        Panel(lineage_text, title="lineage", title_align="left"),
    ]
    titles = {
        "leaderboard": "leaderboard scores (one harness for every model)",
        "published": "scores the vendor published (its own setup; not comparable across vendors)",
    }
    for origin, title in titles.items():
        rows = [b for b in card.benchmarks if b.origin == origin]
        if not rows:
            continue
        # One source (or one setup) for every row is said once, under the table.
        shared = {
            key: values.pop()
            for key, values in (
                ("source", {b.source for b in rows}),
                ("setup", {b.setup or "" for b in rows}),
            )
            if len(values) == 1
        }
        columns = [c for c in ("setup", "source") if c not in shared]
        bench = Table(header_style="bold", box=None)
        bench.add_column("benchmark", no_wrap=True)
        for col in ("value", "shots", "date", *columns):
            bench.add_column(col)
        for b in rows:
            cells = {"setup": Text(b.setup or ""), "source": Text(b.source)}
            bench.add_row(
                Text(b.name),
                f"{b.value:g}",
                "" if b.shots is None else str(b.shots),
                str(b.date or ""),
                *(cells[c] for c in columns),
            )
        notes = [Text(f"{key}: {value}") for key, value in shared.items() if value]
        parts.append(Panel(Group(bench, *notes), title=title, title_align="left"))
    source_rows = [
        (group, Text("\n".join(urls))) for group, urls in card.sources.model_dump().items() if urls
    ]
    parts.append(Panel(_fields(list(source_rows)), title="sources", title_align="left"))
    if card.notes:
        parts.append(Panel(Text(card.notes), title="notes", title_align="left"))
    return Group(*parts)


_VERDICT_STYLE = {
    "allowed": "green",
    "conditional": "yellow",
    "blocked": "bold red",
    "unknown": "magenta",
}


def license_detail(report: LicenseReport, open_: Openness) -> RenderableType:
    profile = report.profile
    uses = [name for name, on in profile.model_dump().items() if on is True]
    users = profile.monthly_active_users
    summary = Text.assemble(
        ("overall: ", "bold"),
        (report.overall, _VERDICT_STYLE[report.overall]),
        f"   profile: {', '.join(uses) or 'non-commercial'}",
        f", {users:,} monthly active users" if users is not None else "",
        f", fields: {', '.join(profile.field_of_use)}" if profile.field_of_use else "",
    )
    table = Table(header_style="bold", show_lines=True)
    table.add_column("component", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("license", no_wrap=True)
    table.add_column("what applies (clause)", ratio=3, overflow="fold")
    table.add_column("from", ratio=2)
    for name, component in report.components.items():
        # The same term owed by several ancestors is one row naming all of them.
        grouped: dict[tuple[str, str, str, str], list[str]] = {}
        for r in component.reasons:
            key = (r.verdict, r.license or "", r.message, _clause_ref(r.clause))
            grouped.setdefault(key, []).append(r.origin)
        for index, ((verdict, lic, message, clause), origins) in enumerate(grouped.items()):
            what = Text(message)
            if clause:
                what.append(f"\n{clause}", style="dim")
            table.add_row(
                Text(name if index == 0 else "", style="bold"),
                Text(verdict, style=_VERDICT_STYLE[verdict]),
                Text(lic),
                what,
                Text("\n".join(dict.fromkeys(origins))),
            )
    chain = Text(" → ".join(f"{s.id} [{s.weights_license or '?'}]" for s in report.lineage))
    parts: list[RenderableType] = [
        Panel(summary, title=Text(report.model), title_align="left"),
        table,
        Panel(chain, title="lineage (weights license)", title_align="left"),
    ]
    if report.flags:
        flags = Text("\n".join(f"• {f.kind}: {f.message}" for f in report.flags))
        parts.append(Panel(flags, title="flags", title_align="left", border_style="yellow"))
    mof = (
        f"Model Openness Framework: Class {open_.mof_class}"
        if open_.mof_class
        else ("Model Openness Framework: not Class III (code and weights are not all open)")
    )
    osaid = f"OSI Open Source AI Definition: {open_.osaid}"
    lines = [mof, osaid, *[f"  - {r}" for r in open_.reasons]]
    parts.append(Panel(Text("\n".join(lines)), title="openness", title_align="left"))
    return Group(*parts)


def _clause_ref(clause: str | None) -> str:
    """`§2 Additional Commercial Terms: 'If, on the...'` -> `§2 Additional Commercial Terms`."""
    if not clause:
        return ""
    head = clause.split(":", 1)[0].strip()
    return head if len(head) <= 80 else head[:77] + "..."


def license_terms(lic: License) -> RenderableType:
    head = _fields(
        [
            ("name", lic.name),
            ("url", lic.url or "?"),
            ("commercial use", _commercial(lic.id)),
            ("OSI-approved", "yes" if lic.osi_approved else "no"),
            ("open (MOF)", "yes" if lic.open else "no"),
            ("summary", lic.summary),
            ("text read at", lic.source),
        ]
    )
    table = Table(header_style="bold", show_lines=True, expand=True)
    for col in ("term", "when", "what it means", "clause"):
        table.add_column(col)
    for term in lic.terms:
        when = ", ".join(term.when) or "always"
        extra = []
        if term.limit is not None:
            extra.append(f"limit {term.limit:,}")
        if term.fields:
            extra.append("forbids " + ", ".join(term.fields))
        if term.policy:
            extra.append(f"policy: {term.policy}")
        meaning = term.summary + ("\n" + "; ".join(extra) if extra else "")
        table.add_row(Text(term.kind), Text(when), Text(meaning), Text(term.clause))
    parts: list[RenderableType] = [Panel(head, title=Text(lic.id), title_align="left")]
    parts.append(table if lic.terms else Text("No terms recorded.", style="dim"))
    return Group(*parts)


def license_table(licenses: list[License]) -> Table:
    table = Table(title=f"{len(licenses)} licenses", header_style="bold")
    for col in ("id", "name", "commercial", "OSI", "open", "terms"):
        table.add_column(col)
    for lic in licenses:
        table.add_row(
            Text(lic.id),
            Text(lic.name),
            _commercial(lic.id),
            "yes" if lic.osi_approved else "",
            "yes" if lic.open else "",
            str(len(lic.terms)),
        )
    return table


def device_table(devices: list[Device], count: int = 1) -> Table:
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


def fit_detail(fit: Fit, tried: list[Fit], *, chose: bool) -> RenderableType:
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


def fit_grid_table(fits: list[Fit]) -> Table:
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


def calibration_table(
    results: list[tuple[Engine, Calibration]], yours: int, shipped: int = 0
) -> Table:
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


def eval_summary(results: EvalResults) -> RenderableType:
    """Scores with their 95% intervals, then each paired comparison in a sentence."""
    metrics = sorted({m for model in results.models.values() for m in model.metrics})
    table = Table(title=f"{results.study}: {results.dataset.items} items", header_style="bold")
    table.add_column("model")
    for metric in metrics:
        table.add_column(f"{metric} (95% CI)", justify="right")
    # How long an item waited for its answer (a batch's items wait for all of it), and how many
    # items the run got through per second.
    table.add_column("p50 s", justify="right")
    table.add_column("items/s", justify="right")
    for name, model in results.models.items():
        cells = []
        for metric in metrics:
            ci = model.metrics.get(metric)
            cells.append(f"{ci.mean:.3f} ({ci.low:.3f}–{ci.high:.3f})" if ci else "")
        lat = model.latency
        if lat:
            cells += [f"{lat.p50_s:.3f}", f"{lat.items_per_s:.3g}" if lat.items_per_s else ""]
        table.add_row(Text(name), *cells)
    sentences = [Text("• " + c.sentence) for c in results.comparisons]
    warnings = [Text("! " + c.warning, style="yellow") for c in results.comparisons if c.warning]
    return Group(table, *sentences, *warnings)


_VERDICT_STYLE = {"allowed": "green", "conditional": "yellow", "blocked": "red", "unknown": "dim"}


def selection_summary(
    selection: Selection,
    *,
    show_all: bool = False,
    shortlist_rows: int = 25,
    excluded_rows: int = 10,
) -> RenderableType:
    """The recommendation, the ranked shortlist and why the other models are out.

    Over a large pool the terminal shows the first `shortlist_rows` ranked models and, when
    more than `excluded_rows` are out, the excluded ones counted by what keeps them out (a table
    of hundreds of rows is slow to draw and hard to read); `show_all` lists every model. The
    report and `--json` always hold every model."""
    rec = selection.recommendation
    lines: list[RenderableType] = [Text(rec.summary, style="bold" if rec.model else "red")]
    lines += [Text("  runner-up: " + r) for r in rec.runners_up]
    lines += [Text("  " + c, style="cyan") for c in rec.what_would_change]
    title = f"{selection.study} on {selection.hardware}"
    panel = Panel(Group(*lines), title=Text(title), border_style="green" if rec.model else "red")

    ranked = [e for e in selection.entries if e.rank is not None]
    shown = ranked if show_all else ranked[:shortlist_rows]
    table = Table(
        title="Shortlist",
        header_style="bold",
        caption="* published benchmark, not measured on your data   ★ Pareto front",
    )
    for name, justify in (
        ("#", "right"),
        ("model", "left"),
        ("params", "right"),
        ("quality", "right"),
        ("score", "right"),
        ("prec.", "left"),
        ("memory", "right"),
        ("TTFT s", "right"),
        ("tok/s", "right"),
        ("license", "left"),
    ):
        width = 18 if name == "model" else None
        table.add_column(name, justify=justify, min_width=width)  # type: ignore[arg-type]
    for e in shown:
        q = e.quality
        quality = f"{q.value * 100:.1f}{'*' if q.source == 'published' else ''}" if q else "–"
        verdict = e.verdict or "?"
        table.add_row(
            str(e.rank) + (" ★" if e.pareto else ""),
            Text(e.name + (" (demo)" if e.demo else "")),
            format_count(e.params),
            quality,
            f"{e.score:.2f}" if e.score is not None else "",
            e.fit.quant if e.fit else "",
            gib(e.fit.memory.total_bytes) if e.fit else "",
            f"{e.fit.estimates.ttft_s:.2g}" if e.fit else "",
            f"{e.fit.estimates.decode_tokens_per_s:.3g}" if e.fit else "",
            Text(verdict, style=_VERDICT_STYLE.get(verdict, "")),
        )
    parts: list[RenderableType] = [panel, table]
    if len(shown) < len(ranked):
        parts.append(
            Text(
                f"… and {len(ranked) - len(shown)} more qualify: `--all` lists them, as does "
                "the report"
            )
        )
    excluded = [e for e in selection.entries if e.rank is None]
    if show_all or len(excluded) <= excluded_rows:
        out = Table(title="Excluded", header_style="bold")
        out.add_column("model", overflow="fold")
        out.add_column("stage")
        out.add_column("reason")
        out.add_column("would qualify")
        for e in excluded:
            first = e.exclusions[0]
            more = f" (+{len(e.exclusions) - 1} more)" if len(e.exclusions) > 1 else ""
            out.add_row(
                Text(e.id), first.stage, Text(first.reason + more), Text(first.relax or "–")
            )
        if excluded:
            parts.append(out)
    else:
        parts += [_excluded_by_cause(excluded, len(selection.entries))]
        parts.append(Text("`--all` lists each excluded model with its reason, as does the report"))
    parts += [Text(f"{stage}: {what}", style="dim") for stage, what in selection.stages.items()]
    parts += [Text("! " + w, style="yellow") for w in selection.warnings]
    return Group(*parts)


_STAGE_ORDER = ("catalog", "license", "sizing", "targets", "evaluation")


def _excluded_by_cause(excluded: list[Entry], pool: int) -> Table:
    """One row per stage and key of the first exclusion (what keeps a model out first), with
    how many models it holds out and one of them as an example."""
    causes: dict[tuple[str, str], list[Entry]] = {}
    for e in excluded:
        first = e.exclusions[0]
        causes.setdefault((first.stage, first.key), []).append(e)
    table = Table(
        title=f"Excluded: {len(excluded)} of {pool}, by what keeps each out first",
        header_style="bold",
    )
    table.add_column("stage")
    table.add_column("what to change", overflow="fold")
    table.add_column("models", justify="right")
    table.add_column("for example", overflow="fold")
    order = sorted(causes.items(), key=lambda c: (_STAGE_ORDER.index(c[0][0]), -len(c[1])))
    for (stage, key), entries in order:
        example = entries[0]
        reason = example.exclusions[0].reason
        table.add_row(stage, Text(key), str(len(entries)), Text(f"{example.id}: {reason}"))
    return table


if TYPE_CHECKING:
    from llmselect.finetune.data_check import DataReport


def data_report(report: DataReport, *, examples: int = 5) -> RenderableType:
    """`llmselect data check`: verdict, one line per check, advice, and a few repeated rows."""
    style = {"ready": "green", "usable with warnings": "yellow", "not ready": "red"}[report.verdict]
    verdict = Text(report.verdict, style=f"bold {style}")
    facts: list[tuple[str, str | Text]] = [("verdict", verdict)]
    facts.append(("rows", f"{report.rows} ({report.usable_rows} usable: input and reference)"))
    dup = report.duplicates
    facts.append(
        (
            "duplicates",
            f"{len(dup.identical)} identical, {len(dup.near)} near (similarity >= "
            f"{report.near_threshold:g}), {len(dup.conflicting)} same input with another reference",
        )
    )
    leak = report.leakage
    if leak is not None:
        facts.append(
            (
                "leakage",
                f"{len(leak.leaked)} of {leak.eval_rows} evaluation rows are in training "
                f"(inputs: {leak.identical_input} identical, {leak.near_input} near; "
                f"input+reference: {leak.identical_example} identical, {leak.near_example} near)",
            )
        )
    else:
        facts.append(("leakage", "not checked (no --eval)"))
    n = report.lengths
    tokens = Text(
        f"min {n.min} · p50 {n.p50} · p90 {n.p90} · p99 {n.p99} · max {n.max}, by {n.counted_with}"
    )
    if n.limit is not None:
        source = "--max-tokens" if n.max_tokens else (n.context_source or "context")
        tokens.append(f"\n{len(n.over_limit_lines)} over {n.limit} ({source})")
    facts.append(("tokens", tokens))
    if report.labels is not None:
        counts = ", ".join(f"{label} {count}" for label, count in report.labels.counts.items())
        facts.append(("labels", Text(f"{counts} (majority {report.labels.majority_share:.0%})")))
    title = Text(f"data check: {report.train}")
    advice_style = {"blocker": ("✗ ", "red"), "warning": ("! ", "yellow"), "note": ("· ", "dim")}
    lines: list[RenderableType] = [_fields(facts)]
    for advice in report.advice:
        mark, colour = advice_style[advice.severity]
        lines.append(Text(mark + advice.message, style=colour))
    parts: list[RenderableType] = [Panel(Group(*lines), title=title, border_style=style)]

    repeats = [("identical", m) for m in dup.identical[:examples]]
    repeats += [("near", m) for m in dup.near[:examples]]
    repeats += [("other reference", m) for m in dup.conflicting[:examples]]
    if leak is not None:
        repeats += [("leak", m) for m in leak.leaked[:examples]]
    if repeats:
        table = Table(title="Repeated rows (first few of each kind)", header_style="bold")
        for name, justify in (
            ("kind", "left"),
            ("line", "right"),
            ("repeats line", "right"),
            ("on", "left"),
            ("similarity", "right"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for kind, m in repeats:
            where = "eval " if kind == "leak" else ""
            of = "train " if kind == "leak" else ""
            table.add_row(kind, f"{where}{m.line}", f"{of}{m.of_line}", m.on, f"{m.similarity:.2f}")
        parts.append(table)
    return Group(*parts)


# --------------------------------------------------------------------------- fine-tuning

if TYPE_CHECKING:
    from llmselect.finetune.curve import BeforeAfter, LearningCurve
    from llmselect.finetune.gate import GateResult
    from llmselect.finetune.preflight import Preflight
    from llmselect.finetune.result import FinetuneResult

_GATE_STYLE = {"pass": "green", "warn": "yellow", "stop": "bold red"}


def finetune_gate(gate: GateResult) -> RenderableType:
    """The license gate: stop reasons, inherited duties and notes, before any training."""
    head = Text.assemble(
        ("license gate: ", "bold"),
        (gate.decision, _GATE_STYLE[gate.decision]),
        f"   verdict for the base model: {gate.verdict}",
    )
    if gate.forced:
        head.append("\noverridden with --force (the model card records it)", style="bold red")
    lines: list[RenderableType] = [head]
    for r in gate.stops:
        lines.append(Text(f"✗ {r.message} ({r.license or '?'}, from {r.origin})", style="red"))
    # One line per duty: a license that states it in several clauses says it once here.
    duties = {(o.duty, o.license, o.origin, o.when) for o in gate.obligations}
    for o in gate.obligations:
        if (o.duty, o.license, o.origin, o.when) not in duties:
            continue
        duties.discard((o.duty, o.license, o.origin, o.when))
        when = ", when distributed" if o.when != "always" else ""
        text = f"! {o.duty} ({o.license or '?'}, from {o.origin}{when})"
        lines.append(Text(text, style="yellow"))
    lines += [Text(f"· {note}", style="dim") for note in gate.notes]
    style = "red" if gate.decision == "stop" else _GATE_STYLE[gate.decision]
    return Panel(Group(*lines), title=Text(gate.model), title_align="left", border_style=style)


def finetune_preflight(check: Preflight, model: str) -> RenderableType:
    """Memory needed against memory available, and the time and cost the estimate gives."""
    run = Text(
        f"{check.examples} examples, {check.steps} steps, batch {check.batch}, "
        f"longest sequence {check.seq} tokens; trains on {check.trains_on}"
    )
    if check.estimated_seconds is not None:
        run.append(f"\nestimated time on {check.hardware}: {check.estimated_seconds:,.1f} s")
        if check.estimated_cost is not None:
            run.append(f" (about {check.estimated_cost:,.2f} at the study's price per GPU-hour)")
    for note in check.notes:
        run.append(f"\n· {note}", style="dim")
    detail = finetune_detail(model, check.hardware, 1, check.memory)
    return Group(detail, Panel(run, title="memory pre-flight", title_align="left"))


def _ci_cell(interval: Any) -> str:
    return f"{interval.mean:.3f} ({interval.low:.3f}–{interval.high:.3f})"


def finetune_before_after(evaluation: BeforeAfter) -> RenderableType:
    metrics = list(evaluation.after.scores)
    table = Table(
        title=f"before and after, {evaluation.items} evaluation items", header_style="bold"
    )
    table.add_column("model")
    for metric in metrics:
        table.add_column(Text(f"{metric} (95% CI)"), justify="right")
    for score in [evaluation.before, evaluation.after, *evaluation.others]:
        cells = [_ci_cell(score.scores[m]) if m in score.scores else "" for m in metrics]
        table.add_row(Text(score.model), *cells)
    lines: list[RenderableType] = [table]
    lines += [Text("• " + c.sentence) for c in evaluation.comparisons]
    if evaluation.warning:
        lines.append(Text("! " + evaluation.warning, style="yellow"))
    return Group(*lines)


def finetune_curve(curve: LearningCurve) -> RenderableType:
    table = Table(title="learning curve", header_style="bold")
    table.add_column("examples", justify="right")
    table.add_column(Text(f"{curve.metric} (95% CI)"), justify="right")
    table.add_row("0 (base)", _ci_cell(curve.base))
    for point in curve.points:
        table.add_row(f"{point.examples:,}", _ci_cell(point.score))
    style = {"likely": "green", "unlikely": "yellow", "unclear": "cyan"}[curve.outlook]
    return Group(table, Text(curve.verdict, style=style))


def finetune_summary(result: FinetuneResult) -> RenderableType:
    """What training did, what it bought, and where the files are."""
    t = result.training
    losses = t.losses
    trained = Text(
        f"{t.method}: {t.steps} steps on {t.examples} examples, "
        f"{t.trainable_params:,} trained parameters, {t.seconds:,.1f} s on {t.device}"
    )
    if losses:
        trained.append(f"; training loss {losses[0]:.4f} → {losses[-1]:.4f}")
    if t.resumed_from is not None:
        trained.append(f" (resumed from step {t.resumed_from})")
    estimate = result.preflight.estimated_seconds
    if estimate and t.resumed_from is None and t.seconds > 3 * estimate:
        # The step model counts work, traffic and (on a GPU) launches, not the loop's own costs.
        trained.append(
            f"\nit took {t.seconds / estimate:,.0f}× the pre-flight estimate of "
            f"{estimate:.2g} s, which counts the steps' arithmetic, memory traffic and, on a "
            "GPU, kernel launches: on a model this small, torch's and the training loop's own "
            "costs per step dominate"
        )
    parts: list[RenderableType] = [Panel(trained, title=Text(result.output), title_align="left")]
    if result.evaluation is not None:
        parts.append(finetune_before_after(result.evaluation))
    if result.curve is not None:
        parts.append(finetune_curve(result.curve))
    parts += [Text("! " + w, style="yellow") for w in result.warnings]
    parts += [Text(f"wrote {path}") for path in result.files.values()]
    return Group(*parts)
