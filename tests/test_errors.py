"""Every exception the plugin defines says what a command does with it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import beetsplug.audiofeatures as package
from beetsplug.audiofeatures.errors import (
    AudioFeaturesError,
    SetupError,
    StoreError,
    TrackError,
)


def defined_exceptions() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, value in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found.append(value)
    return found


def test_each_exception_is_a_track_setup_or_store_error():
    exceptions = defined_exceptions()
    assert len(exceptions) > 10
    for exc in exceptions:
        if exc.__name__ == "Stopped":  # a signal, like KeyboardInterrupt
            assert not issubclass(exc, Exception)
            continue
        assert issubclass(exc, AudioFeaturesError), exc
        kinds = [
            k
            for k in (TrackError, SetupError, StoreError)
            if issubclass(exc, k)
        ]
        assert len(kinds) == 1 or exc in (
            AudioFeaturesError, TrackError, SetupError, StoreError,
        ), exc  # fmt: skip
