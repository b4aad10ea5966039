"""Licenses in the terminal: a model's verdicts through its lineage, one license's terms, the
list of licenses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from llmselect.present.layout import commercial as _commercial
from llmselect.present.layout import fields as _fields

if TYPE_CHECKING:
    from llmselect.licensing import License
    from llmselect.licensing.knowledge import LicenseList
    from llmselect.licensing.verdicts import LicenseCheck

_VERDICT_STYLE = {
    "allowed": "green",
    "conditional": "yellow",
    "blocked": "bold red",
    "unknown": "magenta",
}


def license_detail(report: LicenseCheck) -> RenderableType:
    open_ = report.openness
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


def license_table(listing: LicenseList) -> Table:
    licenses = listing.licenses
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
