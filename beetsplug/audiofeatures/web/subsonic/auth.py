"""Who may ask: the users of ``audiofeatures.web.users``, by password
(plain or ``enc:``), by token (``t`` = md5(password + ``s``)) or by API
key (the ``apiKeyAuthentication`` extension). Every comparison is in
constant time; no password, token or key is ever written to a log or
to an answer."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from beetsplug.audiofeatures.web.subsonic.responses import (
    CONFLICTING_MECHANISMS,
    INVALID_API_KEY,
    WRONG_CREDENTIALS,
    SubsonicError,
    missing,
)


@dataclass(frozen=True)
class User:
    name: str
    password: str | None
    api_key: str | None

    def __repr__(self) -> str:  # never the secrets, wherever it is shown
        return f"User({self.name!r})"


def same(sent: str, secret: str) -> bool:
    return hmac.compare_digest(sent.encode(), secret.encode())


def plain_password(sent: str) -> str:
    """``p`` as given, or decoded from ``enc:`` hex."""
    if not sent.startswith("enc:"):
        return sent
    try:
        return bytes.fromhex(sent.removeprefix("enc:")).decode("utf-8")
    except ValueError:  # not hex, or not UTF-8
        raise wrong() from None


def wrong() -> SubsonicError:
    return SubsonicError(WRONG_CREDENTIALS, "wrong username or password")


class Users:
    """The configured users; :meth:`authenticate` names the user a
    request's parameters prove, or raises the spec's error."""

    def __init__(self, users: list[User]) -> None:
        self.by_name = {user.name: user for user in users}

    def authenticate(self, params: Mapping[str, str]) -> User:
        if not self.by_name:
            raise SubsonicError(
                WRONG_CREDENTIALS,
                "this server has no users: set audiofeatures.web.users",
            )
        if "apiKey" in params:
            return self.by_api_key(params)
        name = params.get("u")
        if not name:
            raise missing("u")
        if "p" in params and ("t" in params or "s" in params):
            raise SubsonicError(
                CONFLICTING_MECHANISMS,
                "give a password (p) or a token (t and s), not both",
            )
        user = self.by_name.get(name)
        if "p" in params:
            sent = plain_password(params["p"])
            if user is None or user.password is None:
                raise wrong()
            if not same(sent, user.password):
                raise wrong()
            return user
        if not params.get("t") and not params.get("s"):  # neither way
            raise missing("p (or t and s)")
        for needed in ("t", "s"):
            if not params.get(needed):
                raise missing(needed)
        if user is None or user.password is None:
            raise wrong()
        token = hashlib.md5(
            (user.password + params["s"]).encode(), usedforsecurity=False
        ).hexdigest()
        if not same(params["t"].lower(), token):
            raise wrong()
        return user

    def by_api_key(self, params: Mapping[str, str]) -> User:
        if any(name in params for name in ("u", "p", "t", "s")):
            raise SubsonicError(
                CONFLICTING_MECHANISMS,
                "an apiKey goes alone: without u, p, t or s",
            )
        sent = params["apiKey"]
        found = None
        for user in self.by_name.values():  # every key compared
            if user.api_key is not None and same(sent, user.api_key):
                found = user
        if found is None:
            raise SubsonicError(INVALID_API_KEY, "invalid API key")
        return found
