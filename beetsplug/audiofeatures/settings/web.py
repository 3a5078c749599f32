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
import yaml

from beets_audiofeatures.errors import SettingError
from beetsplug.audiofeatures.input_limits import MOST_COUNT
from beetsplug.audiofeatures.settings.values import (
    Settings,
    bad_setting,
    is_number,
    playlist_folder,
    raw_value,
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
    # The Subsonic API's users (name: password, or a YAML file of them);
    # none: the API answers no one.
    "users": None,
}

#: What ``beet clapweb`` reads before it serves.
SERVE = ("host", "port", "token")

LOOPBACK_NAMES = ("localhost",)
SHORTEST_TOKEN = 16
USERS = (
    "a mapping of user names to passwords (or to {password: ..., "
    "api_key: ...}), or the path of a YAML file holding one"
)

#: A user's password and API key (either may be None, not both).
Credentials = tuple[str | None, str | None]


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

    @cached_property
    def users(self) -> dict[str, Credentials]:
        """The API's users (``audiofeatures.web.users``; none by default:
        a server without them answers no one): name to password
        and API key. A line about a bad value never repeats a secret."""
        view = self.view["users"]
        if not view.exists():
            return {}
        value = raw_value(view)
        if isinstance(value, str) and value.strip():
            value = users_file(view)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise bad_setting(view, USERS, shown="not such a mapping")
        return {
            checked_name(view, name): credentials(view, name, entry)
            for name, entry in value.items()
        }


def users_file(view: confuse.ConfigView) -> Any:
    path = Path(view.as_filename()).expanduser()
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SettingError(
            f"{view.name}: cannot read the users file {path}: "
            f"{getattr(exc, 'strerror', None) or type(exc).__name__}"
        ) from None


def checked_name(view: confuse.ConfigView, name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise bad_setting(view, USERS, shown="a user without a name")
    return name


def credentials(view: confuse.ConfigView, name: str, entry: Any) -> Credentials:
    """A user's password and API key, each a string when given; an API
    key as long as a token."""
    if isinstance(entry, str | int) and not isinstance(entry, bool):
        entry = {"password": str(entry)}
    if not isinstance(entry, dict) or not set(entry) <= {"password", "api_key"}:
        raise bad_setting(view, USERS, shown=f"{name}: not a password")
    password, key = entry.get("password"), entry.get("api_key")
    if password is not None and not (isinstance(password, str) and password):
        raise bad_setting(view, USERS, shown=f"{name}: not a password")
    if key is not None and not (
        isinstance(key, str) and len(key) >= SHORTEST_TOKEN
    ):
        raise bad_setting(
            view,
            f"an api_key of at least {SHORTEST_TOKEN} characters",
            shown=f"{name}: too short an api_key",
        )
    if password is None and key is None:
        raise bad_setting(
            view, USERS, shown=f"{name}: neither password nor api_key"
        )
    return password, key
