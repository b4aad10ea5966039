"""The catalog in the terminal: a table of models, one model in full, the catalog's check, and
what an import or a removal did."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from llmselect.catalog import IncompleteArchitecture, count_params
from llmselect.present.layout import commercial as _commercial
from llmselect.present.layout import fields as _fields
from llmselect.units import format_count, format_tokens

if TYPE_CHECKING:
    from llmselect.catalog import CardList, Catalog, ModelCard
    from llmselect.catalog.check import CatalogCheck
    from llmselect.catalog.user import Imported, Removed


def card_list(listing: CardList) -> Table:
    cards = listing.cards
    if listing.searched is None:
        title = f"{len(cards)} models"
    else:
        title = f"{len(cards)} of {listing.searched} models match"
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


def catalog_check(check: CatalogCheck) -> RenderableType:
    lines = []
    for f in check.findings:
        style = "red" if f.level == "error" else "yellow"
        lines.append(Text.assemble((f"{f.level:7} ", style), (f.model, "bold"), f"  {f.message}"))
    warnings = len(check.findings) - check.errors
    lines.append(
        Text(f"{check.checked} models checked: {check.errors} errors, {warnings} warnings")
    )
    return Group(*lines)


def imported(done: Imported) -> RenderableType:
    lines: list[RenderableType] = [model_detail(done.card, done.catalog)]
    lines += [Text.assemble(("replaced", "yellow"), f" {old}") for old in done.replaced]
    lines.append(Text.assemble(("saved", "green"), f" {done.saved}"))
    return Group(*lines)


def removed(done: Removed) -> Text:
    return Text(f"removed {done.model_id} ({done.file})")
