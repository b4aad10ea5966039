"""What the report files hold: every section, nothing from outside, every hostile string inert."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from report_selection import HOSTILE_NAME, HOSTILE_OUTPUT, HOSTILE_REFERENCE, MEASURED, SCRIPT

import llmselect.report.write
from llmselect.report import render_html, render_markdown, write_report
from llmselect.report.html import significance_matrices
from llmselect.report.markdown import md
from llmselect.report.svg import Point, front_2d, quality_latency
from llmselect.selection.result import Recommendation, Selection


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside each element with an id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def named(self, tag: str) -> list[dict[str, str]]:
        return [attrs for t, attrs in self.tags if t == tag]


@pytest.fixture(scope="module")
def html(selection: Selection) -> str:
    return render_html(selection)


def test_html_loads_nothing_from_outside(html: str) -> None:
    elements = Elements(html)
    scripts = elements.named("script")
    assert len(scripts) == 1 and "src" not in scripts[0], "one inline script, nothing loaded"
    assert elements.named("link") == [] and elements.named("iframe") == []
    assert elements.named("img") == [], "charts are inline SVG"
    for tag, attrs in elements.tags:
        for name in ("src", "href", "xlink:href", "action"):
            if name in attrs:
                assert attrs[name].startswith("#"), (
                    f"<{tag} {name}={attrs[name]!r}> leaves the page"
                )
        assert not [a for a in attrs if a.startswith("on")], f"<{tag}> has an event handler"
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html, "a Content-Security-Policy forbids any load"


def test_html_has_every_section(html: str, selection: Selection) -> None:
    ids = {attrs.get("id") for _, attrs in Elements(html).tags}
    for section in (
        "recommendation",
        "shortlist",
        "filter",
        "chart",
        "finetuning",
        "significance",
        "excluded",
        "details",
        "method",
        "reproducibility",
        "study-text",
    ):
        assert section in ids, section
    # Every ranked model has a row; every excluded one its stage, reason and relaxation.
    body = html.index("<tbody>", html.index('id="shortlist"'))
    assert html.count("<tr>", body, html.index("</tbody>", body)) == 5
    for entry in selection.entries:
        for x in entry.exclusions:
            assert x.reason in html and (x.relax or "") in html
    # The source of each quality score is said in words, in the shortlist row of the model.
    row = html[html.index(MEASURED, html.index('id="shortlist"')) :]
    assert row.index("measured on your data") < row.index("</tr>")
    assert html.count("published benchmark</span>") >= 2
    # The lineage of a fine-tune names its base and the relation.
    assert "Qwen/Qwen2.5-7B" in html and "finetune of" in html
    # A details block per model the pipeline judged (7: all but the catalog-only one).
    assert len(Elements(html).named("details")) == 7
    assert "cd" * 32 in html and "seed" in html


def test_hostile_strings_are_shown_escaped_in_html(html: str) -> None:
    for raw in (SCRIPT, HOSTILE_NAME, HOSTILE_OUTPUT, HOSTILE_REFERENCE):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt; &amp; | pipe" in html
    # The only closing script tag is the report's own; no tag came from the data.
    assert html.count("</script>") == 1
    tags = {t for t, _ in Elements(html).tags}
    assert "b" not in tags and "img" not in tags


def test_chart_draws_front_as_steps_and_every_point_with_a_tooltip(html: str) -> None:
    chart = html[html.index('<svg class="chart"') : html.index("</svg>", html.index("chart"))]
    assert chart.count('<g class="point">') == 4, "the four ranked models with a quality"
    assert chart.count("<title>") == 4
    assert "&lt;script&gt;" in chart and SCRIPT not in chart
    fronts = re.findall(r'<polyline class="front" points="([^"]+)"', chart)
    assert fronts, "the published models' front"
    for front in fronts:
        xy = [tuple(map(float, p.split(","))) for p in front.split()]
        # A step line: each segment is horizontal or vertical, and quality never drops.
        for (x0, y0), (x1, y1) in itertools.pairwise(xy):
            assert x0 == x1 or y0 == y1
            assert x1 >= x0 and y1 <= y0  # SVG y grows downward


def test_front_2d_keeps_only_points_nothing_beats(selection: Selection) -> None:
    entry = selection.entries[0]
    points = [
        Point(entry, ms=5, quality=0.5, source="measured"),
        Point(entry, ms=8, quality=0.4, source="measured"),  # slower and worse
        Point(entry, ms=10, quality=0.7, source="measured"),
        Point(entry, ms=10, quality=0.6, source="measured"),  # as slow, worse
    ]
    assert [(p.ms, p.quality) for p in front_2d(points)] == [(5, 0.5), (10, 0.7)]


def test_significance_matrix_mirrors_and_highlights(html: str, selection: Selection) -> None:
    (exact, f1) = significance_matrices(selection)
    a, b = exact["models"]
    assert exact["cells"][(a, b)]["diff"] == -exact["cells"][(b, a)]["diff"] == -0.75
    assert exact["cells"][(a, b)]["sig"] and not f1["cells"][(a, b)]["sig"]
    section = html[html.index('id="significance"') : html.index('id="excluded-section"')]
    assert section.count('class="num sig"') == 2, "both exact_match cells, no token_f1 cell"
    assert "+75.0" in section and "-75.0" in section


def test_markdown_shows_hostile_strings_as_text(selection: Selection) -> None:
    text = render_markdown(selection)
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    assert "<script" not in rendered and "<img" not in rendered and "<b>" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert "<code>" not in rendered.split("<pre>")[0], "no backtick became a code span"
    # A pipe in a model name stays inside its cell: every row has as many cells as its header.
    tables = re.findall(r"<table>(.*?)</table>", rendered, re.S)
    assert len(tables) >= 5, "shortlist, fine-tuning, two comparisons, exclusions"
    for table in tables:
        head, body = table.split("</thead>")
        cells = {row.count("<td") for row in body.split("<tr>")[1:]}
        assert cells == {len(re.findall(r"<th[ >]", head))}
    assert len(tables[0].split("<tr>")) - 2 == 5, "five ranked models"
    whole_name = "<td>&lt;script&gt;alert(1)&lt;/script&gt; | Support 7B &lt;/script&gt;</td>"
    assert rendered.count(whole_name) == 2, "the hostile name, whole, in both comparisons"
    # The study file is one fenced block that its own tildes cannot close.
    assert "~~~~\n</code></pre>" in rendered and "alert(3)" in rendered


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a | b", r"a \| b"),
        ("<b>x</b>", r"\<b\>x\</b\>"),
        ("`code`", r"\`code\`"),
        ("- not a list", r"\- not a list"),
        ("1. not a list", r"1\. not a list"),
        ("[link](http://x)", r"\[link\]\(http://x\)"),
        ("line\nbreak", "line break"),
        ("version 0.1.0", "version 0.1.0"),
    ],
)
def test_md_escapes_markdown_syntax(raw: str, escaped: str) -> None:
    assert md(raw) == escaped


def test_write_report_writes_three_files_that_round_trip(
    selection: Selection, tmp_path: Path
) -> None:
    files = write_report(selection, tmp_path / "out", html_name="index.html")
    assert {k: p.name for k, p in files.items()} == {
        "html": "index.html",
        "markdown": "report.md",
        "json": "results.json",
    }
    assert Selection.model_validate_json(files["json"].read_text()) == selection
    assert files["html"].read_text() == render_html(selection)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        p.name for p in files.values()
    ), "no temporary file left behind"


def test_a_failed_write_leaves_the_previous_report_whole(
    selection: Selection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = write_report(selection, tmp_path)
    before = {p: p.read_bytes() for p in files.values()}

    def broken(_: Selection) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(llmselect.report.write, "render_markdown", broken)
    changed = selection.model_copy(update={"study": "changed"})
    with pytest.raises(RuntimeError):
        write_report(changed, tmp_path)
    assert {p: p.read_bytes() for p in files.values()} == before
    assert sorted(tmp_path.iterdir()) == sorted(files.values())


def test_chart_puts_time_on_a_log_axis_when_it_spans_orders_of_magnitude(
    selection: Selection,
) -> None:
    ranked = [e.model_copy(deep=True) for e in selection.entries if e.quality and e.fit]
    assert "log scale" not in quality_latency(ranked)
    assert ranked[0].fit and ranked[1].fit
    ranked[0].fit.estimates.decode_tokens_per_s = 100_000.0  # 0.01 ms per token
    ranked[1].fit.estimates.decode_tokens_per_s = 10.0  # 100 ms per token
    chart = quality_latency(ranked)
    assert "log scale" in chart
    ticks = re.findall(r'text-anchor="middle">([\d.]+)</text>', chart)
    assert ticks == ["0.01", "0.1", "1", "10", "100"]


def test_a_selection_where_nothing_qualifies_still_reports(selection: Selection) -> None:
    excluded = [e for e in selection.entries if e.rank is None]
    nothing = selection.model_copy(
        update={
            "entries": excluded,
            "comparisons": [],
            "finetuned": [],
            "recommendation": Recommendation(
                model=None,
                summary="No model meets every constraint.",
                what_would_change=["If you ran on 2x H100-80GB, Llama 2 70B would qualify."],
            ),
        }
    )
    html = render_html(nothing)
    assert 'class="recommendation none"' in html and "What to relax" in html
    assert "No ranked model has a quality score to plot." in html
    assert 'id="significance"' not in html
    assert "What to relax" in render_markdown(nothing)
