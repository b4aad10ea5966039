"""`llmselect catalog`: list, show, search, check, import and remove models."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmselect.cli.common import JsonFlag, _count, run
from llmselect.present import present

if TYPE_CHECKING:
    from llmselect.catalog import Kind

app = typer.Typer(help="Browse, search and extend the model catalog.", no_args_is_help=True)


@app.command("list")
def catalog_list(
    sort: Annotated[str, typer.Option(help="Sort by: family, params, date, name.")] = "family",
    as_json: JsonFlag = False,
) -> None:
    """Show every model in the catalog (built-in and imported)."""
    from llmselect.catalog import CardList, load_catalog, sort_cards

    cards = run(as_json, lambda: sort_cards(list(load_catalog()), sort))
    present(CardList(cards), as_json=as_json)


@app.command("show")
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
    present(card, as_json=as_json, catalog=catalog)


@app.command("search")
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
    from llmselect.catalog import CardList, Criteria, load_catalog, sort_cards

    after = _date(released_after, "--released-after")
    kind_value = _kind(kind)
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
    cards = run(as_json, lambda: sort_cards(catalog.search(criteria), sort))
    present(CardList(cards, searched=len(catalog)), as_json=as_json)


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date; write YYYY-MM-DD", param_hint=option
        ) from None


def _kind(value: str | None) -> Kind | None:
    from llmselect.catalog import Kind

    if value is None:
        return None
    try:
        return Kind(value.lower())
    except ValueError:
        choices = ", ".join(k.value for k in Kind)
        raise typer.BadParameter(f"choose one of {choices}", param_hint="--kind") from None


@app.command("check")
def catalog_check(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Family files to check (default: the whole catalog)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check catalog entries: parameter counts agree with architectures, facts have sources."""
    from llmselect.catalog.check import check_files
    from llmselect.licensing import load_licenses

    check = run(as_json, lambda: check_files(files or [], set(load_licenses())))
    present(check, as_json=as_json)
    if check.errors:
        raise typer.Exit(1)


@app.command("import")
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
    from llmselect.catalog.user import import_card

    done = run(
        as_json, lambda: import_card(source, model_id=model_id, family=family, replace=replace)
    )
    present(done, as_json=as_json)


@app.command("remove")
def catalog_remove(
    model_id: Annotated[str, typer.Argument(help="Id of a model you imported.")],
    as_json: JsonFlag = False,
) -> None:
    """Remove an imported model from your catalog (built-in models cannot be removed)."""
    from llmselect.catalog.user import remove_card

    present(run(as_json, lambda: remove_card(model_id)), as_json=as_json)
