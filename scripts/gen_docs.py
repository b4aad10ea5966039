"""Write the documentation's generated references from the code.

    python scripts/gen_docs.py          # rewrite docs/reference/cli.md and the JSON schemas
    python scripts/gen_docs.py --check  # exit 1 naming each file that is out of date

The CLI reference is rendered from the Typer app (every command, argument and option with its
help and default); the JSON schemas from the pydantic models that `--json` prints and that the
study files are read into (`model_json_schema()`). `tests/test_docs.py` regenerates both and
compares them with the committed files.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CLI_PAGE = Path("reference/cli.md")
SCHEMA_PAGE = Path("reference/schemas.md")
SCHEMA_DIR = Path("reference/schemas")
REGENERATE = "python scripts/gen_docs.py"


# --------------------------------------------------------------------------- CLI reference


def _params(command: Any) -> tuple[list[Any], list[Any]]:
    """The visible arguments and options of a command, in their declared order."""
    arguments: list[Any] = []
    options: list[Any] = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        (options if param.opts and param.opts[0].startswith("-") else arguments).append(param)
    return arguments, options


def _argument_name(param: Any) -> str:
    name = str(param.name).upper()
    if param.nargs == -1:
        name += "..."
    return name if param.required else f"[{name}]"


def _default(param: Any) -> str | None:
    default = param.default
    if getattr(param, "is_flag", False) and not param.secondary_opts:
        return None  # a flag is off unless given
    if default is None or default == () or default == [] or callable(default):
        return None
    if isinstance(default, bool) and param.secondary_opts:
        return str(param.opts[0] if default else param.secondary_opts[0])
    if isinstance(default, bool | int | float | str):
        return str(default)
    return None


def _range(param: Any) -> str | None:
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is None and high is None:
        return None
    if low is not None and high is not None:
        return f"{low} to {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def _metavar(param: Any) -> str:
    return str(getattr(param, "metavar", None) or param.name).upper()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _help_text(command: Any) -> str:
    """The docstring as the terminal shows it: paragraphs kept, lines within them joined."""
    text = (command.help or "").split("\f")[0].strip()
    return "\n\n".join(_one_line(p) for p in text.split("\n\n") if p.strip())


def _command_section(path: list[str], command: Any, level: int) -> list[str]:
    arguments, options = _params(command)
    usage = " ".join([*path, "[OPTIONS]", *(_argument_name(a) for a in arguments)])
    lines = [f"{'#' * level} `{' '.join(path)}`", ""]
    help_text = _help_text(command)
    if help_text:
        lines += [help_text, ""]
    lines += ["```", usage, "```", ""]
    if arguments:
        lines += ["**Arguments**", ""]
        for arg in arguments:
            text = _one_line(getattr(arg, "help", None) or "")
            lines.append(f"- `{str(arg.name).upper()}`" + (f": {text}" if text else ""))
        lines.append("")
    if options:
        lines += ["**Options**", ""]
        for opt in options:
            value = "" if getattr(opt, "is_flag", False) else f" {_metavar(opt)}"
            names = ", ".join(f"`{o}{value}`" for o in opt.opts)
            if opt.secondary_opts:
                names += " / " + ", ".join(f"`{o}`" for o in opt.secondary_opts)
            text = _one_line(getattr(opt, "help", None) or "")
            notes = []
            if getattr(opt, "multiple", False):
                notes.append("repeatable")
            if getattr(opt, "required", False):
                notes.append("required")
            default = _default(opt)
            if default is not None:
                notes.append(f"default: `{default}`")
            bounds = _range(opt)
            if bounds:
                notes.append(bounds)
            tail = f" ({'; '.join(notes)})" if notes else ""
            lines.append(f"- {names}" + (f": {text}" if text else "") + tail)
        lines.append("")
    return lines


def _walk(path: list[str], command: Any, level: int) -> list[str]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        return _command_section(path, command, level)
    lines: list[str] = []
    if level > 1:
        lines += [f"{'#' * level} `{' '.join(path)}`", ""]
        help_text = _help_text(command)
        if help_text:
            lines += [help_text, ""]
    for name in subcommands:  # in the order they were declared, the main job first
        sub = subcommands[name]
        if getattr(sub, "hidden", False):
            continue
        child_level = level + 1 if level > 1 or getattr(sub, "commands", None) is None else 2
        lines += _walk([*path, name], sub, child_level)
    return lines


def cli_reference() -> str:
    """docs/reference/cli.md: every command of `llmselect`, from the Typer app itself."""
    import typer

    from llmselect.cli import app

    root = typer.main.get_command(app)
    _, options = _params(root)
    lines = [
        "<!-- Generated by scripts/gen_docs.py from the Typer app: edit the commands' help, not",
        f"     this file. Regenerate with `{REGENERATE}`. -->",
        "",
        "# CLI reference",
        "",
        _help_text(root),
        "",
        "Every command takes `--json` and then prints JSON instead of a table (see the",
        "[JSON reference](json.md)), except `license bom`, whose output is already JSON.",
        "`llmselect COMMAND --help` prints the same text as this page in the terminal.",
        "",
        "```",
        "llmselect [--version] [--debug] COMMAND [ARGS]...",
        "```",
        "",
    ]
    for opt in options:
        text = _one_line(getattr(opt, "help", None) or "")
        lines.append(f"- `{opt.opts[0]}`: {text}")
    lines.append("")
    lines += _walk(["llmselect"], root, 1)
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- JSON schemas


@dataclass(frozen=True)
class Schema:
    name: str
    model: str  # "package.module:Class"
    what: str
    mode: str = "serialization"


SCHEMAS = (
    Schema(
        "selection",
        "llmselect.selection.result:Selection",
        "`select --json` and `results.json` (the printed JSON adds `files`, the paths written)",
    ),
    Schema(
        "model-card",
        "llmselect.catalog:ModelCard",
        "`catalog show --json` (one), `catalog list --json` and `catalog search --json` (a list)",
    ),
    Schema(
        "catalog-finding",
        "llmselect.catalog.check:Finding",
        '`catalog check --json` prints `{"checked": N, "findings": [...]}` of these',
    ),
    Schema(
        "license-report",
        "llmselect.licensing.verdicts:LicenseReport",
        "`license check --json` (the printed JSON adds `openness`, below)",
    ),
    Schema(
        "openness", "llmselect.licensing.openness:Openness", "`openness` in `license check --json`"
    ),
    Schema(
        "license",
        "llmselect.licensing.knowledge:License",
        "`license explain --json` (one), `license list --json` (a list)",
    ),
    Schema(
        "fit",
        "llmselect.sizing.estimate:Fit",
        "`fit --json` (the printed JSON adds `tried`, the precisions tried); "
        "`fit --table --json` prints a list of these",
    ),
    Schema(
        "finetune-memory",
        "llmselect.sizing.finetune:FinetuneMemory",
        '`fit --finetune ... --json` prints `{"model", "hardware", "finetune": ...}` with this',
    ),
    Schema("local-machine", "llmselect.sizing.detect:LocalMachine", "`hardware --json`"),
    Schema(
        "device",
        "llmselect.sizing.hardware:Device",
        "`hardware --list --json` and `hardware --gpu G --json` (each adds `count`)",
    ),
    Schema(
        "measurement",
        "llmselect.sizing.calibration:Measurement",
        'a line of `measurements.jsonl`; `calibrate add --json` prints `{"recorded": ..., "file"}`',
    ),
    Schema("calibration", "llmselect.sizing.calibration:Calibration", "`calibrate show --json`"),
    Schema(
        "eval-results",
        "llmselect.evaluation.results:EvalResults",
        "`eval --json` and `OUT/results.json` (`eval --json` adds `calibration`, what was "
        "recorded for `fit`, and on a Ray cluster `cluster`, where each unit ran)",
    ),
    Schema(
        "eval-sample",
        "llmselect.evaluation.results:SampleLine",
        "a line of `OUT/samples.jsonl`",
    ),
    Schema(
        "runs",
        "llmselect.evaluation.store_records:StoredRuns",
        "`runs list --json` and `runs show --json`: what a result store holds, run by run",
    ),
    Schema(
        "bench",
        "llmselect.serving.results:BenchResult",
        "`bench --json` and `OUT/summary.json`; a line of `OUT/requests.jsonl` is bench-request",
    ),
    Schema(
        "bench-request",
        "llmselect.serving.results:RequestRecord",
        "a line of `OUT/requests.jsonl` (`bench --out`): one request's timings",
    ),
    Schema("data-report", "llmselect.finetune.data_check:DataReport", "`data check --json`"),
    Schema(
        "finetune-result",
        "llmselect.finetune.result:FinetuneResult",
        "`finetune --json` and `OUT/finetune.json`",
    ),
    Schema(
        "select-study",
        "llmselect.study:SelectStudy",
        "the selection study file (`select`, `finetune`), as read",
        mode="validation",
    ),
    Schema(
        "eval-study",
        "llmselect.evaluation.study:EvalStudy",
        "the evaluation study file (`eval`), as read",
        mode="validation",
    ),
    Schema(
        "use-profile",
        "llmselect.licensing.profile:UseProfile",
        "a use profile (`--profile FILE`, `license.profile` in a study), as read",
        mode="validation",
    ),
)


def _model(dotted: str) -> Any:
    import importlib

    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def _type_of(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " or ".join(_type_of(p) for p in prop["anyOf"])
    if "allOf" in prop and len(prop["allOf"]) == 1:
        return _type_of(prop["allOf"][0])
    if "enum" in prop:
        return ", ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = prop.get("type")
    if kind == "array":
        items = prop.get("items")
        return f"list of {_type_of(items)}" if items else "list"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"map of {_type_of(prop['additionalProperties'])}"
    return str(kind) if kind else "any"


def schemas() -> dict[Path, str]:
    """The schema files and the page that lists them, relative to docs/."""
    files: dict[Path, str] = {}
    page = [
        "<!-- Generated by scripts/gen_docs.py from the pydantic models: edit the models, not",
        f"     this file. Regenerate with `{REGENERATE}`. -->",
        "",
        "# JSON schemas",
        "",
        "JSON Schemas of what `--json` prints and of the files llmselect reads, generated from",
        "the pydantic models with `model_json_schema()`. Each section lists the top-level keys;",
        "the linked file is the whole schema (nested objects are under `$defs`). The",
        "[JSON reference](json.md) says what the keys mean. Printed JSON always holds every key",
        "(null where there is no value); the files llmselect reads need only the required ones.",
        "",
    ]
    for spec in SCHEMAS:
        schema = _model(spec.model).model_json_schema(mode=spec.mode)
        path = SCHEMA_DIR / f"{spec.name}.json"
        files[path] = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        page += [
            f"## {spec.name}",
            "",
            f"{spec.what}. Model: `{spec.model.replace(':', '.')}`; schema: "
            f"[{path.name}](schemas/{path.name}).",
            "",
        ]
        if schema.get("description"):
            page += [_one_line(str(schema["description"])), ""]
        page += _key_table(schema, read=spec.mode == "validation")
    files[SCHEMA_PAGE] = "\n".join(page).rstrip("\n") + "\n"
    return files


def _key_table(schema: dict[str, Any], read: bool) -> list[str]:
    """The top-level keys: for a file llmselect reads, which are required and their defaults;
    for what it prints, every key is always there (null where there is no value)."""
    required = set(schema.get("required", []))
    if read:
        lines = ["| key | type | required | default |", "| --- | --- | --- | --- |"]
    else:
        lines = ["| key | type |", "| --- | --- |"]
    for key, prop in schema.get("properties", {}).items():
        kind = _type_of(prop).replace("|", "\\|")
        if read:
            default = prop.get("default")
            shown = "" if default is None else f"`{json.dumps(default, ensure_ascii=False)}`"
            lines.append(f"| `{key}` | {kind} | {'yes' if key in required else ''} | {shown} |")
        else:
            lines.append(f"| `{key}` | {kind} |")
    return [*lines, ""]


def generated() -> dict[Path, str]:
    """Every generated file, relative to docs/, with its text."""
    return {CLI_PAGE: cli_reference(), **schemas()}


def out_of_date(docs: Path = DOCS) -> list[Path]:
    """The generated files (relative to `docs`) whose committed text is not what the code
    gives now, and schema files no model gives any more."""
    files = generated()
    stale = [p for p, text in files.items() if _read(docs / p) != text]
    extra = sorted(
        p.relative_to(docs)
        for p in (docs / SCHEMA_DIR).glob("*.json")
        if p.relative_to(docs) not in files
    )
    return stale + extra


def write(docs: Path = DOCS) -> int:
    """Write every generated file under `docs` and remove schema files no model gives."""
    files = generated()
    for path, text in files.items():
        target = docs / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for old in (docs / SCHEMA_DIR).glob("*.json"):
        if old.relative_to(docs) not in files:
            old.unlink()
    return len(files)


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the documentation's generated pages.")
    parser.add_argument("--check", action="store_true", help="only name out-of-date files")
    args = parser.parse_args(argv)
    if args.check:
        stale = out_of_date()
        for path in stale:
            print(f"out of date: docs/{path} (regenerate with `{REGENERATE}`)")
        return 1 if stale else 0
    print(f"wrote {write()} files under docs/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
