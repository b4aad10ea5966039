"""A use profile: what the organization means to do with the model, which licenses judge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmselect.yamlfile import load_yaml, validate

FIELDS_OF_USE = (
    "military",
    "weapons",
    "surveillance",
    "law-enforcement",
    "medical",
    "legal",
    "critical-infrastructure",
    "biometric-identification",
    "political-campaigning",
    "employment",
    "credit",
    "minors",
)
"""The vocabulary acceptable-use terms in the license base are written in."""


class UseProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    commercial: bool = True
    """Used by or for a business (the default: that is who chooses models with llmselect)."""
    monthly_active_users: int | None = Field(default=None, ge=0)
    """Expected monthly active users of the product; None when not known."""
    annual_revenue_usd: int | None = Field(default=None, ge=0)
    redistribute_weights: bool = False
    hosted_service: bool = False
    """Offer the model to third parties as a hosted or managed service."""
    distribute_derivative: bool = False
    """Fine-tune (or otherwise modify) the model and distribute the result."""
    train_other_models_on_outputs: bool = False
    field_of_use: list[str] = Field(default_factory=list)
    jurisdictions: list[str] = Field(default_factory=list)

    @field_validator("field_of_use", "jurisdictions", mode="before")
    @classmethod
    def _one_is_a_list(cls, value: Any) -> Any:
        # `field_of_use: medical` means a list of one.
        return [value] if isinstance(value, str) else value

    @field_validator("field_of_use")
    @classmethod
    def _known_fields(cls, values: list[str]) -> list[str]:
        cleaned = [v.strip().lower() for v in values]
        unknown = [v for v in cleaned if v not in FIELDS_OF_USE]
        if unknown:
            raise ValueError(f"unknown field of use {unknown[0]!r}; use {', '.join(FIELDS_OF_USE)}")
        return cleaned


def load_profile(path: Path) -> UseProfile:
    """Read a profile YAML file; errors name the file, the line and the field."""
    return validate(UseProfile, load_yaml(path) or {}, file=path)
