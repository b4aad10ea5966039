"""The Markdown report: the same decision as the HTML one, for a wiki, a ticket or a diff.

Strings from model cards, datasets and outputs go through `md`, which escapes them so that a
renderer shows them as text: no HTML tag, link, table break or code span can come from them;
the whole document then goes through `printable`, so no control character reaches the file.
"""

from __future__ import annotations

import re
from functools import lru_cache

from llmselect.licensing.verdicts import Component
from llmselect.present.text import printable
from llmselect.report.html import grouped_reasons, significance_matrices
from llmselect.report.svg import SOURCE_LABEL
from llmselect.selection.result import Entry, Finetuned, Selection
from llmselect.selection.sentences import most_users
from llmselect.units import format_count, gib, number, points

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")
"""Characters with a meaning anywhere in a line (emphasis, code, links, tables, HTML)."""
_LINE_START = re.compile(r"^(\d{1,9})?([-=.)])(?=\s|$|[-=])")
"""What makes a list item or a heading underline when it starts a line."""
COMPONENTS: tuple[Component, ...] = ("weights", "code", "data")


def md(text: object) -> str:
    """Escape Markdown and HTML syntax, and keep the text on one line (it may sit in a table)."""
    return _md(str(text))


@lru_cache(maxsize=4096)  # license terms repeat across hundreds of models: escaped once each
def _md(text: str) -> str:
    flat = " ".join(text.split())
    escaped = _SPECIAL.sub(r"\\\1", flat.replace("&", "&amp;"))
    return _LINE_START.sub(lambda m: (m.group(1) or "") + "\\" + m.group(2), escaped)


def _params(value: int | None) -> str:
    return format_count(value) if value is not None else "–"


def _quality(e: Entry) -> str:
    if not e.quality:
        return "–"
    text = points(e.quality.value)
    if e.quality.low is not None and e.quality.high is not None:
        text += f" ({points(e.quality.low)}–{points(e.quality.high)})"
    return text


def _recommendation(s: Selection) -> list[str]:
    r = s.recommendation
    out = ["## Recommendation", "", f"**{md(r.summary)}**", ""]
    if r.runners_up:
        out += ["Runners-up:", ""] + [f"- {md(x)}" for x in r.runners_up] + [""]
    if r.what_would_change:
        heading = "What would change the decision" if r.model else "What to relax"
        out += [f"{heading}:", ""] + [f"- {md(c)}" for c in r.what_would_change] + [""]
    out += [f"> ⚠ {md(w)}\n" for w in s.warnings]
    return out


def _shortlist(ranked: list[Entry]) -> list[str]:
    out = [
        "## Shortlist",
        "",
        "Models that meet every constraint, best first. Quality is *measured* on your data "
        "(95% confidence interval) or a *published benchmark*, not comparable with measured "
        "scores; speed, memory and cost are estimates on the target hardware, but speed marked "
        "‡, measured under load by a bench. ★ marks the Pareto front (not beaten on quality, "
        "time per token and memory at once).",
        "",
        "| # | model | params | quality (95% CI) | source | score | precision | memory GiB "
        "| TTFT s | tokens/s per user | $ / 1M tokens | license | Pareto |",
        "|---:|---|---:|---:|---|---:|---|---:|---:|---:|---:|---|:---:|",
    ]
    for e in ranked:
        fit = e.fit
        source = SOURCE_LABEL[e.quality.source] if e.quality else "no score"
        cells = [
            str(e.rank),
            md(e.id) + (" (demo model)" if e.demo else ""),
            _params(e.params),
            _quality(e),
            source if e.quality and e.quality.source == "measured" else f"*{source}*",
            number(e.score, ".2f"),
            md(f"{fit.quant} · {fit.engine}") if fit else "–",
            gib(fit.memory.total_bytes) if fit else "–",
            number(e.ttft_s, ".2g") + ("‡" if e.load else "") if fit else "–",
            number(e.tokens_per_s) + ("‡" if e.load else "") if fit else "–",
            number(fit.estimates.cost_per_million_tokens) if fit else "–",
            e.verdict or "not judged",
            "★" if e.pareto else "",
        ]
        out.append("| " + " | ".join(cells) + " |")
    if not ranked:
        out += ["", "No model meets every constraint: see the excluded models and what would "]
        out[-1] += "let them in."
    return [*out, ""]


def _finetuned(f: Finetuned) -> list[str]:
    out = [
        f"## Fine-tuning: {md(f.base)} → {md(f.tuned)} ({md(f.method)}, {f.examples} examples)",
        "",
        f"| | {md(f.metric)} | 95% CI | n |",
        "|---|---:|---:|---:|",
        *(
            f"| {when} | {m.value:.3f} | {m.low:.3f}–{m.high:.3f} | {m.n} |"
            for when, m in (("before", f.before), ("after", f.after))
        ),
        "",
        md(f.comparison.get("sentence", "")),
        "",
        *(f"> **Note:** {md(w)}\n" for w in f.warnings),
    ]
    for sample in f.samples:
        out += [
            f"- prompt: {md(sample.get('prompt', ''))}",
            f"  - before: {md(sample.get('before', ''))}",
            f"  - after: {md(sample.get('after', ''))} "
            f"(reference: {md(sample.get('reference', ''))})",
        ]
    if f.curve:
        out += ["", "| examples | value | 95% CI |", "|---:|---:|---:|"]
        out += [
            f"| {int(p['examples'])} | {p['value']:.3f} | {p['low']:.3f}–{p['high']:.3f} |"
            for p in f.curve
        ]
        if f.curve_verdict:
            out += ["", md(f.curve_verdict)]
    return [*out, ""]


def _comparisons(s: Selection) -> list[str]:
    out = [
        "## Are the differences real?",
        "",
        "Paired comparisons on the same items: the difference is the second model minus the "
        "first, in points (metric × 100); **bold** rows are significant at 5%.",
        "",
    ]
    for matrix in significance_matrices(s):
        out += [
            f"### {md(matrix['metric'])}",
            "",
            "| first | second | difference | 95% CI | p | test | n |",
            "|---|---|---:|---:|---:|---|---:|",
        ]
        for c in matrix["rows"]:
            bold = "**" if c["significant"] else ""
            out.append(
                f"| {md(c['a'])} | {md(c['b'])} | {bold}{c['diff'] * 100:+.1f}{bold} "
                f"| {c['low'] * 100:+.1f} to {c['high'] * 100:+.1f} "
                f"| {number(c['p_value'], '.2g')} | {md(c['test'])} | {c['n']} |"
            )
        out.append("")
        for c in matrix["rows"]:
            warning = f" ⚠ {md(c['warning'])}" if c.get("warning") else ""
            out.append(f"- {md(c['sentence'])}{warning}")
        out.append("")
    return out


def _excluded(excluded: list[Entry]) -> list[str]:
    out = [
        "## Excluded models",
        "",
        "| model | license | stage | reason | would qualify |",
        "|---|---|---|---|---|",
    ]
    for e in excluded:
        for x in e.exclusions or []:
            out.append(
                f"| {md(e.id)} | {e.verdict or 'not judged'} | {x.stage} | {md(x.reason)} "
                f"| {md(x.relax or '–')} |"
            )
    return [*out, ""]


def _license(e: Entry) -> list[str]:
    assert e.license is not None
    openness = f" Model Openness Framework class {md(e.openness)}." if e.openness else ""
    out = [f"**License for this use: {e.verdict or e.license.overall}.**{openness}", ""]
    for name in COMPONENTS:
        c = e.license.components.get(name)
        if c is None:
            continue
        out.append(f"- {name}: **{c.verdict}**")
        for g in grouped_reasons(c.reasons):
            r = g["reason"]
            source = f"{md(r.license)}; " if r.license else ""
            origins = ", ".join(md(o) for o in g["origins"])
            out.append(f"  - {md(r.message)} ({source}from {origins})")
            if r.clause:
                out.append(f"    - clause: {md(r.clause)}")
    out += [f"- duty: {md(d)}" for d in e.duties]
    out += [f"- ⚑ {md(f.message)}" for f in e.license.flags]
    chain = " → ".join(
        md(step.id)
        + f" \\[{md(step.weights_license or 'license unknown')}\\]"
        + (f" *{md(step.relation)} of*" if step.relation else "")
        for step in e.license.lineage
    )
    return [*out, f"- lineage: {chain}", ""]


def _detail(s: Selection, e: Entry) -> list[str]:
    where = f"rank {e.rank}" if e.rank else "excluded"
    out = [f"### {md(e.name)} ({md(e.id)}), {where}", ""]
    if e.demo:
        out += ["*A small demo model built on this machine.*", ""]
    out += [f"*Excluded at the {x.stage} stage: {md(x.reason)}*\n" for x in e.exclusions]
    if e.license:
        out += _license(e)
    if e.fit:
        m, est = e.fit.memory, e.fit.estimates
        out += [
            f"- memory per device on {md(e.fit.hardware)} at {md(e.fit.quant)} "
            f"({md(e.fit.engine)}): {gib(m.total_bytes)} of {gib(m.available_bytes)} GiB "
            f"(weights {gib(m.weights_bytes)}, KV cache {gib(m.kv_cache_bytes)}, activations "
            f"{gib(m.activations_bytes)}, overhead {gib(m.overhead_bytes)})"
            + ("" if e.fit.fits else ", does not fit"),
            f"- estimated on {md(e.fit.hardware)} with {e.fit.batch} at once: time to first "
            f"token {number(est.ttft_s, '.2g')} s, {number(est.decode_tokens_per_s)} tokens/s "
            "per user",
        ]
    if e.load:
        at = e.load.at
        out.append(
            f"- measured under load by a bench of {md(e.load.url)}: at {at.concurrency} "
            f"concurrent requests, time to first token p95 {number(at.ttft_p95_s, '.2g')} s, "
            f"{number(at.tokens_per_s)} tokens/s per user, {number(at.output_tokens_per_s)} "
            "tokens/s in all (‡: what the targets and the ranking use)"
        )
        given = bool(s.targets.ttft_p95_s or s.targets.tokens_per_s)
        if capacity := most_users(e.load, targets_given=given):
            out.append(f"- {capacity}")  # numbers and our words only
    if e.latency:
        lat = e.latency
        out.append(
            f"- measured on {md(s.reproducibility.machine)}: time to first token "
            f"{number(lat.ttft_p50_s, '.2g')} s, {number(lat.tokens_per_s)} tokens/s, answer "
            f"p50 {number(lat.p50_s, '.2g')} s, p95 {number(lat.p95_s, '.2g')} s"
        )
    for sc in e.metrics:
        out.append(
            f"- {md(sc.name)} (measured): {sc.value:.3f} "
            f"(95% CI {sc.low:.3f}–{sc.high:.3f}, n={sc.n})"
        )
    if not e.metrics and e.quality:
        out.append(f"- quality: {points(e.quality.value)}, {md(e.quality.detail)}")
    for example in e.examples:
        out.append(
            f"- item {md(example.get('item_id', ''))}: answered {md(example.get('output', ''))} "
            f"(reference: {md(example.get('reference', ''))})"
        )
    return [*out, ""]


def _reproducibility(s: Selection) -> list[str]:
    r = s.reproducibility
    fence = "~" * max(4, 1 + max((len(m) for m in re.findall(r"~+", r.study_text)), default=0))
    packages = ", ".join(f"{md(k)} {md(v)}" for k, v in r.packages.items())
    return [
        "## How this was decided",
        "",
        *[f"- {md(stage)}: {md(what)}" for stage, what in s.stages.items()],
        f"- ranking weights: quality {s.ranking.quality}, speed {s.ranking.speed}, "
        f"cost {s.ranking.cost}",
        "",
        "## Reproducibility",
        "",
        f"- created: {r.created.isoformat()}",
        f"- llmselect {md(r.llmselect)}, Python {md(r.python)}, {md(r.platform)}",
        f"- packages: {packages}",
        f"- machine: {md(r.machine)}",
        f"- study file: {md(r.study_file)} (sha256 {md(r.study_sha256)})",
        f"- dataset sha256: {md(r.dataset_sha256 or 'no dataset')}",
        f"- seed: {r.seed}",
        "",
        # A fence longer than any run of tildes in the text: nothing inside can close it.
        f"{fence}yaml",
        r.study_text.rstrip("\n"),
        fence,
        "",
    ]


def render_markdown(s: Selection) -> str:
    """The report as Markdown: the same sections as the HTML report, without the charts."""
    ranked = [e for e in s.entries if e.rank is not None]
    excluded = [e for e in s.entries if e.rank is None]
    t = s.targets
    out = [f"# Model selection: {md(s.study)}", ""]
    if s.description:
        out += [md(s.description), ""]
    out += [
        f"Target hardware {md(s.hardware)}, context {t.context} tokens, {t.concurrent_users} "
        f"concurrent user(s). Written {s.reproducibility.created:%Y-%m-%d %H:%M} UTC by "
        f"llmselect {md(s.reproducibility.llmselect)}.",
        "",
    ]
    out += _recommendation(s)
    out += _shortlist(ranked)
    for f in s.finetuned:
        out += _finetuned(f)
    if s.comparisons:
        out += _comparisons(s)
    if excluded:
        out += _excluded(excluded)
    out += ["## Each model in detail", ""]
    for e in ranked + [e for e in excluded if e.license or e.fit or e.metrics]:
        out += _detail(s, e)
    out += _reproducibility(s)
    # `cat report.md` must not drive the terminal: controls from cards and outputs as escapes.
    return printable("\n".join(out), multiline=True)
