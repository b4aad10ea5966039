"""Family files (defaults, errors with lines), the catalog's lookups, lineage and search."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from llmselect.catalog import Catalog, Criteria, Kind, ModelCard, UnknownModel
from llmselect.catalog.families import read_family_file
from llmselect.errors import LLMSelectError
from llmselect.units import format_count, parse_count

FILE = """family: acme
organization: Acme
defaults:
  release_date: 2024-01-01
  licenses: {code: apache-2.0, weights: apache-2.0}
  architecture: {vocab_size: 100, context_length: 4096}
models:
  - id: acme/base
    params: 1000
    architecture: {hidden_size: 64}
  - id: acme/chat
    kind: chat
    params: 1000
    base_model: acme/base
    base_model_relation: finetune
    licenses: {weights: mit}
"""


def card(model_id: str, base: str | None = None, **extra: object) -> ModelCard:
    return ModelCard.model_validate(
        {
            "id": model_id,
            "family": extra.pop("family", "f"),
            "params": extra.pop("params", 1000),
            "licenses": {"code": "mit", "weights": extra.pop("weights", "mit")},
            "base_model": base,
            "base_model_relation": "finetune" if base else None,
            **extra,
        }
    )


def test_defaults_merge_into_each_model(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(FILE)
    base, chat = read_family_file(path)
    assert (base.family, base.organization, base.release_date) == ("acme", "Acme", date(2024, 1, 1))
    assert base.architecture.vocab_size == 100 and base.architecture.hidden_size == 64
    # A model's own mapping is merged key by key with the defaults, not replacing them.
    assert chat.licenses.weights == "mit" and chat.licenses.code == "apache-2.0"
    assert chat.architecture.context_length == 4096
    assert chat.kind == [Kind.chat]


@pytest.mark.parametrize(
    ("change", "line", "field"),
    [
        (
            ("params: 1000\n    architecture", "params: many\n    architecture"),
            9,
            "models[0].params",
        ),
        (("kind: chat", "kind: poem"), 12, "models[1].kind.0"),
        (("  - id: acme/chat", "  - id: acme/chat\n    colour: red"), 12, "models[1].colour"),
        (("vocab_size: 100", "vocab_size: -1"), 6, "models[0].architecture.vocab_size"),
    ],
)
def test_errors_name_file_line_and_field(
    tmp_path: Path, change: tuple[str, str], line: int, field: str
) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(FILE.replace(*change))
    with pytest.raises(LLMSelectError) as err:
        read_family_file(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, field)


def test_yaml_syntax_error_and_unknown_top_level_key(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(FILE.replace("models:", "models: [", 1))
    with pytest.raises(LLMSelectError, match="invalid YAML") as err:
        read_family_file(path)
    assert err.value.line is not None
    path.write_text("famly: x\n" + FILE)
    with pytest.raises(LLMSelectError, match="unknown key 'famly'") as err:
        read_family_file(path)
    assert err.value.line == 1


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(LLMSelectError, match="defined twice"):
        Catalog([card("a/x"), card("A/X")])


def test_lineage_walks_to_the_root_and_survives_cycles_and_gaps() -> None:
    catalog = Catalog(
        [
            card("a/root"),
            card("a/mid", "a/root"),
            card("a/leaf", "a/mid"),
            card("c/one", "c/two"),
            card("c/two", "c/one"),
            card("m/orphan", "gone/base"),
        ]
    )
    assert catalog.lineage("a/leaf") == ["a/leaf", "a/mid", "a/root"]
    assert catalog.lineage("c/one") == ["c/one", "c/two"]
    assert catalog.lineage("m/orphan") == ["m/orphan", "gone/base"]


def test_unknown_id_suggests_close_ones() -> None:
    catalog = Catalog([card("meta-llama/Llama-2-7b-hf"), card("meta-llama/Llama-2-13b-hf")])
    with pytest.raises(UnknownModel) as err:
        catalog.get("llama-2-7b-hf")
    assert "meta-llama/Llama-2-7b-hf" in (err.value.hint or "")
    assert err.value.exit_code == 2


def test_search_criteria_combine() -> None:
    catalog = Catalog(
        [
            card("a/small", params=1_000_000_000, release_date="2023-01-01"),
            card(
                "a/big",
                params=70_000_000_000,
                weights="llama2",
                release_date="2024-06-01",
                architecture={"context_length": 8192},
            ),
            card(
                "a/big-chat", "a/big", params=70_000_000_000, kind="chat", release_date="2024-07-01"
            ),
        ]
    )

    def ids(**criteria: object) -> set[str]:
        return {c.id for c in catalog.search(Criteria.model_validate(criteria))}

    assert ids(min_params=10**10) == {"a/big", "a/big-chat"}
    assert ids(max_params=10**10) == {"a/small"}
    assert ids(min_context=8000) == {"a/big"}
    assert ids(licenses={"llama2"}) == {"a/big"}
    assert ids(kind=Kind.chat) == {"a/big-chat"}
    assert ids(finetuned_from="A/BIG") == {"a/big-chat"}
    assert ids(released_after=date(2024, 6, 1)) == {"a/big-chat"}
    assert ids(text="SMALL") == {"a/small"}
    assert ids(min_params=10**10, licenses={"mit"}) == {"a/big-chat"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7B", 7_000_000_000),
        ("1.5b", 1_500_000_000),
        ("500M", 500_000_000),
        ("128k", 128_000),
        ("4096", 4096),
    ],
)
def test_parse_count(text: str, value: int) -> None:
    assert parse_count(text) == value


def test_parse_count_rejects_words_and_format_count_rounds() -> None:
    with pytest.raises(ValueError, match="not a count"):
        parse_count("seven")
    assert format_count(6_738_415_616) == "6.74B"
    assert format_count(46_702_792_704) == "46.7B"
    assert format_count(None) == "?"
    # Gemma 3 1B: 999,885,952 rounds up to the next unit, not to "1e+03M".
    assert format_count(999_885_952) == "1B"
    assert format_count(999_999) == "1M" and format_count(999) == "999"
