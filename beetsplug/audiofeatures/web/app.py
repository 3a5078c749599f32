"""The app of ``beet clapweb``: the routes (``routes.pages``), the
guards, and the one place an error becomes an answer.

Every answer to a bad request is one line: JSON ``{"error": ...}`` with
its status code for the API, the audio and the playlists, the page with
the line for the page; never a traceback. Audio is found by item id
only. With a token set (required off this machine) nothing is served
without it. Saving a playlist is a POST carrying the page's CSRF token,
and writes only into ``playlist_dir``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from beets import context
from beets.exceptions import UserError
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from beets_audiofeatures.errors import RequestError, SetupError
from beetsplug.audiofeatures.settings.web import WebSettings
from beetsplug.audiofeatures.web.browser_audio import BrowserAudio
from beetsplug.audiofeatures.web.guards import guard_headers, require_token
from beetsplug.audiofeatures.web.library_search import (
    MOST_RESULTS,
    LibrarySearch,
)
from beetsplug.audiofeatures.web.map_cache import MapCache
from beetsplug.audiofeatures.web.routes import PageState, page_html, pages
from beetsplug.audiofeatures.web.subsonic.endpoints import API_PREFIX, add_api

if TYPE_CHECKING:
    from beets.logging import BeetsLogger


def create_app(
    search: LibrarySearch, web: WebSettings, log: BeetsLogger
) -> tuple[Flask, BrowserAudio]:
    """The app, and the transcoded copies' folder (close it when the
    server stops)."""
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    audio = BrowserAudio()
    maps = MapCache(search, web.map_sample, log)
    app.extensions["clapweb"] = PageState(
        search, web, log, secrets.token_urlsafe(32), audio, maps
    )

    def warm_map() -> None:
        """Read (or compute) the map before the page asks for it."""
        with app.app_context():
            maps.warm()

    app.extensions["clapweb.warm_map"] = warm_map
    token = web.token

    @app.before_request
    def library_paths() -> Response | None:
        # beets keeps paths relative to the music folder, resolved by a
        # context variable: each request thread starts without it.
        context.set_music_dir(search.lib.directory)
        if request.path.startswith(API_PREFIX):
            return None  # the API's own users (subsonic.auth) say who asks
        return require_token(token)

    app.after_request(guard_headers)
    app.register_error_handler(Exception, lambda exc: answer_error(exc, log))
    app.register_blueprint(pages)
    add_api(app, search, web, log)
    return app, audio


def one_blas_thread() -> None:
    """numpy's products on one thread each: the server answers requests
    side by side on its own threads, and a small product split over
    every core waits for the busiest of them (a radio's 50 x 50 table
    took 15 ms instead of 0.1 on two busy cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn's, so umap-learn's: in [web]
        return
    threadpool_limits(1, user_api="blas")


def error_status(exc: Exception, log: BeetsLogger) -> tuple[int, str]:
    """The HTTP status and the one line of an error: the one place the
    page turns the plugin's errors into answers."""
    if isinstance(exc, RequestError):
        return exc.status, str(exc)
    if isinstance(exc, SetupError):  # a missing model, a damaged one
        return 503, exc.line()
    if isinstance(exc, UserError):  # a setting's value
        return 400, str(exc)
    if isinstance(exc, HTTPException):
        return exc.code or 500, exc.description or exc.name
    log.error("clapweb: {} on {}: {}", type(exc).__name__, request.path, exc)
    return 500, f"internal error ({type(exc).__name__}): see the server's log"


def answer_error(exc: Exception, log: BeetsLogger) -> Response:
    """The error as JSON for the API, the audio and the playlists, and
    as the page with its line for the page."""
    status, message = error_status(exc, log)
    if request.path != "/":
        response = jsonify(error=message)
    else:
        response = Response(page_html([], "", message), mimetype="text/html")
    response.status_code = status
    return response


__all__ = ["MOST_RESULTS", "create_app", "one_blas_thread"]
