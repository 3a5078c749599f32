"""The page's guards: who may ask (this machine's names, or the token),
and the headers every answer carries. A refusal is a
:class:`RequestError` with its status, answered in the app's one error
handler."""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

from flask import Response, redirect, request

from beets_audiofeatures.errors import RequestError

TOKEN_COOKIE = "clapweb_token"
#: The names of this machine a browser may use without a token.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: What the page may load: only itself. plotly sets inline styles, and
#: its WebGL code (regl) compiles its shaders' glue with ``Function``;
#: no inline script runs.
CONTENT_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; "
    "img-src 'self' data: blob:; "
    "style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


def require_local_host() -> None:
    """Without a token, served to this machine only: a page elsewhere
    that points its own host name at 127.0.0.1 (DNS rebinding) is
    refused."""
    if request.host.rsplit(":", 1)[0].strip("[]") not in LOCAL_HOSTS:
        raise RequestError(
            f"{request.host} is not this machine's address: open "
            "http://127.0.0.1 (or set audiofeatures.web.token)",
            403,
        )


def require_token(token: str | None) -> Response | None:
    """Let a request through (None), or answer it: the token given once
    in the page's address becomes a cookie and leaves the address."""
    if token is None:
        require_local_host()
        return None
    given = request.cookies.get(TOKEN_COOKIE, "")
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        given = header.removeprefix("Bearer ").strip()
    in_url = request.args.get("token")
    if in_url is not None and request.path == "/":
        # Opened once with ?token=...: a cookie from now on, and the
        # token leaves the address bar (and the history).
        if not hmac.compare_digest(in_url.encode(), token.encode()):
            raise RequestError("wrong token", 401)
        rest = {k: v for k, v in request.args.items() if k != "token"}
        response = redirect("/" + (f"?{urlencode(rest)}" if rest else ""))
        response.set_cookie(
            TOKEN_COOKIE, token, httponly=True, samesite="Strict"
        )
        return response  # type: ignore[return-value]
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise RequestError(
            "this server needs its token (audiofeatures.web.token): open "
            "/?token=TOKEN once, or send Authorization: Bearer TOKEN",
            401,
        )
    return None


def require_csrf(sent: str, csrf: str) -> None:
    if not hmac.compare_digest(sent.encode(), csrf.encode()):
        raise RequestError(
            "the CSRF token is missing or wrong: reload the page", 403
        )


def guard_headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = CONTENT_POLICY
    return response
