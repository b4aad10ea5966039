"""The report's Content-Security-Policy runs only its own script, named by hash: a script an
escaping bug let in would not run. No control character from a card or an output reaches the
Markdown or the HTML (`cat report.md` must not drive the terminal)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from llmselect.report import render_html, render_markdown
from llmselect.selection.result import Selection

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class Scripts(HTMLParser):
    """The CSP meta tag's policy and the text of every script element."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.policies: list[str] = []
        self.scripts: list[str] = []
        self.handlers: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "meta" and values.get("http-equiv", "").lower() == "content-security-policy":
            self.policies.append(values["content"])
        self.handlers += [f"<{tag} {k}>" for k in values if k.startswith("on")]
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def directives(policy: str) -> dict[str, list[str]]:
    parts = [p.split() for p in policy.split(";") if p.strip()]
    return {p[0]: p[1:] for p in parts}


def sha256_source(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def test_only_the_reports_own_script_may_run(selection: Selection) -> None:
    page = Scripts(render_html(selection))
    (policy,) = page.policies
    csp = directives(policy)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == [sha256_source(s) for s in page.scripts]
    assert len(page.scripts) == 1 and "addEventListener" in page.scripts[0]
    assert not {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'"} & set(csp["script-src"])
    assert csp["base-uri"] == ["'none'"] and csp["form-action"] == ["'none'"]
    assert page.handlers == []  # an inline handler would not run under this policy


def test_a_script_let_in_by_an_escaping_bug_is_not_allowed(selection: Selection) -> None:
    # What an escaping bug would write into the page: its hash is not in the policy.
    html = render_html(selection).replace("</footer>", "</footer><script>alert(1)</script>")
    page = Scripts(html)
    allowed = directives(page.policies[0])["script-src"]
    assert sha256_source("alert(1)") not in allowed
    runs = {s: sha256_source(s) in allowed for s in page.scripts}
    assert runs["alert(1)"] is False
    assert [script for script, ok in runs.items() if ok] == [s for s in runs if "sort" in s]


def test_chromium_runs_the_reports_script_and_blocks_an_injected_one(
    selection: Selection, tmp_path: Path
) -> None:
    """The policy as a browser applies it (skipped where Chromium is not installed, unless
    LLMSELECT_REQUIRE_BROWSER=1)."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        if os.environ.get("LLMSELECT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"LLMSELECT_REQUIRE_BROWSER=1 but {chromium} is not installed")
        pytest.skip(f"{chromium} is not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    injected = "<script>document.title = 'pwned'</script>"
    path = tmp_path / "report.html"
    path.write_text(render_html(selection).replace("</footer>", f"</footer>{injected}"))
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        tab = browser.new_page()
        messages: list[str] = []
        tab.on("console", lambda message: messages.append(message.text))
        tab.goto(path.as_uri())
        title = tab.title()
        # The report's script makes each sortable header focusable: it ran.
        tab_index = tab.eval_on_selector("#shortlist th.sortable", "th => th.tabIndex")
        browser.close()
    assert title != "pwned"
    assert tab_index == 0
    refused = [m for m in messages if "Content Security Policy" in m]
    assert len(refused) == 1 and "script-src" in refused[0], messages


@pytest.fixture(scope="module")
def hostile(selection: Selection) -> Selection:
    bad = "x\x1b[2J\x1b]0;pwned\x07\x9b31m\u202etxt\x00"
    s = selection.model_copy(deep=True)
    s.description = f"about {bad}"
    s.recommendation.summary += bad
    s.warnings.append(bad)
    s.reproducibility.study_text += f"# {bad}\n"
    entry = next(e for e in s.entries if e.examples)
    entry.name += bad
    entry.examples[0]["output"] = f"answer {bad}\nmore"
    return s


def test_no_control_character_reaches_the_markdown(hostile: Selection) -> None:
    text = render_markdown(hostile)
    assert not CONTROL.search(text)
    assert "x\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202etxt\\x00" in text.replace("\\\\", "\\")


def test_no_control_character_reaches_the_html(hostile: Selection) -> None:
    html = render_html(hostile)
    assert not CONTROL.search(html)
    assert "\\x1b[2J" in html
