"""License knowledge: what each license allows, per component of a model."""

from llmselect.licensing.knowledge import (
    License,
    UnknownLicense,
    commercial_use,
    commercially_usable,
    get_license,
    license_ids,
    load_licenses,
)

__all__ = [
    "License",
    "UnknownLicense",
    "commercial_use",
    "commercially_usable",
    "get_license",
    "license_ids",
    "load_licenses",
]
