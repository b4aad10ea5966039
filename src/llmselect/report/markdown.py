"""The Markdown report: the same decision as the HTML one, for a wiki, a ticket or a diff.

Strings from model cards, datasets and outputs are escaped so that a renderer shows them as
text: no HTML tag, link, table break or code span can come from them.
"""

from __future__ import annotations

import re

from llmselect.selection.result import Entry, Selection
from llmselect.units import format_count

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")


def md(text: object) -> str:
    """Escape Markdown and HTML syntax; keep the text on one line (tables)."""
    flat = " ".join(str(text).split())
    return _SPECIAL.sub(r"\\\1", flat.replace("&", "&amp;"))


def _num(value: float | None, fmt: str = ".3g") -> str:
    return format(value, fmt) if value is not None else "–"


def _quality(e: Entry) -> str:
    if not e.quality:
        return "–"
    text = f"{e.quality.value * 100:.1f}"
    if e.quality.low is not None and e.quality.high is not None:
        text += f" ({e.quality.low * 100:.1f}–{e.quality.high * 100:.1f})"
    return text + (" *published*" if e.quality.source == "published" else "")


def render_markdown(s: Selection) -> str:
    out = [f"# Model selection: {md(s.study)}", ""]
    if s.description:
        out += [md(s.description), ""]
    out += [
        f"Target hardware {md(s.hardware)}, context {s.targets.context} tokens, "
        f"{s.targets.concurrent_users} concurrent user(s). "
        f"Written {s.reproducibility.created:%Y-%m-%d %H:%M} UTC by llmselect "
        f"{s.reproducibility.llmselect}.",
        "",
        "## Recommendation",
        "",
        f"**{md(s.recommendation.summary)}**",
        "",
    ]
    out += [f"- Runner-up: {md(r)}" for r in s.recommendation.runners_up]
    heading = "What would change the decision" if s.recommendation.model else "What to relax"
    if s.recommendation.what_would_change:
        out += ["", f"{heading}:", ""] + [f"- {md(c)}" for c in s.recommendation.what_would_change]
    out += [f"\n> ⚠ {md(w)}" for w in s.warnings]

    ranked = [e for e in s.entries if e.rank is not None]
    out += [
        "",
        "## Shortlist",
        "",
        "Quality is measured on your data unless marked *published* (a leaderboard average, "
        "not comparable). ★ marks the Pareto front.",
        "",
        "| # | model | params | quality (95% CI) | score | precision | memory GiB | TTFT s "
        "| tokens/s per user | license |",
        "|---:|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for e in ranked:
        assert e.fit is not None
        out.append(
            f"| {e.rank}{' ★' if e.pareto else ''} | {md(e.id)}{' (demo model)' if e.demo else ''} "
            f"| {format_count(e.params)} | {_quality(e)} "
            f"| {_num(e.score, '.2f')} | {md(e.fit.quant)} | "
            f"{e.fit.memory.total_bytes / 2**30:.1f} | {_num(e.fit.estimates.ttft_s, '.2g')} "
            f"| {_num(e.fit.estimates.decode_tokens_per_s)} | {e.verdict} |"
        )
    if not ranked:
        out.append("\nNo model meets every constraint.")

    for f in s.finetuned:
        out += [
            "",
            f"## Fine-tuning: {md(f.base)} → {md(f.tuned)} ({md(f.method)}, {f.examples} examples)",
            "",
            f"| | {md(f.metric)} | 95% CI | n |",
            "|---|---:|---:|---:|",
            f"| before | {f.before.value:.3f} | {f.before.low:.3f}–{f.before.high:.3f} "
            f"| {f.before.n} |",
            f"| after | {f.after.value:.3f} | {f.after.low:.3f}–{f.after.high:.3f} | {f.after.n} |",
            "",
            md(f.comparison.get("sentence", "")),
        ]
        for sample in f.samples:
            out += [
                "",
                f"- prompt: {md(sample['prompt'])}",
                f"  - before: {md(sample['before'])}",
                f"  - after: {md(sample['after'])} (reference: {md(sample['reference'])})",
            ]
        if f.curve:
            out += ["", "| examples | value | 95% CI |", "|---:|---:|---:|"]
            out += [
                f"| {int(p['examples'])} | {p['value']:.3f} | {p['low']:.3f}–{p['high']:.3f} |"
                for p in f.curve
            ]
            if f.curve_verdict:
                out += ["", md(f.curve_verdict)]

    if s.comparisons:
        out += ["", "## Are the differences real?", ""]
        for comparison in s.comparisons:
            warning = comparison.get("warning")
            note = f" ⚠ {md(warning)}" if warning else ""
            out.append(f"- {md(comparison['sentence'])}{note}")

    excluded = [e for e in s.entries if e.rank is None]
    if excluded:
        out += ["", "## Excluded models", "", "| model | stage | reason | would qualify |"]
        out.append("|---|---|---|---|")
        for e in excluded:
            for x in e.exclusions:
                out.append(f"| {md(e.id)} | {x.stage} | {md(x.reason)} | {md(x.relax or '–')} |")

    out += ["", "## Each model in detail"]
    for e in ranked + [e for e in excluded if e.metrics]:
        out += ["", f"### {md(e.name)} ({md(e.id)})", ""]
        if e.demo:
            out.append("*A small demo model built on this machine.*\n")
        if e.license:
            out.append(f"License: **{e.verdict}**.")
            for name in ("weights", "code", "data"):
                c = e.license.components[name]
                reasons = "; ".join(md(r.message) for r in c.reasons)
                out.append(f"- {name}: {c.verdict} — {reasons}")
            chain = " ← ".join(
                md(step.id) + (f" ({md(step.relation)})" if step.relation else "")
                for step in e.license.lineage
            )
            out.append(f"- lineage: {chain}")
            out += [f"- duty: {md(d)}" for d in e.duties]
        if e.fit:
            m = e.fit.memory
            out.append(
                f"- memory at {md(e.fit.quant)}: {m.total_bytes / 2**30:.1f} of "
                f"{m.available_bytes / 2**30:.0f} GiB (weights {m.weights_bytes / 2**30:.1f}, "
                f"KV cache {m.kv_cache_bytes / 2**30:.1f}, activations "
                f"{m.activations_bytes / 2**30:.1f}, overhead {m.overhead_bytes / 2**30:.1f})"
            )
            out.append(
                f"- estimated: time to first token {_num(e.fit.estimates.ttft_s, '.2g')} s, "
                f"{_num(e.fit.estimates.decode_tokens_per_s)} tokens/s per user"
            )
        if e.latency:
            out.append(
                f"- measured on this machine: p50 {_num(e.latency.p50_s, '.2g')} s, "
                f"p95 {_num(e.latency.p95_s, '.2g')} s per answer, "
                f"{_num(e.latency.tokens_per_s)} tokens/s"
            )
        for sc in e.metrics:
            out.append(
                f"- {md(sc.name)}: {sc.value:.3f} (95% CI {sc.low:.3f}–{sc.high:.3f}, n={sc.n})"
            )
        for example in e.examples:
            out.append(
                f"- item {md(example['item_id'])}: answered {md(example['output'])} "
                f"(reference: {md(example['reference'])})"
            )

    r = s.reproducibility
    out += [
        "",
        "## How this was decided",
        "",
        *[f"- {stage}: {md(what)}" for stage, what in s.stages.items()],
        "",
        "## Reproducibility",
        "",
        f"- llmselect {r.llmselect}, Python {r.python}, {md(r.platform)}",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in r.packages.items()),
        f"- machine: {md(r.machine)}",
        f"- study file: {md(r.study_file)} (sha256 {r.study_sha256})",
        f"- dataset sha256: {r.dataset_sha256 or 'no dataset'}",
        f"- seed: {r.seed}",
        "",
        "~~~~yaml",
        r.study_text.replace("~~~~", "~ ~ ~ ~"),
        "~~~~",
        "",
    ]
    return "\n".join(out)
