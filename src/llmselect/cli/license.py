"""`llmselect license`: check a model's licenses through its lineage, explain and list the
licenses, and write a model's ML-BOM."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from llmselect.cli.common import JsonFlag, _count, run
from llmselect.present import present

app = typer.Typer(
    help="Licenses of code, weights and training data, through the lineage.", no_args_is_help=True
)


@app.command("check")
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
    from llmselect.licensing.profile import FIELDS_OF_USE, UseProfile, load_profile
    from llmselect.licensing.verdicts import check_license

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
    report = check_license(card, catalog, profile)
    present(report, as_json=as_json)
    if report.overall == "blocked":
        raise typer.Exit(3)


@app.command("explain")
def license_explain(
    license_id: Annotated[str, typer.Argument(help="License id, e.g. llama2 or apache-2.0.")],
    as_json: JsonFlag = False,
) -> None:
    """What a license allows and requires, term by term, with the clause each comes from."""
    from llmselect.licensing import get_license

    present(run(as_json, lambda: get_license(license_id)), as_json=as_json)


@app.command("list")
def license_list(as_json: JsonFlag = False) -> None:
    """Every license in the knowledge base."""
    from llmselect.licensing.knowledge import license_list

    present(run(as_json, license_list), as_json=as_json)


@app.command("bom")
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
