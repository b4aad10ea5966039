"""License expressions as the catalog writes them: ids joined by `and` / `or`."""

from __future__ import annotations

import re


def expression_ids(expression: str) -> list[str]:
    """The license ids of an SPDX-style expression (`apache-2.0 and gpt-oss-usage-policy`)."""
    return [part for part in re.split(r"\s+(?:and|or)\s+", expression.strip().lower()) if part]
