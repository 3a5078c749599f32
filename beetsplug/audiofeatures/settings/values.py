"""The one reader of the plugin's settings, for every section.

A section (``essentia``, ``clap``, ``web``, ``cluster``) is a
:class:`Settings` whose properties each read and check one setting the
first time a command uses it, and keep the value. A bad value breaks only
the commands that read it, never the plugin's loading or ``beet ls``; a
command reads the settings it uses up front (:meth:`Settings.require`),
so it stops before it does any work. Every bad value is reported by
:func:`bad_setting`: one line naming the setting, what it holds and what
it may hold, as the core's :class:`SettingError`, which the command line
and the page each turn into their one line.

Light on purpose: beets imports the plugin, and with it these modules, on
every command (``beet ls`` too) for the defaults and the field types.
Nothing here imports numpy, torch or the heavy parts of the core.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import confuse
from beets import config as beets_config

from beets_audiofeatures.errors import SettingError
from beetsplug.audiofeatures import input_limits

YES_NO = "yes or no"
FOLDER = "the path of a folder"


def bad_setting(
    view: confuse.ConfigView, allowed: str, shown: str | None = None
) -> SettingError:
    """``audiofeatures.clap.limit is 'x': use a whole number, 1 or more``;
    ``shown`` stands for the value where the line must not repeat it (a
    secret)."""
    if shown is None:
        try:
            shown = repr(view.get())
        except confuse.ConfigError:
            shown = repr("?")
    return SettingError(f"{view.name} is {shown}: use {allowed}")


def raw_value(view: confuse.ConfigView) -> Any:
    """A setting's value as written (the defaults are always there; only
    a section that is not a mapping fails here)."""
    try:
        return view.get()
    except confuse.ConfigError as exc:
        raise SettingError(f"{view.name}: {exc}") from exc


def is_number(value: object) -> bool:
    """An int or a float, and not a bool (YAML's yes is a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def folder_setting(view: confuse.ConfigView) -> Path | None:
    """The folder a path setting names (relative paths as confuse
    resolves them: from the configuration's folder), None when it is
    empty."""
    value = raw_value(view)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise bad_setting(view, FOLDER)
    try:
        return Path(view.as_filename()).expanduser()
    except confuse.ConfigError as exc:
        raise bad_setting(view, FOLDER) from exc


def playlist_folder(*views: confuse.ConfigView) -> Path | None:
    """The folder saved playlists go in: the first of ``views`` (each a
    ``playlist_dir`` setting) that names one, else smartplaylist's
    ``playlist_dir``, where beets' own playlists are; None when none
    does. The one place the fallback is written: the page, ``beet clap
    --playlists`` and the import's rewrite all come here."""
    for view in views:
        if (folder := folder_setting(view)) is not None:
            return folder
    smartplaylist = beets_config["smartplaylist"]["playlist_dir"]
    if not smartplaylist.exists():  # smartplaylist is not set up
        return None
    return folder_setting(smartplaylist)


class Settings:
    """One section's settings, command-line options first.

    Subclasses add a cached property per setting (or per object built
    from a few), each reading through the typed readers below; ``opts``
    is a command's parsed options, whose attribute named as a setting
    overrides it when it is not None (a command without that option has
    no such attribute).
    """

    #: Options that stand for a setting, as the user typed them.
    OPTIONS: ClassVar[dict[str, str]] = {}

    def __init__(self, view: confuse.ConfigView, opts: object = None) -> None:
        self.view = view
        self.opts = opts

    def require(self, *names: str) -> Self:
        """Read (and so check) the settings a command uses, up front."""
        for name in names:
            getattr(self, name)
        return self

    def option(self, name: str) -> Any:
        return getattr(self.opts, name, None)

    def raw(self, name: str) -> Any:
        return raw_value(self.view[name])

    def bad(self, name: str, allowed: str) -> SettingError:
        return bad_setting(self.view[name], allowed)

    # -- the typed readers ----------------------------------------------

    def flag(self, name: str) -> bool:
        value = self.raw(name)
        if not isinstance(value, bool):
            raise self.bad(name, YES_NO)
        return value

    def text(self, name: str, allowed: str) -> str:
        """Text with something in it, stripped."""
        value = self.raw(name)
        if not isinstance(value, str) or not value.strip():
            raise self.bad(name, allowed)
        return value.strip()

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value not in choices:
            raise self.bad(name, f"one of {', '.join(choices)}")
        return str(value)

    def template(self, name: str, template: Any, allowed: str) -> Any:
        """The value through a confuse template (``str``, ``bool``,
        ``confuse.StrSeq()``, ``confuse.Optional(...)``)."""
        try:
            return self.view[name].get(template)
        except confuse.ConfigError:
            raise self.bad(name, allowed) from None

    def number(
        self,
        name: str,
        allowed: str,
        least: float = 0,
        most: float | None = None,
        whole: bool = False,
    ) -> Any:
        """A number from ``least`` to ``most`` (a whole one if
        ``whole``); one line, ``allowed``, for every way it is not."""
        value = self.raw(name)
        if (
            not is_number(value)
            or (whole and not isinstance(value, int))
            or value < least
            or (most is not None and value > most)
        ):
            raise self.bad(name, allowed)
        return value

    def count(self, name: str, least: int, meaning: str = "") -> int:
        """A whole number from ``least`` to the most a command takes, from
        its option (named as typed) or its setting."""
        if (value := self.option(name)) is not None:  # optparse's int
            where = self.OPTIONS.get(name, f"--{name}")
            return input_limits.count(int(value), where, least, meaning)
        value = self.raw(name)
        allowed = f"{least}{meaning} or more"
        if not is_number(value) or not isinstance(value, int):
            raise self.bad(name, f"a whole number, {allowed}")
        if value < least:
            raise self.bad(name, allowed)
        if value > input_limits.MOST_COUNT:
            raise self.bad(name, f"at most {input_limits.MOST_COUNT}")
        return value

    def mapping(self, name: str, allowed: str) -> dict[str, Any]:
        """A mapping with text keys (nothing: empty)."""
        value = self.raw(name)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(key, str) for key in value
        ):
            raise self.bad(name, allowed)
        return value
