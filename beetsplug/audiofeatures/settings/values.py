"""Reading one setting, with the one-line error a user needs.

Settings are read when a command uses them, never when the plugin loads:
a bad value must break only the command that needs it, and say which
setting it is, what it holds and what it may hold.
"""

from __future__ import annotations

from typing import Any

import confuse
from beets.exceptions import UserError


def bad_setting(view: confuse.ConfigView, allowed: str) -> UserError:
    """``audiofeatures.essentia.jobs is 'many': use a whole number ...``"""
    try:
        value = view.get()
    except confuse.ConfigError:
        value = "?"
    return UserError(f"{view.name} is {value!r}: use {allowed}")


def read_setting(view: confuse.ConfigView, template: Any, allowed: str) -> Any:
    """``view``'s value through a confuse template (``bool``, ``int``,
    ``confuse.Optional(...)``), or a :class:`UserError` saying what is
    allowed."""
    try:
        return view.get(template)
    except confuse.ConfigError:
        raise bad_setting(view, allowed) from None


def read_number(
    view: confuse.ConfigView, least: float, allowed: str, whole: bool = False
) -> Any:
    """A number of at least ``least`` (a whole one if ``whole``)."""
    value = view.get()
    if (
        isinstance(value, bool)
        or not isinstance(value, int if whole else (int, float))
        or value < least
    ):
        raise bad_setting(view, allowed)
    return value


def read_choice(view: confuse.ConfigView, choices: tuple[str, ...]) -> str:
    value = view.get()
    if value not in choices:
        raise bad_setting(view, f"one of {', '.join(choices)}")
    return str(value)
