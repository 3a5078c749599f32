"""Every exception the plugin defines says what a command does with it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import beets_audiofeatures
import beetsplug.audiofeatures
from beets_audiofeatures.errors import (
    AudioFeaturesError,
    RequestError,
    SetupError,
    StoreError,
    TrackError,
)


def defined_exceptions() -> list[type[BaseException]]:
    found = []
    for package in (beets_audiofeatures, beetsplug.audiofeatures):
        prefix = f"{package.__name__}."
        for info in pkgutil.walk_packages(package.__path__, prefix):
            found.extend(exceptions_of(importlib.import_module(info.name)))
    return found


def exceptions_of(module: ModuleType) -> list[type[BaseException]]:
    return [
        value
        for _, value in inspect.getmembers(module, inspect.isclass)
        if issubclass(value, BaseException)
        and value.__module__ == module.__name__
    ]


def test_each_exception_is_a_track_setup_request_or_store_error():
    exceptions = defined_exceptions()
    assert len(exceptions) > 10
    for exc in exceptions:
        if exc.__name__ == "Stopped":  # a signal, like KeyboardInterrupt
            assert not issubclass(exc, Exception)
            continue
        assert issubclass(exc, AudioFeaturesError), exc
        kinds = [
            k
            for k in (TrackError, SetupError, RequestError, StoreError)
            if issubclass(exc, k)
        ]
        assert len(kinds) == 1 or exc in (
            AudioFeaturesError, TrackError, SetupError, RequestError,
            StoreError,
        ), exc  # fmt: skip
