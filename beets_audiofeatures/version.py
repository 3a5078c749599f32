"""The installed version of beets-audiofeatures."""

from __future__ import annotations

import importlib.metadata


def plugin_version() -> str:
    try:
        return importlib.metadata.version("beets-audiofeatures")
    except importlib.metadata.PackageNotFoundError:  # a source tree
        return "unknown"
