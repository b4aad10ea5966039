"""Model facts: schema, built-in data, importers, search."""

from llmselect.catalog.catalog import (
    CardList,
    Catalog,
    Criteria,
    UnknownModel,
    load_builtin,
    load_catalog,
    sort_cards,
)
from llmselect.catalog.params import IncompleteArchitecture, ParamCount, count_params
from llmselect.catalog.schema import (
    Architecture,
    Benchmark,
    Dataset,
    Kind,
    Licenses,
    ModelCard,
    Relation,
    Sources,
    TrainingData,
)

__all__ = [
    "Architecture",
    "Benchmark",
    "CardList",
    "Catalog",
    "Criteria",
    "Dataset",
    "IncompleteArchitecture",
    "Kind",
    "Licenses",
    "ModelCard",
    "ParamCount",
    "Relation",
    "Sources",
    "TrainingData",
    "UnknownModel",
    "count_params",
    "load_builtin",
    "load_catalog",
    "sort_cards",
]
