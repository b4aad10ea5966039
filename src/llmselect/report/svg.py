"""Inline SVG charts: no script, no CDN, so the report works offline and prints.

Every label that comes from a model card goes through `escape`; everything else is numbers
formatted here. These are the only pieces of markup the template does not escape.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from markupsafe import Markup, escape

from llmselect.selection.result import Entry
from llmselect.sizing.estimate import Memory
from llmselect.units import GIB

SOURCE_COLOR = {"measured": "#0969da", "published": "#8c959f"}
SOURCE_LABEL = {"measured": "measured on your data", "published": "published benchmark"}
MEMORY_PARTS = (
    ("weights_bytes", "weights", "#0969da"),
    ("kv_cache_bytes", "KV cache", "#1a7f37"),
    ("activations_bytes", "activations", "#bf8700"),
    ("overhead_bytes", "overhead", "#8c959f"),
)
LABEL_ALL_UP_TO = 15
"""With more points than this, only the Pareto front and the top three are labelled."""
LOG_AXIS_ABOVE = 30
"""When the slowest model is this many times slower than the fastest, time is on a log axis."""


@dataclass(frozen=True)
class Point:
    entry: Entry
    ms: float
    """Time per output token: from the decode speed measured under load by a bench, or else
    estimated on the target hardware."""
    quality: float
    source: str


def _nice_max(value: float) -> float:
    """The smallest 1-2-2.5-5 step at or above `value`: round axis ends."""
    if value <= 0:
        return 1.0
    exponent = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def _points(entries: list[Entry]) -> list[Point]:
    return [
        Point(e, 1000 / e.tokens_per_s, e.quality.value, e.quality.source)
        for e in entries
        if e.rank is not None and e.quality is not None and e.fit is not None and e.tokens_per_s > 0
    ]


def front_2d(points: list[Point]) -> list[Point]:
    """Points no other point beats on both quality and time per token, fastest first."""
    front: list[Point] = []
    for p in sorted(points, key=lambda p: (p.ms, -p.quality)):
        if not front or p.quality > front[-1].quality:
            front.append(p)
    return front


def _spread_labels(labels: list[tuple[float, float, str]]) -> list[float]:
    """Baselines for labels at (x, y) that keep labels near each other from overlapping."""
    line, char = 12.0, 6.0  # label height and average character width, in SVG units
    placed: list[tuple[float, float, float]] = []  # x, baseline, width
    out = [0.0] * len(labels)
    for i in sorted(range(len(labels)), key=lambda i: labels[i][1]):
        x, y, text = labels[i]
        width = char * len(text)
        for shift in (0, 1, -1, 2, -2, 3, -3, 4, -4):  # nearest free line above or below
            candidate = y + shift * line
            if not any(
                abs(candidate - py) < line and x < px + pw and px < x + width
                for px, py, pw in placed
            ):
                break
        placed.append((x, candidate, width))
        out[i] = candidate
    return out


def quality_latency(entries: list[Entry]) -> Markup:
    """Quality (0-100) against time per output token (ms); each source's front as a step line."""
    points = _points(entries)
    if not points:
        return Markup('<p class="muted">No ranked model has a quality score to plot.</p>')
    width, height, left, bottom, top, right = 760, 400, 56, 48, 16, 200
    fastest, slowest = min(p.ms for p in points), max(p.ms for p in points)
    y_max = min(100.0, _nice_max(max(p.quality * 100 for p in points) * 1.08))
    # Times spanning orders of magnitude (a small model beside a large one) need a log axis.
    log = slowest / fastest > LOG_AXIS_ABOVE
    if log:
        low, high = math.floor(math.log10(fastest)), math.ceil(math.log10(slowest))
        x_ticks = [10.0**e for e in range(low, high + 1)]
    else:
        x_max = _nice_max(slowest * 1.05)
        x_ticks = [x_max * i / 5 for i in range(6)]
    span = width - left - right

    def px(ms: float) -> float:
        if log:
            return left + (math.log10(ms) - low) / (high - low) * span
        return left + ms / x_max * span

    def py(quality: float) -> float:
        return height - bottom - quality * 100 / y_max * (height - top - bottom)

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="Quality against time per output token">'
    ]
    for gx in x_ticks:
        out.append(
            f'<line x1="{px(gx):.1f}" y1="{top}" x2="{px(gx):.1f}" y2="{height - bottom}" '
            f'class="grid"/><text x="{px(gx):.1f}" y="{height - bottom + 16}" class="tick" '
            f'text-anchor="middle">{gx:g}</text>'
        )
    for i in range(6):
        gy = y_max * i / 5
        out.append(
            f'<line x1="{left}" y1="{py(gy / 100):.1f}" x2="{width - right}" '
            f'y2="{py(gy / 100):.1f}" class="grid"/><text x="{left - 6}" '
            f'y="{py(gy / 100) + 4:.1f}" class="tick" text-anchor="end">{gy:g}</text>'
        )
    middle = (top + height - bottom) / 2
    scale = ", log scale" if log else ""
    measured = ", or measured under load ‡" if any(p.entry.load for p in points) else ""
    out.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle" '
        f'class="axis">time per output token, ms (estimated on the target hardware{measured}'
        f"{scale})</text>"
        f'<text x="14" y="{middle}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 14 {middle})">quality, 0–100 (higher is better)</text>'
    )
    for source, color in SOURCE_COLOR.items():
        front = front_2d([p for p in points if p.source == source])
        if len(front) > 1:
            # A step line: from each front point, quality holds until the next, slower one.
            steps = [f"{px(front[0].ms):.1f},{py(front[0].quality):.1f}"]
            for before, after in itertools.pairwise(front):
                steps.append(f"{px(after.ms):.1f},{py(before.quality):.1f}")
                steps.append(f"{px(after.ms):.1f},{py(after.quality):.1f}")
            out.append(
                f'<polyline class="front" points="{" ".join(steps)}" fill="none" '
                f'stroke="{color}" stroke-dasharray="5 3" stroke-width="1.5"/>'
            )
    label_all = len(points) <= LABEL_ALL_UP_TO
    labelled = [p for p in points if label_all or p.entry.pareto or (p.entry.rank or 99) <= 3]
    baselines = _spread_labels([(px(p.ms), py(p.quality) + 4, p.entry.name) for p in labelled])
    label_y = {id(p): y for p, y in zip(labelled, baselines, strict=True)}
    for p in sorted(points, key=lambda p: p.entry.pareto):  # front points drawn on top
        e = p.entry
        assert e.fit is not None
        x, y = px(p.ms), py(p.quality)
        tip = escape(
            f"#{e.rank} {e.id}: quality {p.quality * 100:.1f} ({SOURCE_LABEL[p.source]}), "
            f"{p.ms:.1f} ms per token, {e.fit.quant}"
            + (", on the Pareto front" if e.pareto else "")
        )
        shape = (
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{6 if e.pareto else 4}" '
            f'fill="{SOURCE_COLOR[p.source]}" fill-opacity="{0.95 if e.pareto else 0.45}" '
            'stroke="#fff"/>'
        )
        label = ""
        if id(p) in label_y:
            ly = label_y[id(p)]
            if abs(ly - (y + 4)) > 1:  # moved off its dot to avoid another label: a leader line
                label = (
                    f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 7:.1f}" y2="{ly - 4:.1f}" '
                    'stroke="#8c959f" stroke-width="0.75"/>'
                )
            label += f'<text x="{x + 8:.1f}" y="{ly:.1f}" class="label">{escape(e.name)}</text>'
        out.append(f'<g class="point"><title>{tip}</title>{shape}{label}</g>')
    legend_x = width - right + 20
    for i, (source, color) in enumerate(SOURCE_COLOR.items()):
        y = top + 12 + i * 20
        out.append(
            f'<circle cx="{legend_x}" cy="{y}" r="5" fill="{color}"/>'
            f'<text x="{legend_x + 10}" y="{y + 4}" class="tick">{SOURCE_LABEL[source]}</text>'
        )
    out.append(
        f'<line x1="{legend_x - 6}" y1="{top + 56}" x2="{legend_x + 6}" y2="{top + 56}" '
        'stroke="#57606a" stroke-dasharray="5 3"/>'
        f'<text x="{legend_x + 10}" y="{top + 60}" class="tick">front: quality vs speed</text>'
        f'<text x="{legend_x - 6}" y="{top + 80}" class="tick">large dot: Pareto front of</text>'
        f'<text x="{legend_x - 6}" y="{top + 94}" class="tick">quality, speed and memory</text>'
        "</svg>"
    )
    return Markup("".join(out))  # noqa: S704 (numbers and escaped labels only)


def memory_bar(memory: Memory) -> Markup:
    """One device's memory: the parts stacked, the available memory marked with a red line."""
    width, height = 560, 64
    scale = max(memory.total_bytes, memory.available_bytes) or 1
    out = [
        f'<svg class="bar" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Memory per device: {memory.total_bytes / GIB:.1f} GiB of '
        f'{memory.available_bytes / GIB:.1f} GiB">'
    ]
    x = 0.0
    for field, label, color in MEMORY_PARTS:
        value = getattr(memory, field)
        w = value / scale * (width - 2)
        if w > 0:
            out.append(
                f'<rect x="{x:.1f}" y="6" width="{w:.1f}" height="20" fill="{color}">'
                f"<title>{label}: {value / GIB:.2f} GiB</title></rect>"
            )
        x += w
    avail = max(1.0, memory.available_bytes / scale * (width - 2))
    out.append(
        f'<line x1="{avail:.1f}" y1="1" x2="{avail:.1f}" y2="31" stroke="#cf222e" '
        f'stroke-width="2"><title>available: {memory.available_bytes / GIB:.1f} GiB'
        "</title></line>"
    )
    legend_x = 0
    for _, label, color in MEMORY_PARTS:
        out.append(
            f'<rect x="{legend_x}" y="44" width="10" height="10" fill="{color}"/>'
            f'<text x="{legend_x + 14}" y="53" class="tick">{label}</text>'
        )
        legend_x += 14 + 7 * len(label) + 14
    out.append(
        f'<rect x="{legend_x}" y="44" width="3" height="10" fill="#cf222e"/>'
        f'<text x="{legend_x + 8}" y="53" class="tick">available '
        f"{memory.available_bytes / GIB:.1f} GiB</text></svg>"
    )
    return Markup("".join(out))  # noqa: S704 (numbers and fixed labels only)


SERIES_COLORS = ("#0969da", "#bf3989", "#1a7f37", "#bf8700", "#8250df", "#cf222e", "#57606a")


@dataclass(frozen=True)
class Curve:
    name: str
    points: list[tuple[float, float, int]]
    """(x, y, concurrency) per bench level."""


def _curves(
    curves: list[Curve], *, x_label: str, y_label: str, target: float | None, target_label: str
) -> str:
    """Lines of points on linear axes from zero, each point labelled with its concurrency, and
    the target as a dashed red line."""
    width, height, left, bottom, top, right = 760, 320, 64, 48, 16, 200
    xs = [x for c in curves for x, _, _ in c.points]
    ys = [y for c in curves for _, y, _ in c.points] + ([target] if target else [])
    x_max, y_max = _nice_max(max(xs) * 1.05), _nice_max(max(ys) * 1.08)

    def px(x: float) -> float:
        return left + x / x_max * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - y / y_max * (height - top - bottom)

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{y_label}">']
    for i in range(6):
        gx, gy = x_max * i / 5, y_max * i / 5
        out.append(
            f'<line x1="{px(gx):.1f}" y1="{top}" x2="{px(gx):.1f}" y2="{height - bottom}" '
            f'class="grid"/><text x="{px(gx):.1f}" y="{height - bottom + 16}" class="tick" '
            f'text-anchor="middle">{gx:g}</text>'
            f'<line x1="{left}" y1="{py(gy):.1f}" x2="{width - right}" y2="{py(gy):.1f}" '
            f'class="grid"/><text x="{left - 6}" y="{py(gy) + 4:.1f}" class="tick" '
            f'text-anchor="end">{gy:.3g}</text>'
        )
    middle = (top + height - bottom) / 2
    out.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle" '
        f'class="axis">{x_label}</text><text x="14" y="{middle}" text-anchor="middle" '
        f'class="axis" transform="rotate(-90 14 {middle})">{y_label}</text>'
    )
    if target:
        out.append(
            f'<line x1="{left}" y1="{py(target):.1f}" x2="{width - right}" y2="{py(target):.1f}" '
            f'stroke="#cf222e" stroke-dasharray="6 4"/><text x="{width - right + 6}" '
            f'y="{py(target) + 4:.1f}" class="tick">{target_label} {target:g}</text>'
        )
    for index, curve in enumerate(curves):
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y, _ in curve.points)
        out.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        for x, y, concurrency in curve.points:
            out.append(
                f'<g class="point"><title>{escape(curve.name)}: {concurrency} concurrent, '
                f"x {x:.3g}, y {y:.3g}</title>"
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="4" fill="{color}"/>'
                f'<text x="{px(x) + 6:.1f}" y="{py(y) - 6:.1f}" class="tick">{concurrency}</text>'
                "</g>"
            )
        legend_y = top + 12 + index * 18
        out.append(
            f'<circle cx="{width - right + 20}" cy="{legend_y}" r="5" fill="{color}"/>'
            f'<text x="{width - right + 30}" y="{legend_y + 4}" class="tick">'
            f"{escape(curve.name)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def load_charts(
    entries: list[Entry], ttft_target: float | None, speed_target: float | None
) -> Markup:
    """For the models benched under load: p95 time to first token against the throughput of
    all users (the latency–throughput curve), and tokens/s per user against it (each user's
    speed against the server's), with the targets drawn. Points are labelled with their
    concurrency."""
    benched = [e for e in entries if e.load is not None]
    latency, per_user = [], []
    for e in benched:
        assert e.load is not None
        levels = e.load.levels
        latency.append(
            Curve(
                e.name,
                [
                    (lv.output_tokens_per_s, lv.ttft_p95_s, lv.concurrency)
                    for lv in levels
                    if lv.ttft_p95_s is not None
                ],
            )
        )
        per_user.append(
            Curve(
                e.name,
                [
                    (lv.output_tokens_per_s, lv.tokens_per_s, lv.concurrency)
                    for lv in levels
                    if lv.tokens_per_s is not None
                ],
            )
        )
    if not any(c.points for c in latency + per_user):
        return Markup("")
    total = "output tokens/s, all users together"
    charts = _curves(
        [c for c in latency if c.points],
        x_label=total,
        y_label="time to first token p95, s",
        target=ttft_target,
        target_label="target",
    ) + _curves(
        [c for c in per_user if c.points],
        x_label=total,
        y_label="tokens/s per user (median)",
        target=speed_target,
        target_label="target",
    )
    return Markup(charts)  # noqa: S704 (numbers and escaped model names only)
