"""This package's version (the one place it is written: setup.cfg reads
it from here) and the installed versions of others, read from their
distributions' metadata (without importing them: Essentia's import costs
a second and prints)."""

from __future__ import annotations

import importlib.metadata

#: The release; setup.cfg's ``version = attr:`` reads this line.
__version__ = "1.0.0"

#: The distributions that install the ``essentia`` module (never both).
ESSENTIA_DISTRIBUTIONS = ("essentia", "essentia-tensorflow")


def installed_version(distribution: str) -> str | None:
    """The distribution's version, None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def plugin_version() -> str:
    """This package's version, the same from a wheel and a source tree."""
    return __version__


def essentia_installed() -> tuple[str, str] | None:
    """The installed Essentia distribution and its version, if any."""
    for distribution in ESSENTIA_DISTRIBUTIONS:
        if (version := installed_version(distribution)) is not None:
            return distribution, version
    return None
