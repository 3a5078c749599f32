"""One API call: its parameters (from the address or a form POST), the
user it authenticated, the server's shared state; and the table of
methods, filled by the modules that answer them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Response, current_app
from werkzeug.datastructures import MultiDict

from beetsplug.audiofeatures.web.subsonic.responses import (
    GENERIC,
    SubsonicError,
    missing,
)

if TYPE_CHECKING:
    from beets.logging import BeetsLogger

    from beetsplug.audiofeatures.settings.web import WebSettings
    from beetsplug.audiofeatures.web.library_search import LibrarySearch
    from beetsplug.audiofeatures.web.subsonic.auth import User, Users
    from beetsplug.audiofeatures.web.subsonic.catalogue import Catalogue

#: The most entries one list may hold (a larger ``count`` or ``size`` is
#: this many); a client pages through more with ``offset``.
MOST_ENTRIES = 500
MOST_OFFSET = 10_000_000


@dataclass
class ApiState:
    """What one server's API calls share."""

    search: LibrarySearch
    catalogue: Catalogue
    users: Users
    web: WebSettings
    log: BeetsLogger


def api_state() -> ApiState:
    found: ApiState = current_app.extensions["subsonic"]
    return found


class Call:
    """A call's parameters, read as the spec types them."""

    def __init__(
        self, name: str, params: MultiDict[str, str], user: User
    ) -> None:
        self.name = name
        self.params = params
        self.user = user
        self.state = api_state()

    def text(self, name: str, default: str = "") -> str:
        value = self.params.get(name)
        return default if value is None else value

    def required(self, name: str) -> str:
        value = self.params.get(name)
        if value is None or value == "":
            raise missing(name)
        return value

    def every(self, name: str) -> list[str]:
        return self.params.getlist(name)

    def number(
        self, name: str, default: int, least: int = 0, most: int = MOST_ENTRIES
    ) -> int:
        """A whole number; past ``most`` it is ``most`` (a client asking
        for 'all' gets the most a list holds), below ``least`` an error."""
        value = self.params.get(name)
        if value is None or value == "":
            return default
        digits = value.removeprefix("-")
        if not (digits.isascii() and digits.isdigit()):
            raise SubsonicError(
                GENERIC, f"{name} must be a whole number, not {value[:40]!r}"
            )
        # However long: past the most, it is the most.
        number = (
            int(value)
            if len(digits) < 30
            else MOST_OFFSET * (-1 if value.startswith("-") else 1)
        )
        if number < least:
            raise SubsonicError(GENERIC, f"{name} must be {least} or more")
        return min(number, most)

    def flag(self, name: str, default: bool) -> bool:
        value = self.params.get(name)
        if value is None or value == "":
            return default
        return value.lower() in ("true", "1", "yes")


Answer = dict[str, Any] | Response
Method = Callable[[Call], Answer]
AnyMethod = TypeVar("AnyMethod", bound=Method)
#: Each method's answer, by its name.
METHODS: dict[str, Method] = {}


def method(*names: str) -> Callable[[AnyMethod], AnyMethod]:
    def register(function: AnyMethod) -> AnyMethod:
        for name in names:
            METHODS[name] = function
        return function

    return register
