"""The documentation: the site builds, its generated pages are current, its examples are true.

Console examples in the docs marked `<!-- checked -->` (or `<!-- checked columns=N -->`) are run
and compared line by line, with `...` standing for any number of lines; a ```json block marked
`<!-- checked: llmselect ... --json -->` must be a part of what that command prints.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

from llmselect.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
GEN_DOCS = ROOT / "scripts" / "gen_docs.py"
REGENERATE = "python scripts/gen_docs.py"
README_MAX_LINES = 250
DEFAULT_COLUMNS = 110


def _gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", GEN_DOCS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


# --------------------------------------------------------------------------- the site


def test_site_builds_with_strict_mkdocs(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs-material is not installed (pip install -e .[dev])")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    assert (tmp_path / "site" / "index.html").exists()


def test_generated_references_are_current() -> None:
    stale = _gen_docs().out_of_date()
    assert not stale, (
        "out of date: "
        + ", ".join(f"docs/{p}" for p in stale)
        + f" — the code changed since they were generated; regenerate them with `{REGENERATE}`"
    )


def test_every_study_key_is_described() -> None:
    from llmselect.evaluation.datasets import FieldMap
    from llmselect.evaluation.study import DatasetSpec, EvalStudy, MetricSpec, TaskSpec
    from llmselect.licensing.profile import UseProfile
    from llmselect.study import (
        LicensePolicy,
        Pool,
        PoolFilter,
        Ranking,
        RunSpec,
        SelectStudy,
        Targets,
    )

    page = (DOCS / "study.md").read_text(encoding="utf-8")
    models = (
        SelectStudy,
        EvalStudy,
        DatasetSpec,
        FieldMap,
        TaskSpec,
        MetricSpec,
        Targets,
        LicensePolicy,
        UseProfile,
        Pool,
        PoolFilter,
        RunSpec,
        Ranking,
    )
    missing = [
        f"{model.__name__}.{name}"
        for model in models
        for name in model.model_fields
        if f"`{name}`" not in page
    ]
    assert not missing, f"docs/study.md does not describe: {', '.join(missing)}"


def _resolves(dotted: str) -> bool:
    """`package.module.name` names a module, or an attribute of the longest module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def test_python_names_in_the_docs_exist() -> None:
    # `llmselect.x.y` in the prose is an API a reader will import: it must still be there.
    missing = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in _markdown_files()
        for name in set(re.findall(r"`(llmselect(?:\.\w+)+)", path.read_text(encoding="utf-8")))
        if not _resolves(name)
    )
    assert not missing, "the docs name Python objects that do not exist:\n" + "\n".join(missing)


# --------------------------------------------------------------------------- the README


def test_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES, (
        f"README.md has {len(lines)} lines; keep it under {README_MAX_LINES} and move details "
        "into docs/"
    )


def _slug(heading: str) -> str:
    """An anchor as mkdocs' toc (and, for plain headings, GitHub) makes it."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[\s]+", "-", text)


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.MULTILINE)}


def test_readme_links_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", text)
    assert links, "the README links to the docs"
    broken = []
    for link in links:
        if re.match(r"^[a-z][a-z0-9+.-]*:", link):  # https:, mailto: ...
            continue
        target, _, anchor = link.partition("#")
        path = (README.parent / target) if target else README
        if not path.exists():
            broken.append(f"{link} (no file {target})")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{link} (no heading #{anchor} in {target or 'README.md'})")
    assert not broken, "README.md links that do not resolve: " + "; ".join(broken)


def _fenced(text: str, language: str) -> list[str]:
    return [
        m.group(1).strip()
        for m in re.finditer(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    ]


def test_readme_keeps_the_commands_ci_runs() -> None:
    # .ci/run does what the README says: the install command, then the test command.
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    readme_blocks = _fenced(README.read_text(encoding="utf-8"), "bash")
    assert 'pip install -e ".[dev,gguf]"' in ci
    assert any(b.startswith('pip install -e ".[dev,gguf]"') for b in readme_blocks)
    assert "python -m pytest" in ci
    assert "python -m pytest" in readme_blocks, "the README's test command is what CI runs"


def test_readme_quick_start_study_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The quick start as a user follows it: init, the README's study in place of the scaffold's,
    # select (without the server the study measures, which only a user has).
    studies = _fenced(README.read_text(encoding="utf-8"), "yaml")
    assert len(studies) == 1, "the README shows one study"
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["init", "my-study"])
    assert result.exit_code == 0, result.output
    (tmp_path / "my-study" / "study.yaml").write_text(studies[0] + "\n", encoding="utf-8")
    result = runner.invoke(
        app,
        ["select", "my-study/study.yaml", "--no-measure", "--no-report"],
        env={"COLUMNS": "110"},
    )
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- checked examples


@dataclass(frozen=True)
class Example:
    file: Path
    line: int  # of the block's first line, 1-based
    kind: str  # "console" or "json"
    body: tuple[str, ...]
    columns: int
    command: str = ""  # for json blocks: the command whose output it is part of

    def __str__(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


_MARKER = re.compile(
    r"^<!-- checked(?::\s*(?P<command>.+?))?(?:\s+columns=(?P<columns>\d+))?\s*-->$"
)


def _examples() -> list[Example]:
    found = []
    for path in _markdown_files():
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            marker = _MARKER.match(line.strip())
            if not marker:
                continue
            fence = lines[i + 1] if i + 1 < len(lines) else ""
            kind = fence.removeprefix("```")
            assert fence.startswith("```") and kind in ("console", "json"), (
                f"{path.relative_to(ROOT)}:{i + 1}: a checked marker goes right before a "
                "```console or ```json block"
            )
            end = lines.index("```", i + 2)
            command = marker.group("command") or ""
            assert (kind == "json") == bool(command), (
                f"{path.relative_to(ROOT)}:{i + 1}: a ```json block names its command "
                "(<!-- checked: llmselect ... --json -->); a ```console block shows it"
            )
            found.append(
                Example(
                    file=path,
                    line=i + 3,
                    kind=kind,
                    body=tuple(lines[i + 2 : end]),
                    columns=int(marker.group("columns") or DEFAULT_COLUMNS),
                    command=command,
                )
            )
    return found


EXAMPLES = _examples()


def test_a_handful_of_examples_are_checked() -> None:
    assert len(EXAMPLES) >= 8, [str(e) for e in EXAMPLES]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch folder holding a copy of examples/: commands that write beside a study write
    there, never into the repository."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(command: str, columns: int) -> str:
    args = shlex.split(command, comments=True)
    assert args and args[0] == "llmselect", f"a checked command runs llmselect: {command!r}"
    result = CliRunner().invoke(app, args[1:], env={"COLUMNS": str(columns)})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.output


def _matches(expected: list[str], got: list[str]) -> bool:
    """Line by line (trailing spaces aside); a line `...` stands for any number of lines."""

    @functools.cache
    def match(e: int, g: int) -> bool:
        if e == len(expected):
            return g == len(got)
        if expected[e].strip() == "...":
            return any(match(e + 1, k) for k in range(g, len(got) + 1))
        return g < len(got) and expected[e].rstrip() == got[g].rstrip() and match(e + 1, g + 1)

    return match(0, 0)


def _trim(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _check_console(example: Example) -> None:
    body = list(example.body)
    starts = [i for i, line in enumerate(body) if line.startswith("$ ")]
    assert starts and starts[0] == 0, f"{example}: a checked block starts with `$ llmselect ...`"
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(body)
        command = body[start][2:]
        expected = _trim(body[start + 1 : end])
        got = _trim(_run(command, example.columns).splitlines())
        if not _matches(expected, got):
            diff = "\n".join(
                difflib.unified_diff(expected, got, "docs", "command", lineterm="", n=2)
            )
            pytest.fail(
                f"{example}: `{command}` at {example.columns} columns no longer prints what the "
                f"docs show; update the block to its output (`...` stands for left-out lines):\n"
                f"{diff}"
            )


def _part_of(expected: Any, actual: Any, where: str) -> list[str]:
    """Where `expected` is not a part of `actual`: every key it has, with the same value, and its
    list items in order; "..." (a key, an item or a value) stands for what was left out."""
    if expected == "...":
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: an object in the docs, {type(actual).__name__} in the output"]
        problems = []
        for key, value in expected.items():
            if key == "...":
                continue
            if key not in actual:
                problems.append(f"{where}.{key}: not in the output")
            else:
                problems += _part_of(value, actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: a list in the docs, {type(actual).__name__} in the output"]
        position = 0
        for item in (x for x in expected if x != "..."):
            while position < len(actual) and _part_of(item, actual[position], where):
                position += 1
            if position == len(actual):
                return [f"{where}: {json.dumps(item)[:80]} is not in the output's list (in order)"]
            position += 1
        return []
    if expected != actual:
        return [f"{where}: {expected!r} in the docs, {actual!r} in the output"]
    return []


def _check_json(example: Example) -> None:
    expected = json.loads("\n".join(example.body))
    actual = json.loads(_run(example.command, example.columns))
    problems = _part_of(expected, actual, "$")
    assert not problems, (
        f"{example}: the JSON shown is no longer part of what `{example.command}` prints:\n"
        + "\n".join(problems)
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_checked_example_is_what_the_command_prints(example: Example, workspace: Path) -> None:
    if example.kind == "console":
        _check_console(example)
    else:
        _check_json(example)
