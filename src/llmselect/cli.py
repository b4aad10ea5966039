"""The `llmselect` command: parses arguments, calls the library, renders the result.

Heavy modules are imported inside the commands so that `llmselect --help` stays fast.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from llmselect import __version__
from llmselect.errors import LLMSelectError

if TYPE_CHECKING:
    from llmselect.catalog import ModelCard
    from llmselect.evaluation.results import EvalResults
    from llmselect.sizing.engines import Engine
    from llmselect.sizing.estimate import Fit
    from llmselect.sizing.hardware import Device


class _Guarded(TyperGroup):
    """The floor under every command: an exception no error message was written for becomes one
    line and a hint, never a traceback (`llmselect --debug ...` shows it)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["llmselect.args"] = list(args)  # to answer in JSON where --json was asked
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (TyperException, typer.Exit, typer.Abort):  # usage errors and exits: as they are
            raise
        except Exception as exc:
            if ctx.meta.get("llmselect.debug"):
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            error = LLMSelectError(
                f"unexpected {type(exc).__name__}" + (f": {first}" if first else ""),
                hint="rerun with `llmselect --debug ...` to see where it happened, and report it",
            )
            fail(error, "--json" in ctx.meta.get("llmselect.args", []))


app = typer.Typer(
    cls=_Guarded,
    help="Choose an open-source LLM for your hardware, data and legal constraints.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(help="Browse, search and extend the model catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
license_app = typer.Typer(
    help="Licenses of code, weights and training data, through the lineage.", no_args_is_help=True
)
app.add_typer(license_app, name="license")
calibrate_app = typer.Typer(
    help="Measured runs that correct the speed estimates.", no_args_is_help=True
)
app.add_typer(calibrate_app, name="calibrate")
data_app = typer.Typer(help="Check fine-tuning data before training.", no_args_is_help=True)
app.add_typer(data_app, name="data")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
T = TypeVar("T")


def _version(value: bool) -> None:
    if value:
        print(f"llmselect {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")
    ] = False,
) -> None:
    """llmselect answers: which open LLM, on which hardware, under which license, and how well."""
    ctx.meta["llmselect.debug"] = debug


def emit_json(data: Any) -> None:
    from llmselect.console import printable_json

    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write(printable_json(text) + "\n")


def fail(exc: LLMSelectError, as_json: bool) -> NoReturn:
    if as_json:
        emit_json(
            {
                "error": {
                    "message": exc.message,
                    "file": exc.file,
                    "line": exc.line,
                    "field": exc.field,
                    "hint": exc.hint,
                }
            }
        )
    from llmselect.console import err_console

    err_console().print(f"[bold red]error:[/] {_escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def run(as_json: bool, work: Callable[[], T]) -> T:
    """Call the library; a user-facing error becomes a message and an exit code, not a trace."""
    try:
        return work()
    except LLMSelectError as exc:
        fail(exc, as_json)


def _count(option: str) -> Callable[[str | None], int | None]:
    def parse(value: str | None) -> int | None:
        from llmselect.units import parse_count

        if value is None:
            return None
        try:
            return parse_count(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=option) from None

    return parse


MAX_CONTEXT = 100_000_000
"""Tokens no model reads at once (the catalog's longest context is 10M): beyond it, a typo."""


def _tokens(option: str, value: str) -> int:
    """A token count (`--context`, `--prompt`): at least one, at most MAX_CONTEXT."""
    tokens = _count(option)(value) or 0
    if not 1 <= tokens <= MAX_CONTEXT:
        raise typer.BadParameter(
            f"{value!r} is {tokens:,} tokens; give 1 to {MAX_CONTEXT:,}", param_hint=option
        )
    return tokens


def _prompt_tokens(prompt: str | None, context: int) -> int | None:
    """The prompt is part of the context (prompt plus generated tokens), so it fits in it."""
    if prompt is None:
        return None
    tokens = _tokens("--prompt", prompt)
    if tokens > context:
        raise typer.BadParameter(
            f"a prompt of {tokens:,} tokens is longer than the context of {context:,} "
            "(--context counts prompt plus generated tokens): raise --context or lower --prompt",
            param_hint="--prompt",
        )
    return tokens


# --------------------------------------------------------------------------- catalog


@catalog_app.command("list")
def catalog_list(
    sort: Annotated[str, typer.Option(help="Sort by: family, params, date, name.")] = "family",
    as_json: JsonFlag = False,
) -> None:
    """Show every model in the catalog (built-in and imported)."""
    from llmselect.catalog import load_catalog

    catalog = run(as_json, load_catalog)
    _print_cards(list(catalog), sort, f"{len(catalog)} models", as_json)


@catalog_app.command("show")
def catalog_show(
    model_id: Annotated[
        str, typer.Argument(help="Hugging Face repo id, e.g. meta-llama/Llama-2-7b-hf.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Show one model in full: architecture, parameter count, licenses, lineage, scores, sources."""
    from llmselect.catalog import load_catalog

    catalog = run(as_json, load_catalog)
    card = run(as_json, lambda: catalog.get(model_id))
    if as_json:
        emit_json(card.to_public_dict())
        return
    from llmselect.console import console, model_detail

    console().print(model_detail(card, catalog))


@catalog_app.command("search")
def catalog_search(
    min_params: Annotated[
        str | None, typer.Option("--min-params", help="Smallest total size, e.g. 1B, 500M.")
    ] = None,
    max_params: Annotated[
        str | None, typer.Option("--max-params", help="Largest total size, e.g. 13B.")
    ] = None,
    max_active: Annotated[
        str | None,
        typer.Option("--max-active", help="Most parameters used per token (MoE), e.g. 32B."),
    ] = None,
    min_context: Annotated[
        str | None, typer.Option("--min-context", help="Shortest context, e.g. 8k or 8192.")
    ] = None,
    license_ids: Annotated[
        list[str] | None,
        typer.Option("--license", help="Weights license id (repeat for several), e.g. apache-2.0."),
    ] = None,
    family: Annotated[str | None, typer.Option(help="Family, e.g. llama-2.")] = None,
    organization: Annotated[str | None, typer.Option("--org", help="Organization.")] = None,
    kind: Annotated[str | None, typer.Option(help="base, instruct, chat or code.")] = None,
    finetuned_from: Annotated[
        str | None, typer.Option("--finetuned-from", help="Models derived from this id.")
    ] = None,
    commercial: Annotated[
        bool,
        typer.Option(
            "--commercial",
            help="Only models whose weights license tag allows commercial use (maybe with duties).",
        ),
    ] = False,
    released_after: Annotated[
        str | None, typer.Option("--released-after", help="Released after this date (YYYY-MM-DD).")
    ] = None,
    text: Annotated[str | None, typer.Option(help="Substring of the id or name.")] = None,
    sort: Annotated[str, typer.Option(help="Sort by: family, params, date, name.")] = "family",
    as_json: JsonFlag = False,
) -> None:
    """Filter the catalog by size, context, license, family, lineage, kind and date."""
    from llmselect.catalog import Criteria, Kind, load_catalog

    after: date | None = None
    if released_after is not None:
        try:
            after = date.fromisoformat(released_after)
        except ValueError:
            raise typer.BadParameter(
                f"{released_after!r} is not a date; write YYYY-MM-DD", param_hint="--released-after"
            ) from None
    kind_value: Kind | None = None
    if kind is not None:
        try:
            kind_value = Kind(kind.lower())
        except ValueError:
            choices = ", ".join(k.value for k in Kind)
            raise typer.BadParameter(f"choose one of {choices}", param_hint="--kind") from None
    licenses = {lic.lower() for lic in license_ids} if license_ids else None
    if commercial:
        from llmselect.licensing import commercially_usable

        ok = commercially_usable()
        licenses = ok if licenses is None else licenses & ok
    criteria = Criteria(
        min_params=_count("--min-params")(min_params),
        max_params=_count("--max-params")(max_params),
        max_active_params=_count("--max-active")(max_active),
        min_context=_count("--min-context")(min_context),
        licenses=licenses,
        family=family,
        organization=organization,
        kind=kind_value,
        finetuned_from=finetuned_from,
        released_after=after,
        text=text,
    )
    catalog = run(as_json, load_catalog)
    cards = catalog.search(criteria)
    _print_cards(cards, sort, f"{len(cards)} of {len(catalog)} models match", as_json)


def _print_cards(cards: list[ModelCard], sort: str, title: str, as_json: bool) -> None:
    from llmselect.console import console, model_table, sort_cards

    ordered = run(as_json, lambda: sort_cards(cards, sort))
    if as_json:
        emit_json([c.to_public_dict() for c in ordered])
    else:
        console().print(model_table(ordered, title=title))


@catalog_app.command("check")
def catalog_check(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Family files to check (default: the whole catalog)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check catalog entries: parameter counts agree with architectures, facts have sources."""
    from llmselect.catalog import load_catalog
    from llmselect.catalog.check import check_catalog
    from llmselect.catalog.families import read_family_file
    from llmselect.licensing import load_licenses

    catalog = run(as_json, load_catalog)
    if files:
        cards = run(as_json, lambda: [card for path in files for card in read_family_file(path)])
        for card in cards:
            catalog.add(card, replace=True)  # so that lineage inside the files resolves
    else:
        cards = list(catalog)
    findings = check_catalog(cards, catalog, set(load_licenses()))
    errors = sum(f.level == "error" for f in findings)
    if as_json:
        emit_json({"checked": len(cards), "findings": [f.model_dump() for f in findings]})
    else:
        from rich.text import Text

        from llmselect.console import console

        out = console()
        for f in findings:
            style = "red" if f.level == "error" else "yellow"
            out.print(Text.assemble((f"{f.level:7} ", style), (f.model, "bold"), f"  {f.message}"))
        warnings = len(findings) - errors
        out.print(f"{len(cards)} models checked: {errors} errors, {warnings} warnings")
    if errors:
        raise typer.Exit(1)


@catalog_app.command("import")
def catalog_import(
    source: Annotated[
        str,
        typer.Argument(
            help="A local Hugging Face model folder, a .gguf file, or a Hub repo id (online)."
        ),
    ],
    model_id: Annotated[
        str | None, typer.Option("--id", help="The id to file it under (default: guessed).")
    ] = None,
    family: Annotated[str | None, typer.Option(help="Family name (default: model type).")] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Write over an entry with the same id.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Read a model's facts and add it to your catalog, where it behaves like a built-in one."""
    from llmselect.catalog.importers import import_any
    from llmselect.catalog.user import check_model_id, save_user_card, user_files_of

    if model_id is not None:
        run(as_json, lambda: check_model_id(model_id, option="--id"))
    card = run(as_json, lambda: import_any(source, model_id=model_id, family=family))
    replaced = user_files_of(card.id) if replace else []
    path = run(as_json, lambda: save_user_card(card, replace=replace))
    if as_json:
        emit_json(
            {
                "saved": str(path),
                "replaced": [str(p) for p in replaced],
                "model": card.to_public_dict(),
            }
        )
        return
    from llmselect.catalog import load_catalog
    from llmselect.console import console, model_detail

    console().print(model_detail(card, run(as_json, load_catalog)))
    for old in replaced:
        console().print(f"[yellow]replaced[/] {_escape(str(old))}")
    console().print(f"[green]saved[/] {_escape(str(path))}")


@catalog_app.command("remove")
def catalog_remove(
    model_id: Annotated[str, typer.Argument(help="Id of a model you imported.")],
    as_json: JsonFlag = False,
) -> None:
    """Remove an imported model from your catalog (built-in models cannot be removed)."""
    from llmselect.catalog.user import remove_user_card

    path = run(as_json, lambda: remove_user_card(model_id))
    if as_json:
        emit_json({"removed": model_id, "file": str(path)})
        return
    from llmselect.console import console

    console().print(f"removed {_escape(model_id)} ({_escape(str(path))})")


# --------------------------------------------------------------------------- license


@license_app.command("check")
def license_check(
    model_id: Annotated[str, typer.Argument(help="Model id from the catalog.")],
    profile_file: Annotated[
        Path | None, typer.Option("--profile", help="Use profile YAML; flags override it.")
    ] = None,
    commercial: Annotated[
        bool | None,
        typer.Option("--commercial/--non-commercial", help="Commercial use (default: yes)."),
    ] = None,
    users: Annotated[
        str | None, typer.Option("--users", help="Expected monthly active users, e.g. 1M.")
    ] = None,
    revenue: Annotated[
        str | None, typer.Option("--revenue", help="Annual revenue in USD, e.g. 5M.")
    ] = None,
    redistribute: Annotated[
        bool | None, typer.Option("--redistribute/--no-redistribute", help="Ship the weights.")
    ] = None,
    hosted: Annotated[
        bool | None,
        typer.Option("--hosted/--not-hosted", help="Offer it to third parties as a service."),
    ] = None,
    derivative: Annotated[
        bool | None,
        typer.Option(
            "--distribute-derivative/--no-derivative", help="Fine-tune and distribute the result."
        ),
    ] = None,
    train_on_outputs: Annotated[
        bool | None,
        typer.Option(
            "--train-on-outputs/--no-train-on-outputs",
            help="Use its outputs to train or improve another model.",
        ),
    ] = None,
    fields: Annotated[
        list[str] | None,
        typer.Option("--field", help="Field of use (repeat), e.g. medical, military."),
    ] = None,
    jurisdictions: Annotated[
        list[str] | None, typer.Option("--jurisdiction", help="Where it is used (repeat).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Verdicts for code, weights and data: allowed, conditional, blocked or unknown.

    Each reason names its clause and the ancestor or dataset it comes from."""
    from pydantic import ValidationError

    from llmselect.catalog import load_catalog
    from llmselect.licensing.openness import openness
    from llmselect.licensing.profile import FIELDS_OF_USE, UseProfile, load_profile
    from llmselect.licensing.verdicts import license_report

    unknown = [f for f in fields or [] if f.strip().lower() not in FIELDS_OF_USE]
    if unknown:
        raise typer.BadParameter(
            f"unknown field of use {unknown[0]!r}; choose from {', '.join(FIELDS_OF_USE)}",
            param_hint="--field",
        )
    base = run(as_json, lambda: load_profile(profile_file)) if profile_file else UseProfile()
    overrides = {
        "commercial": commercial,
        "monthly_active_users": _count("--users")(users),
        "annual_revenue_usd": _count("--revenue")(revenue),
        "redistribute_weights": redistribute,
        "hosted_service": hosted,
        "distribute_derivative": derivative,
        "train_other_models_on_outputs": train_on_outputs,
        "field_of_use": fields,
        "jurisdictions": jurisdictions,
    }
    try:
        profile = UseProfile.model_validate(
            base.model_dump() | {k: v for k, v in overrides.items() if v is not None}
        )
    except ValidationError as exc:
        # The first error's own words: the last line of the text is pydantic's help link.
        raise typer.BadParameter(exc.errors()[0]["msg"], param_hint="--field") from None
    catalog = run(as_json, load_catalog)
    card = run(as_json, lambda: catalog.get(model_id))
    report = license_report(card, catalog, profile)
    open_ = openness(card, catalog)
    if as_json:
        emit_json(report.model_dump(mode="json") | {"openness": open_.model_dump(mode="json")})
    else:
        from llmselect.console import console, license_detail

        console().print(license_detail(report, open_))
    if report.overall == "blocked":
        raise typer.Exit(3)


@license_app.command("explain")
def license_explain(
    license_id: Annotated[str, typer.Argument(help="License id, e.g. llama2 or apache-2.0.")],
    as_json: JsonFlag = False,
) -> None:
    """What a license allows and requires, term by term, with the clause each comes from."""
    from llmselect.licensing import get_license

    lic = run(as_json, lambda: get_license(license_id))
    if as_json:
        emit_json(lic.model_dump(mode="json"))
        return
    from llmselect.console import console, license_terms

    console().print(license_terms(lic))


@license_app.command("list")
def license_list(as_json: JsonFlag = False) -> None:
    """Every license in the knowledge base."""
    from llmselect.licensing import load_licenses

    licenses = sorted(run(as_json, load_licenses).values(), key=lambda lic: lic.id)
    if as_json:
        emit_json([lic.model_dump(mode="json") for lic in licenses])
        return
    from llmselect.console import console, license_table

    console().print(license_table(licenses))


@license_app.command("bom")
def license_bom(
    model_id: Annotated[str, typer.Argument(help="Model id from the catalog.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the BOM here (default: stdout).")
    ] = None,
) -> None:
    """A CycloneDX 1.6 ML-BOM (JSON): the model, its ancestors and datasets, with licenses."""
    from llmselect.catalog import load_catalog
    from llmselect.licensing.bom import ml_bom

    catalog = run(False, load_catalog)
    card = run(False, lambda: catalog.get(model_id))
    text = json.dumps(ml_bom(card, catalog), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- sizing


@app.command("hardware")
def hardware(
    gpu: Annotated[
        str | None, typer.Option("--gpu", help="Show this profile instead, e.g. 'H100-80GB x2'.")
    ] = None,
    list_all: Annotated[bool, typer.Option("--list", help="Every known hardware profile.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """What this machine has (NVIDIA GPUs, CPU, RAM), or a named hardware profile."""
    from llmselect.console import console, device_table, machine_detail
    from llmselect.sizing.detect import detect
    from llmselect.sizing.hardware import load_devices, parse_gpu

    if list_all or gpu:
        if gpu:
            device, count = run(as_json, lambda: parse_gpu(gpu))
            devices = [device]
        else:
            devices, count = list(run(as_json, load_devices).values()), 1
        if as_json:
            emit_json([d.model_dump(mode="json") | {"count": count} for d in devices])
        else:
            console().print(device_table(devices, count))
        return
    machine = detect()
    if as_json:
        emit_json(machine.model_dump(mode="json"))
    else:
        console().print(machine_detail(machine))


@app.command("fit")
def fit(
    model_id: Annotated[str, typer.Argument(help="Model id from the catalog.")],
    gpu: Annotated[
        str | None,
        typer.Option(
            "--gpu", help="Hardware, e.g. H100-80GB, '2x RTX-4090' (default: this machine)."
        ),
    ] = None,
    context: Annotated[
        str, typer.Option(help="Tokens per sequence, prompt plus generated, e.g. 8k.")
    ] = "4096",
    batch: Annotated[int, typer.Option(min=1, max=65536, help="Sequences at once.")] = 1,
    prompt: Annotated[
        str | None, typer.Option(help="Prompt tokens for the time to first token (default: half).")
    ] = None,
    quant: Annotated[
        str | None,
        typer.Option(
            "--quant",
            "--dtype",
            help="bf16, fp8, int8, awq, q4_k_m, ... (default: best that fits).",
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(help="vllm, llama.cpp, transformers-compiled, ... (default: by quant)."),
    ] = None,
    kv_dtype: Annotated[str, typer.Option("--kv-dtype", help="fp16, bf16, fp8 or int8.")] = "fp16",
    price: Annotated[
        float | None, typer.Option("--price", help="Price per device-hour, for cost per 1M tokens.")
    ] = None,
    table: Annotated[
        bool, typer.Option("--table", help="Memory across precisions and context lengths.")
    ] = False,
    finetune: Annotated[
        str | None,
        typer.Option("--finetune", help="Training memory and time instead: full, lora or qlora."),
    ] = None,
    lora_rank: Annotated[int, typer.Option("--lora-rank", min=1, max=4096)] = 16,
    targets: Annotated[
        str,
        typer.Option(
            "--targets", help="LoRA targets: attention, all-linear, or names (q_proj,v_proj)."
        ),
    ] = "all-linear",
    checkpointing: Annotated[
        bool, typer.Option("--checkpointing/--no-checkpointing", help="Gradient checkpointing.")
    ] = True,
    precision: Annotated[
        str,
        typer.Option(
            "--precision", help="Full fine-tuning state: mixed (fp32 master), bf16 or fp32."
        ),
    ] = "mixed",
    optimizer: Annotated[
        str,
        typer.Option("--optimizer", help="adamw, adamw-8bit, paged-adamw-8bit or sgd."),
    ] = "adamw",
    examples: Annotated[
        int | None, typer.Option("--examples", min=1, help="Training examples, for epoch time.")
    ] = None,
    tokens_per_example: Annotated[
        int | None, typer.Option("--tokens-per-example", min=1, help="Average tokens per example.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Will it fit, how fast, at what cost (with --finetune: what training needs).

    Memory breakdown, largest context and batch, time to first token, tokens per second."""
    from llmselect.catalog import load_catalog
    from llmselect.sizing.engines import get_engine
    from llmselect.sizing.estimate import (
        KV_BYTES,
        best_fit,
        default_engine_id,
        estimate,
        require_sizable,
    )

    context_tokens = _tokens("--context", context)
    prompt_tokens = _prompt_tokens(prompt, context_tokens)
    if price is not None and not (math.isfinite(price) and price >= 0):
        raise typer.BadParameter(
            f"{price} is not a price: give 0 or more per device-hour", param_hint="--price"
        )
    if kv_dtype not in KV_BYTES:
        raise typer.BadParameter(f"choose one of {', '.join(KV_BYTES)}", param_hint="--kv-dtype")
    catalog = run(as_json, load_catalog)
    card = run(as_json, lambda: catalog.get(model_id))
    run(as_json, lambda: require_sizable(card))
    device, count = run(as_json, lambda: _target_hardware(gpu))

    from llmselect.sizing.calibration import builtin_measurements, calibrate, load_measurements

    measurements = run(as_json, load_measurements)
    shipped = run(as_json, builtin_measurements)
    calibrated: dict[str, str] = {}

    def engine_for(scheme: str) -> Engine:
        base = run(as_json, lambda: get_engine(engine or default_engine_id(scheme, device)))
        tuned, calibration = calibrate(base, device, measurements, catalog, shipped)
        if calibration:
            samples = max(calibration.decode_samples, calibration.prefill_samples)
            whose = " shipped with llmselect" if calibration.shipped else ""
            calibrated[base.id] = f"calibrated from {samples} run(s){whose}"
        return tuned

    if finetune:
        from llmselect.sizing.finetune import finetune_memory

        if finetune not in ("full", "lora", "qlora"):
            raise typer.BadParameter("choose full, lora or qlora", param_hint="--finetune")
        from llmselect.sizing.finetune import target_modules

        try:
            target_modules(targets)
        except LLMSelectError as exc:
            raise typer.BadParameter(str(exc), param_hint="--targets") from None
        if precision not in ("mixed", "bf16", "fp32"):
            raise typer.BadParameter("choose mixed, bf16 or fp32", param_hint="--precision")
        if optimizer not in ("adamw", "adamw-8bit", "paged-adamw-8bit", "sgd"):
            raise typer.BadParameter(
                "choose adamw, adamw-8bit, paged-adamw-8bit or sgd", param_hint="--optimizer"
            )
        training = run(
            as_json,
            lambda: finetune_memory(
                card.architecture,
                device,
                count,
                method=finetune,  # type: ignore[arg-type]
                seq=context_tokens,
                batch=batch,
                rank=lora_rank,
                targets=targets,
                checkpointing=checkpointing,
                examples=examples,
                tokens_per_example=tokens_per_example,
                precision=precision,  # type: ignore[arg-type]
                optimizer=optimizer,  # type: ignore[arg-type]
            ),
        )
        if as_json:
            emit_json(
                {
                    "model": card.id,
                    "hardware": f"{count}x {device.id}" if count > 1 else device.id,
                    "finetune": training.model_dump(mode="json"),
                }
            )
        else:
            from llmselect.console import console, finetune_detail

            console().print(finetune_detail(card.id, device.id, count, training))
        if not training.fits:
            raise typer.Exit(4)
        return

    if table:
        from llmselect.sizing.estimate import fit_grid

        grid = run(as_json, lambda: fit_grid(card, device, count, engine_for, batch, kv_dtype))
        if as_json:
            emit_json([f.model_dump(mode="json") for f in grid])
        else:
            from llmselect.console import console, fit_grid_table

            console().print(fit_grid_table(grid))
        return

    def work() -> tuple[Fit, list[Fit]]:
        if quant:
            one = estimate(
                card,
                device,
                count,
                engine_for(quant),
                quant=quant,
                context=context_tokens,
                batch=batch,
                prompt_tokens=prompt_tokens,
                kv_dtype=kv_dtype,
                price_per_device_hour=price,
            )
            return one, [one]
        return best_fit(
            card,
            device,
            count,
            engine_for,
            context=context_tokens,
            batch=batch,
            prompt_tokens=prompt_tokens,
            kv_dtype=kv_dtype,
            price_per_device_hour=price,
        )

    chosen, tried = run(as_json, work)
    if chosen.engine in calibrated:
        chosen.warnings.append(f"{chosen.engine} on {device.id} {calibrated[chosen.engine]}")
    if as_json:
        emit_json(chosen.model_dump(mode="json") | {"tried": [t.quant for t in tried]})
    else:
        from llmselect.console import console, fit_detail

        console().print(fit_detail(chosen, tried, chose=quant is None))
    if not chosen.fits:
        raise typer.Exit(4)


@calibrate_app.command("add")
def calibrate_add(
    model_id: Annotated[str, typer.Option("--model", help="Model id from the catalog.")],
    gpu: Annotated[str, typer.Option("--gpu", help="Hardware it ran on, e.g. 'H100-80GB'.")],
    engine: Annotated[str, typer.Option(help="Engine profile id, e.g. vllm.")],
    quant: Annotated[str, typer.Option("--quant", help="Precision or GGUF type.")],
    tps: Annotated[
        float | None, typer.Option("--tps", help="Measured decode tokens/s per sequence.")
    ] = None,
    ttft: Annotated[
        float | None, typer.Option("--ttft", help="Measured seconds to 1st token.")
    ] = None,
    batch: Annotated[int, typer.Option(min=1)] = 1,
    context: Annotated[str, typer.Option(help="Tokens per sequence.")] = "4096",
    prompt: Annotated[str | None, typer.Option(help="Prompt tokens (default: half).")] = None,
    source: Annotated[str, typer.Option(help="Who or what measured it.")] = "manual entry",
    as_json: JsonFlag = False,
) -> None:
    """Record one measured run (decode tokens/s and/or time to first token)."""
    import datetime

    from llmselect.catalog import load_catalog
    from llmselect.sizing.calibration import Measurement, record
    from llmselect.sizing.engines import get_engine
    from llmselect.sizing.quant import normalize

    if tps is None and ttft is None:
        raise typer.BadParameter("give --tps, --ttft or both", param_hint="--tps")
    card = run(as_json, lambda: load_catalog().get(model_id))
    device, count = run(as_json, lambda: _target_hardware(gpu))
    context_tokens = _tokens("--context", context)
    measurement = Measurement(
        model=card.id,
        device=device.id,
        devices=count,
        engine=run(as_json, lambda: get_engine(engine)).id,
        quant=run(as_json, lambda: normalize(quant)),
        batch=batch,
        context=context_tokens,
        prompt_tokens=_prompt_tokens(prompt, context_tokens) or max(1, context_tokens // 2),
        decode_tokens_per_s=tps,
        ttft_s=ttft,
        measured_at=datetime.datetime.now(datetime.UTC),
        source=source,
    )
    path = record(measurement)
    if as_json:
        emit_json({"recorded": measurement.model_dump(mode="json"), "file": str(path)})
    else:
        from llmselect.console import console

        console().print(f"recorded in {_escape(str(path))}")


@calibrate_app.command("show")
def calibrate_show(as_json: JsonFlag = False) -> None:
    """Calibrated efficiencies per engine and device, from the recorded measurements."""
    from llmselect.catalog import load_catalog
    from llmselect.sizing.calibration import builtin_measurements, calibrate, load_measurements
    from llmselect.sizing.detect import CPU_REFERENCE, LOCAL_CPU_ID
    from llmselect.sizing.engines import get_engine
    from llmselect.sizing.hardware import find_device

    measurements = run(as_json, load_measurements)
    shipped = run(as_json, builtin_measurements)
    catalog = run(as_json, load_catalog)
    pairs = sorted({(m.engine, m.device) for m in measurements + shipped})
    results = []
    for engine_id, device_id in pairs:
        base = run(as_json, partial(get_engine, engine_id))
        if device_id == LOCAL_CPU_ID:  # this machine's CPU: no listed profile, its reference
            device = find_device(CPU_REFERENCE).model_copy(update={"id": LOCAL_CPU_ID})
        else:
            device = run(as_json, partial(find_device, device_id))
        _, calibration = calibrate(base, device, measurements, catalog, shipped)
        if calibration:
            results.append((base, calibration))
    if as_json:
        emit_json([c.model_dump(mode="json") for _, c in results])
        return
    from llmselect.console import calibration_table, console

    console().print(calibration_table(results, len(measurements), len(shipped)))


# --------------------------------------------------------------------------- evaluation


@app.command("eval")
def evaluate(
    study_file: Annotated[Path, typer.Argument(help="Evaluation study (YAML).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for results.json and samples.jsonl.")],
    store: Annotated[
        Path | None, typer.Option("--store", help="Result store (default: OUT/store.sqlite).")
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Ignore stored outputs (default: resume from them).")
    ] = False,
    no_record: Annotated[
        bool,
        typer.Option(
            "--no-record", help="Do not record local models' measured speed for `fit` calibration."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run each candidate on your own examples; scores with 95% CIs and paired comparisons.

    Outputs are stored as they come: rerunning after a crash or Ctrl-C resumes where it stopped."""
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    from llmselect.jobs.evaluate import evaluate as evaluate_job

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=as_json, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(model: str, done: int, total: int) -> None:
            if model not in tasks:
                tasks[model] = bar.add_task(model, total=total)
            bar.update(tasks[model], completed=done)

        done = run(
            as_json,
            lambda: evaluate_job(
                study_file,
                out,
                store=store,
                fresh=fresh,
                record_speed=not no_record,
                progress=progress,
            ),
        )
    if as_json:
        emit_json(done.to_json())
        _exit_if_items_failed(done.results)
        return
    from llmselect.console import console, eval_summary

    console().print(eval_summary(done.results))
    speeds = done.calibration
    for entry in speeds.recorded if speeds else []:
        _stderr(
            f"recorded for `fit` calibration: {entry.model} on {entry.device}, "
            f"{entry.decode_tokens_per_s:.3g} tokens/s per sequence at batch {entry.batch}"
        )
    for skip in speeds.skipped if speeds else []:
        if skip.card:  # said only where the user named a catalog model
            _stderr(f"not recorded for calibration ({skip.candidate}): {skip.reason}")
    _exit_if_items_failed(done.results)


def _exit_if_items_failed(results: EvalResults) -> None:
    """Items that got no output are neither stored nor scored: say which and why, and exit 1."""
    from llmselect.console import err_console

    failed = {name: model for name, model in results.models.items() if model.failed}
    for name, model in failed.items():
        err_console().print(
            f"[bold red]error:[/] {_escape(name)}: {model.failed} of "
            f"{results.dataset.items} items got no usable output; they are not stored "
            "or scored, and rerunning retries them",
            soft_wrap=True,
        )
        for entry in model.errors[:3]:
            err_console().print(_escape(f"  {entry.item_id}: {entry.error}"), soft_wrap=True)
    if failed:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- fine-tuning data


@data_app.command("check")
def data_check(
    train: Annotated[
        Path,
        typer.Argument(help="Training set: a data file, or a dataset folder (its train split)."),
    ],
    eval_set: Annotated[
        Path | None,
        typer.Option("--eval", help="Evaluation set (file or folder), checked for leakage."),
    ] = None,
    input_field: Annotated[str, typer.Option(help="Column holding the prompt.")] = "input",
    reference_field: Annotated[
        str, typer.Option(help="Column holding the answer to train on.")
    ] = "reference",
    near_threshold: Annotated[
        float,
        typer.Option(help="Jaccard of character 5-grams from which rows are near duplicates."),
    ] = 0.8,
    model: Annotated[
        str | None,
        typer.Option(
            help="Local model folder (its tokenizer counts tokens) or catalog id (its context; "
            "tokens estimated as characters / 4)."
        ),
    ] = None,
    max_tokens: Annotated[
        str | None,
        typer.Option(help="Training sequence length in tokens, e.g. 2048 (default: the context)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Is this data ready for fine-tuning? Duplicates, leakage, lengths, labels, a verdict.

    Exits 0 when the data is ready or usable with warnings, 5 when it is not ready, 1 or 2 on
    an error."""
    from llmselect.evaluation.datasets import FieldMap
    from llmselect.finetune.data_check import NOT_READY_EXIT_CODE, check_data

    tokens = _count("--max-tokens")(max_tokens)
    report = run(
        as_json,
        lambda: check_data(
            train,
            eval_set,
            fields=FieldMap(input=input_field, reference=reference_field),
            near_threshold=near_threshold,
            model=model,
            max_tokens=tokens,
        ),
    )
    if as_json:
        emit_json(report.model_dump(mode="json"))
    else:
        from llmselect.console import console, data_report

        console().print(data_report(report))
    if report.verdict == "not ready":
        raise typer.Exit(NOT_READY_EXIT_CODE)


@app.command("init")
def init(
    folder: Annotated[Path, typer.Argument(help="Folder for the new study (created).")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Start a study: study.yaml with comments, a use profile and an example dataset."""
    from llmselect.selection.scaffold import scaffold

    written = run(as_json, lambda: scaffold(folder, force=force))
    if as_json:
        emit_json({"files": [str(p) for p in written]})
        return
    from llmselect.console import console

    for path in written:
        console().print(f"wrote {_escape(str(path))}")
    console().print(
        f"next: edit {_escape(str(written[0]))}, then `llmselect select {_escape(str(written[0]))}`"
    )


@app.command("demo")
def demo(
    folder: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Where the demo builds its models and report (default: user data)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The whole pipeline on this machine, offline: demo models trained here, the real catalog.

    Trains four small quiz models (seconds), fine-tunes the base one, measures them all on the
    quiz, judges them and the catalog's small instruct models on license, fit and speed here,
    and writes the report."""
    from llmselect.demo import build_demo
    from llmselect.demo.finetune import finetune_demo
    from llmselect.demo.study import write_demo_study
    from llmselect.paths import data_dir

    dest = (folder or data_dir() / "demo").resolve()

    def say(text: str) -> None:
        if not as_json:
            _stderr(text)

    build = run(as_json, lambda: build_demo(dest, progress=say))
    if build.seconds:
        say(f"built {len(build.models)} demo models in {build.seconds:.0f} s under {dest}")
    study_file = write_demo_study(dest, build)
    began = time.perf_counter()
    tuned, trained = run(
        as_json, lambda: finetune_demo(study_file, rebuilt=build.seconds > 0, progress=say)
    )
    if trained:
        say(f"fine-tuned and measured in {time.perf_counter() - began:.0f} s: {tuned}")
    select(study_file, out=None, report=True, measure=True, fresh=False, as_json=as_json)


def _stderr(text: str) -> None:
    from llmselect.console import err_console

    err_console().print(_escape(text), style="dim")


@app.command("select")
def select(
    study_file: Annotated[Path, typer.Argument(help="Selection study (YAML), e.g. from `init`.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder for the report and results (default: STUDY_DIR/selection)."
        ),
    ] = None,
    report: Annotated[
        bool,
        typer.Option("--report/--no-report", help="Write report.html, report.md, results.json."),
    ] = True,
    measure: Annotated[
        bool,
        typer.Option(
            "--measure/--no-measure", help="Run the candidates in candidates.run on the data."
        ),
    ] = True,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Ignore stored outputs (default: resume from them).")
    ] = False,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help="List every ranked and excluded model in the terminal (default: the first 25 "
            "ranked, and the excluded counted by cause when more than 10).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """The main job: from a use case to a ranked shortlist and a recommendation, with a report.

    catalog → license verdicts → fit and latency on the target hardware → measured evaluation
    → ranking. Every excluded model is listed with its reason.
    Exit code 5 when nothing qualifies."""
    from llmselect.selection.pipeline import select as run_selection
    from llmselect.selection.study import load_select_study

    study, profile = run(as_json, lambda: load_select_study(study_file))
    out_dir = out or study_file.resolve().parent / "selection"
    if fresh:
        _remove_store(out_dir / "evaluation" / "store.sqlite")
    with _measure_progress(as_json) as progress:
        selection = run(
            as_json,
            lambda: run_selection(
                study, profile, study_file, out_dir=out_dir, measure=measure, progress=progress
            ),
        )
    files: dict[str, Path] = {}
    if report:
        from llmselect.report import write_report

        files = run(as_json, lambda: write_report(selection, out_dir))
    if as_json:
        emit_json(
            selection.model_dump(mode="json") | {"files": {k: str(v) for k, v in files.items()}}
        )
    else:
        from llmselect.console import console, selection_summary

        console().print(selection_summary(selection, show_all=show_all))
        for path in files.values():
            console().print(f"wrote {_escape(str(path))}")
    if selection.recommendation.model is None:
        raise typer.Exit(5)


def _remove_store(store_path: Path) -> None:
    # The write-ahead log and its index go too: an old log must not replay into a new store.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store_path}{suffix}").unlink(missing_ok=True)


@contextmanager
def _measure_progress(as_json: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A Rich progress bar per model while outputs are produced; silent with --json."""
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=as_json, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(model: str, done: int, total: int) -> None:
            if model not in tasks:
                tasks[model] = bar.add_task(model, total=total)
            bar.update(tasks[model], completed=done)

        yield progress


def _target_hardware(gpu: str | None) -> tuple[Device, int]:
    from llmselect.sizing.detect import target_hardware

    return target_hardware(gpu)


# --------------------------------------------------------------------------- fine-tuning


@app.command("finetune")
def finetune(
    study_file: Annotated[
        Path, typer.Argument(help="Selection study (YAML) with a finetune_dataset.")
    ],
    model: Annotated[
        str,
        typer.Option("--model", help="A candidates.run id: its transformers folder is the base."),
    ],
    method: Annotated[
        str, typer.Option(help="lora, qlora (4-bit base; CUDA and bitsandbytes) or full.")
    ] = "lora",
    rank: Annotated[int, typer.Option(min=1, max=4096, help="LoRA rank.")] = 16,
    targets: Annotated[
        str, typer.Option(help="LoRA targets: attention, all-linear, or names (q_proj,v_proj).")
    ] = "all-linear",
    steps: Annotated[
        int | None, typer.Option(min=1, help="Optimizer steps (instead of --epochs).")
    ] = None,
    epochs: Annotated[
        float | None, typer.Option(min=0.001, help="Passes over the data (default 3).")
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(min=0.0, help="Peak learning rate (default 2e-4; 2e-5 with --method full)."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Examples per forward pass.")] = 8,
    grad_accum: Annotated[
        int, typer.Option("--grad-accum", min=1, help="Forward passes per optimizer step.")
    ] = 1,
    seed: Annotated[int | None, typer.Option(help="Seed (default: the study's).")] = None,
    checkpoint_every: Annotated[
        int, typer.Option("--checkpoint-every", min=1, help="Steps between checkpoints.")
    ] = 50,
    recompute: Annotated[
        bool | None,
        typer.Option(
            "--checkpointing/--no-checkpointing",
            help="Gradient checkpointing (default: on a GPU, off on a CPU).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default: STUDY_DIR/finetuned/NAME)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the last checkpoint in the output.")
    ] = False,
    curve: Annotated[
        bool,
        typer.Option("--curve", help="Also train on 12.5, 25 and 50% of the data: does more help?"),
    ] = False,
    against: Annotated[
        list[str] | None,
        typer.Option("--against", help="Another candidates.run id to measure as is (repeat)."),
    ] = None,
    evaluate: Annotated[
        bool, typer.Option("--eval/--no-eval", help="Measure before and after on the dataset.")
    ] = True,
    gpu: Annotated[
        str | None,
        typer.Option("--gpu", help="Hardware for the memory check (default: this machine)."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Train although the license gate stops (the card says so)."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune a candidate on the study's training data; measure it before and after.

    License gate first (exit 3 when it stops), then a memory check before any weights are
    loaded (exit 4 when it will not fit), training with checkpoints (--resume continues
    exactly), the adapter or weights with a model card, and paired scores with 95% CIs."""
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    from llmselect.console import console, finetune_gate, finetune_preflight, finetune_summary
    from llmselect.finetune.config import TrainConfig, TrainStep
    from llmselect.jobs.finetune import Events, FinetuneRequest
    from llmselect.jobs.finetune import finetune_study as run_finetune

    if steps is not None and epochs is not None:
        raise typer.BadParameter("give --steps or --epochs, not both", param_hint="--steps")
    try:
        config = TrainConfig.model_validate(
            {
                "method": method,
                "rank": rank,
                "targets": targets,
                "steps": steps,
                "epochs": epochs,
                "lr": lr,
                "batch": batch,
                "grad_accum": grad_accum,
                "checkpoint_every": checkpoint_every,
                "gradient_checkpointing": recompute,
            }
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc).splitlines()[-1].strip()) from None
    request = FinetuneRequest(
        study=study_file,
        model=model,
        config=config,
        out=out,
        seed=seed,
        resume=resume,
        curve=curve,
        gpu=gpu,
        force=force,
        against=against or [],
        evaluate=evaluate,
    )
    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[loss]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=as_json, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def show(renderable: Any) -> None:
            if not as_json:
                bar.console.print(renderable)

        def step(s: TrainStep) -> None:
            loss = f"loss {s.loss:.4f}" if s.loss is not None else ""
            if s.run not in tasks:
                tasks[s.run] = bar.add_task(f"train {s.run}", total=s.total, loss="")
            bar.update(tasks[s.run], completed=s.step, loss=loss)

        def evaluation(name: str, done: int, total: int) -> None:
            key = f"eval {name}"
            if key not in tasks:
                tasks[key] = bar.add_task(key, total=total, loss="")
            bar.update(tasks[key], completed=done)

        events = Events(
            gate=lambda g: show(finetune_gate(g)),
            preflight=lambda p: show(finetune_preflight(p, model)),
            step=step,
            evaluation=evaluation,
        )
        result = run(as_json, lambda: run_finetune(request, events))
    if as_json:
        emit_json(result.model_dump(mode="json"))
        return
    console().print(finetune_summary(result))


if __name__ == "__main__":  # pragma: no cover
    app()
