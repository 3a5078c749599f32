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

from beets_audiofeatures.errors import SettingError
from beetsplug.audiofeatures.input_limits import MOST_COUNT
from beetsplug.audiofeatures.settings.values import (
    Settings,
    bad_setting,
    is_number,
    playlist_folder,
)

DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 8337,
    # Required before the page serves anything off this machine (a host
    # other than 127.0.0.1 / ::1 / localhost): a bearer or cookie token.
    "token": None,
    # Where the page saves playlists; null: clap.playlist_dir, else
    # smartplaylist's playlist_dir.
    "playlist_dir": None,
    # The map's UMAP is fitted on at most this many vectors; the others
    # are placed by the fitted model.
    "map_sample": 30_000,
}

#: What ``beet clapweb`` reads before it serves.
SERVE = ("host", "port", "token")

LOOPBACK_NAMES = ("localhost",)
SHORTEST_TOKEN = 16


def is_loopback(host: str) -> bool:
    """Whether ``host`` only takes connections from this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


class WebSettings(Settings):
    """The web settings, command-line options first."""

    @cached_property
    def host(self) -> str:
        value = self.option("host") or self.raw("host")
        if not isinstance(value, str) or not value.strip():
            raise self.bad("host", "an address such as 127.0.0.1")
        return value.strip()

    @cached_property
    def port(self) -> int:
        value = self.option("port")
        if value is None:
            value = self.raw("port")
        if not is_number(value) or not isinstance(value, int):
            raise self.bad("port", "a port number, 1 to 65535")
        if not 0 < value < 65536:  # typed or configured: the same line
            raise SettingError(f"port {value}: give a port number, 1 to 65535")
        return value

    @cached_property
    def token(self) -> str | None:
        value = self.raw("token")
        if value is None or value == "":
            return None
        if not isinstance(value, str) or len(value.strip()) < SHORTEST_TOKEN:
            # The value is a secret: the line does not repeat it.
            raise bad_setting(
                self.view["token"],
                f"a secret of at least {SHORTEST_TOKEN} characters (python3 "
                "-c 'import secrets; print(secrets.token_urlsafe())')",
                shown="too short",
            )
        return value.strip()

    @cached_property
    def playlist_dir(self) -> Path | None:
        """Where the page saves playlists: this setting, else where ``beet
        clap --playlists`` writes (``clap.playlist_dir``, else
        smartplaylist's); None when none of them names a folder."""
        views = [self.view["playlist_dir"]]
        if isinstance(self.view, confuse.Subview):  # audiofeatures.web
            views.append(self.view.parent["clap"]["playlist_dir"])
        return playlist_folder(*views)

    @cached_property
    def map_sample(self) -> int:
        return int(
            self.number(
                "map_sample",
                f"a whole number, 100 or more (at most {MOST_COUNT})",
                least=100,
                most=MOST_COUNT,
                whole=True,
            )
        )
