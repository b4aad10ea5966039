"""Inline SVG charts: no script, no CDN, so the report works offline and prints.

Every label that comes from a model card goes through `escape`; everything else is numbers.
"""

from __future__ import annotations

import math

from markupsafe import Markup, escape

from llmselect.selection.result import Entry
from llmselect.sizing.estimate import Memory

SOURCE_COLOR = {"measured": "#1f6feb", "published": "#8b949e"}
MEMORY_PARTS = (
    ("weights_bytes", "weights", "#1f6feb"),
    ("kv_cache_bytes", "KV cache", "#2da44e"),
    ("activations_bytes", "activations", "#bf8700"),
    ("overhead_bytes", "overhead", "#8b949e"),
)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def quality_latency(entries: list[Entry]) -> Markup:
    """Quality (0-100) against time per output token (ms), with each source's Pareto front."""
    points = [e for e in entries if e.rank is not None and e.quality and e.fit]
    if not points:
        return Markup("<p class='muted'>No ranked model has a quality score to plot.</p>")
    width, height, left, bottom, top, right = 720, 380, 60, 50, 20, 160
    xs = [1000 / e.fit.estimates.decode_tokens_per_s for e in points if e.fit]
    x_max = _nice_max(max(xs) * 1.05)
    y_max = _nice_max(max(e.quality.value * 100 for e in points if e.quality) * 1.05)

    def px(ms: float) -> float:
        return left + ms / x_max * (width - left - right)

    def py(quality: float) -> float:
        return height - bottom - quality * 100 / y_max * (height - top - bottom)

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="quality against time per output token">'
    ]
    for i in range(6):
        gx, gy = x_max * i / 5, y_max * i / 5
        out.append(
            f'<line x1="{px(gx):.1f}" y1="{top}" x2="{px(gx):.1f}" y2="{height - bottom}" '
            'class="grid"/>'
            f'<text x="{px(gx):.1f}" y="{height - bottom + 16}" class="tick" '
            f'text-anchor="middle">{gx:g}</text>'
            f'<line x1="{left}" y1="{py(gy / 100):.1f}" x2="{width - right}" '
            f'y2="{py(gy / 100):.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{py(gy / 100) + 4:.1f}" class="tick" '
            f'text-anchor="end">{gy:g}</text>'
        )
    out.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle" '
        'class="axis">time per output token, ms (estimated on the target hardware)</text>'
        f'<text x="16" y="{(top + height - bottom) / 2}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 16 {(top + height - bottom) / 2})">quality (0–100)</text>'
    )
    for source, color in SOURCE_COLOR.items():
        front = sorted(
            (e for e in points if e.pareto and e.quality and e.quality.source == source),
            key=lambda e: 1000 / e.fit.estimates.decode_tokens_per_s if e.fit else 0,
        )
        if len(front) > 1:
            steps = []
            for e in front:
                assert e.fit and e.quality
                x, y = px(1000 / e.fit.estimates.decode_tokens_per_s), py(e.quality.value)
                steps.append(f"{x:.1f},{y:.1f}")
            out.append(
                f'<polyline points="{" ".join(steps)}" fill="none" stroke="{color}" '
                'stroke-dasharray="4 3" stroke-width="1.5"/>'
            )
    for e in points:
        assert e.fit and e.quality
        ms = 1000 / e.fit.estimates.decode_tokens_per_s
        x, y = px(ms), py(e.quality.value)
        color = SOURCE_COLOR[e.quality.source]
        radius = 6 if e.pareto else 4
        tip = escape(
            f"{e.id}: quality {e.quality.value * 100:.1f} ({e.quality.source}), "
            f"{ms:.1f} ms/token, {e.fit.quant}"
        )
        out.append(
            f'<g><title>{tip}</title><circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" '
            f'fill="{color}" fill-opacity="{0.9 if e.pareto else 0.45}" stroke="#fff"/>'
        )
        if e.pareto or (e.rank or 99) <= 3:
            out.append(
                f'<text x="{x + 8:.1f}" y="{y + 4:.1f}" class="label">{escape(e.name)}</text>'
            )
        out.append("</g>")
    legend_x = width - right + 16
    for i, (source, color) in enumerate(SOURCE_COLOR.items()):
        out.append(
            f'<circle cx="{legend_x}" cy="{top + 10 + i * 20}" r="5" fill="{color}"/>'
            f'<text x="{legend_x + 10}" y="{top + 14 + i * 20}" class="tick">{source}</text>'
        )
    out.append(f'<text x="{legend_x}" y="{top + 60}" class="tick">- - Pareto front</text></svg>')
    return Markup("".join(out))  # noqa: S704 (numbers and escaped labels only)


def memory_bar(memory: Memory) -> Markup:
    """One device's memory: the parts stacked, the available memory marked."""
    width, height = 520, 46
    scale = max(memory.total_bytes, memory.available_bytes) or 1
    out = [f'<svg class="bar" viewBox="0 0 {width} {height}" role="img" aria-label="memory">']
    x = 0.0
    for field, label, color in MEMORY_PARTS:
        value = getattr(memory, field)
        w = value / scale * width
        if w > 0:
            tip = escape(f"{label}: {value / 2**30:.2f} GiB")
            out.append(
                f'<rect x="{x:.1f}" y="4" width="{w:.1f}" height="22" fill="{color}">'
                f"<title>{tip}</title></rect>"
            )
        x += w
    avail = memory.available_bytes / scale * width
    out.append(
        f'<line x1="{avail:.1f}" y1="0" x2="{avail:.1f}" y2="30" stroke="#cf222e" '
        'stroke-width="2"/>'
        f'<text x="{min(avail, width - 4):.1f}" y="42" class="tick" text-anchor="end">'
        f"available {memory.available_bytes / 2**30:.0f} GiB</text></svg>"
    )
    return Markup("".join(out))  # noqa: S704 (numbers and escaped labels only)
