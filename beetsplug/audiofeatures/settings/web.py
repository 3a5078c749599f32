"""The ``audiofeatures.web`` settings of ``beet clapweb``, ``beet
clapmap`` and ``beet clap --map``, each checked when a command uses it
(a bad value is one line naming the setting; other commands never read
them)."""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Any

import confuse
from beets import config as beets_config
from beets.exceptions import UserError

from beetsplug.audiofeatures.input_limits import MOST_COUNT
from beetsplug.audiofeatures.settings.values import bad_setting

DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 8337,
    # Required before the page serves anything off this machine (a host
    # other than 127.0.0.1 / ::1 / localhost): a bearer or cookie token.
    "token": None,
    # Where the page saves playlists; null: smartplaylist's playlist_dir.
    "playlist_dir": None,
    # The map's UMAP is fitted on at most this many vectors; the others
    # are placed by the fitted model.
    "map_sample": 30_000,
}

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only takes connections from this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


class WebSettings:
    """The web settings, command-line options first."""

    def __init__(self, view: confuse.ConfigView, opts: Any = None) -> None:
        self.view = view
        self.opts = opts

    def _raw(self, name: str) -> Any:
        try:
            return self.view[name].get()
        except confuse.ConfigError as exc:
            raise UserError(f"audiofeatures.web.{name}: {exc}") from exc

    @cached_property
    def host(self) -> str:
        value = getattr(self.opts, "host", None) or self._raw("host")
        if not isinstance(value, str) or not value.strip():
            raise bad_setting(self.view["host"], "an address such as 127.0.0.1")
        return value.strip()

    @cached_property
    def port(self) -> int:
        value = getattr(self.opts, "port", None)
        if value is None:
            value = self._raw("port")
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_setting(self.view["port"], "a port number, 1 to 65535")
        if not 0 < value < 65536:
            raise UserError(f"port {value}: give a port number, 1 to 65535")
        return value

    @cached_property
    def token(self) -> str | None:
        value = self._raw("token")
        if value is None or value == "":
            return None
        if not isinstance(value, str) or len(value.strip()) < 16:
            # The value is a secret: the line does not repeat it.
            raise UserError(
                "audiofeatures.web.token is too short: use a secret of at "
                "least 16 characters (python3 -c 'import secrets; "
                "print(secrets.token_urlsafe())')"
            )
        return value.strip()

    @cached_property
    def playlist_dir(self) -> Path | None:
        """Where saved playlists go; None when neither this setting nor
        smartplaylist's ``playlist_dir`` names a folder."""
        value = self._raw("playlist_dir")
        view = self.view["playlist_dir"]
        if value is None or value == "":
            view = beets_config["smartplaylist"]["playlist_dir"]
            try:
                value = view.get()
            except confuse.NotFoundError:  # smartplaylist is not set up
                return None
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise bad_setting(view, "the path of a folder")
        return Path(view.as_filename()).expanduser()

    @cached_property
    def map_sample(self) -> int:
        value = self._raw("map_sample")
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 100 <= value <= MOST_COUNT
        ):
            raise bad_setting(
                self.view["map_sample"],
                f"a whole number, 100 or more (at most {MOST_COUNT})",
            )
        return value
