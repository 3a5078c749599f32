"""How names from models, settings and files become parts of beets field
names and of cache folder names."""

from __future__ import annotations

import re


def field_slug(name: str) -> str:
    """A model or class name as a queryable field-name part."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def folder_slug(name: str, fallback: str) -> str:
    """A name as a short, readable, filesystem-safe folder name part."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:40]
    return slug or fallback
