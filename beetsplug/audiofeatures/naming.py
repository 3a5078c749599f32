"""How names from models and settings become parts of beets field names."""

from __future__ import annotations

import re


def field_slug(name: str) -> str:
    """A model or class name as a queryable field-name part."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")
