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
    CommandError,
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


#: what a command does with an error: fail one track, stop with a setup
#: line, answer a request, end a run that could not finish, repair a store
KINDS = (TrackError, SetupError, RequestError, CommandError, StoreError)


def exceptions_of(module: ModuleType) -> list[type[BaseException]]:
    return [
        value
        for _, value in inspect.getmembers(module, inspect.isclass)
        if issubclass(value, BaseException)
        and value.__module__ == module.__name__
    ]


def test_each_exception_is_of_one_kind():
    exceptions = defined_exceptions()
    assert len(exceptions) > 10
    for exc in exceptions:
        if exc.__name__ == "Stopped":  # a signal, like KeyboardInterrupt
            assert not issubclass(exc, Exception)
            continue
        assert issubclass(exc, AudioFeaturesError), exc
        kinds = [k for k in KINDS if issubclass(exc, k)]
        assert len(kinds) == 1 or exc in (AudioFeaturesError, *KINDS), exc
