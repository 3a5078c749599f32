"""The routes of ``beet clapweb`` and their guards.

Every answer to a bad request is one line: JSON ``{"error": ...}`` with
its status code for the API, the audio and the playlists, the page with
the line for the page; never a traceback. Audio is found by item id
only. With a token set (required off this machine) nothing is served
without it. Saving a playlist is a POST carrying the page's CSRF token,
and writes only into ``playlist_dir``.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from beets import context
from beets.exceptions import UserError
from flask import (
    Flask,
    Response,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
)
from werkzeug.exceptions import HTTPException

from beets_audiofeatures.atomic_files import atomic_write
from beets_audiofeatures.errors import SetupError
from beetsplug.audiofeatures import input_limits
from beetsplug.audiofeatures.library_query import items_by_id
from beetsplug.audiofeatures.output import m3u_text, relative_base
from beetsplug.audiofeatures.search.map import (
    SUGGESTED_COLOURS,
    colours,
    library_map,
    map_payload,
)
from beetsplug.audiofeatures.settings.web import WebSettings
from beetsplug.audiofeatures.web.browser_audio import BrowserAudio
from beetsplug.audiofeatures.web.library_search import (
    MOST_RESULTS,
    LibrarySearch,
    WebError,
    database_stamp,
)

if TYPE_CHECKING:
    from beets.library import Item

TOKEN_COOKIE = "clapweb_token"
#: The names of this machine a browser may use without a token.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MOST_PLAYLIST_TRACKS = 10_000
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


def plotly_bundle() -> Path:
    """plotly.js as the ``plotly`` wheel ships it."""
    return Path(
        str(resources.files("plotly") / "package_data" / "plotly.min.js")
    )


def number(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()):
        raise WebError(400, f"{name} must be a whole number, not {value!r}")
    if len(value) > len(str(input_limits.MOST_INTEGER)):
        raise WebError(400, f"{name} is too large a number")
    return int(value)


def id_list(sent: Any, most: int) -> list[int]:
    """``1,2,3`` (or a JSON list of numbers) as item ids."""
    if isinstance(sent, list):
        parts = sent
    elif isinstance(sent, str):
        parts = [p for p in sent.replace(" ", "").split(",") if p]
    else:
        parts = [sent]
    if not all(
        isinstance(p, int)
        or (isinstance(p, str) and p.isascii() and p.isdigit())
        for p in parts
    ):
        raise WebError(400, "ids must be whole numbers separated by commas")
    return input_limits.item_ids(parts, "ids", most)


def create_app(
    search: LibrarySearch, web: WebSettings, log: Any
) -> tuple[Flask, BrowserAudio]:
    """The app, and the transcoded copies' folder (close it when the
    server stops)."""
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    audio = BrowserAudio()
    csrf = secrets.token_urlsafe(32)
    token = web.token
    map_lock = threading.Lock()
    lib = search.lib

    def wants_json() -> bool:
        return request.path != "/"

    def failure(status: int, message: str) -> Response:
        if wants_json():
            response = jsonify(error=message)
        else:
            response = Response(
                render_template(
                    "page.html",
                    error=message,
                    tracks=[],
                    # the boxes keep what was typed, to correct it
                    prompt=request.args.get("q", ""),
                    query=request.args.get("query", ""),
                    heading="",
                    csrf=csrf,
                    colours=SUGGESTED_COLOURS,
                    ids="",
                ),
                mimetype="text/html",
            )
        response.status_code = status
        return response

    @app.errorhandler(WebError)
    def web_error(exc: WebError) -> Response:
        return failure(exc.status, str(exc))

    @app.errorhandler(UserError)
    def user_error(exc: UserError) -> Response:
        return failure(400, str(exc))

    @app.errorhandler(SetupError)
    def setup_error(exc: SetupError) -> Response:
        return failure(503, exc.line())

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return failure(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.error(
            "clapweb: {} on {}: {}", type(exc).__name__, request.path, exc
        )
        return failure(
            500, f"internal error ({type(exc).__name__}): see the server's log"
        )

    @app.before_request
    def library_paths() -> None:
        # beets keeps paths relative to the music folder, resolved by a
        # context variable: each request thread starts without it.
        context.set_music_dir(lib.directory)

    @app.before_request
    def require_token() -> Response | None:
        if token is None:
            # Served to this machine only: a page elsewhere that points
            # its own host name at 127.0.0.1 (DNS rebinding) is refused.
            if request.host.rsplit(":", 1)[0].strip("[]") not in LOCAL_HOSTS:
                raise WebError(
                    403, f"{request.host} is not this machine's address: "
                    "open http://127.0.0.1 (or set audiofeatures.web.token)",
                )  # fmt: skip
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
                raise WebError(401, "wrong token")
            rest = {k: v for k, v in request.args.items() if k != "token"}
            response = redirect("/" + (f"?{urlencode(rest)}" if rest else ""))
            response.set_cookie(
                TOKEN_COOKIE, token, httponly=True, samesite="Strict"
            )
            return response  # type: ignore[return-value]
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise WebError(
                401, "this server needs its token (audiofeatures.web.token): "
                "open /?token=TOKEN once, or send Authorization: Bearer TOKEN",
            )  # fmt: skip
        return None

    @app.after_request
    def guard_headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = CONTENT_POLICY
        return response

    def searched() -> tuple[str, str, int | None, int]:
        prompt = request.args.get("q", "")
        query = request.args.get("query", "")
        like = number(request.args.get("like"), "like")
        limit = number(request.args.get("n"), "n") or search.settings.limit
        return prompt, query, like, limit

    @app.get("/")
    def page() -> str:
        prompt, query, like, limit = searched()
        radio = number(request.args.get("radio"), "radio")
        heading = ""
        if radio is not None:
            seed = search.item(radio)
            heading = f"radio from {seed.artist} - {seed.title}"
            tracks = search.radio(radio, query, limit)
        else:
            if like is not None:
                seed = search.item(like)
                heading = f"more like {seed.artist} - {seed.title}"
            tracks = search.search(prompt, query, like, limit)
        return render_template(
            "page.html", tracks=tracks, prompt=prompt, query=query,
            heading=heading, error="", csrf=csrf, colours=SUGGESTED_COLOURS,
            ids=",".join(str(t.id) for t in tracks),
        )  # fmt: skip

    @app.get("/api/search")
    def api_search() -> Response:
        prompt, query, like, limit = searched()
        tracks = search.search(prompt, query, like, limit)
        return jsonify(results=[t.as_json() for t in tracks])

    @app.get("/api/tracks")
    def api_tracks() -> Response:
        ids = id_list(request.args.get("ids", ""), MOST_PLAYLIST_TRACKS)
        return jsonify(results=[t.as_json() for t in search.tracks(ids)])

    @app.get("/api/radio/<int:item_id>")
    def api_radio(item_id: int) -> Response:
        limit = number(request.args.get("n"), "n") or search.settings.limit
        tracks = search.radio(item_id, request.args.get("query", ""), limit)
        return jsonify(results=[t.as_json() for t in tracks])

    # The map's points and labels as sent, until the database changes
    # (embedding a track writes to it): at 100k tracks, reading them is
    # a second, sending them a few milliseconds.
    map_cache: dict[str, tuple[Any, dict[str, Any], bytes]] = {}

    def current_map() -> tuple[dict[str, Any], bytes]:
        stamp = database_stamp(lib.path)
        with map_lock:  # one computation for concurrent first requests
            cached = map_cache.get("map")
            if cached is None or stamp is None or cached[0] != stamp:
                store, index = search.index()
                projection = library_map(
                    lib, store, index, web.map_sample, log,
                    keys=search.source_keys(),
                )  # fmt: skip
                assert projection is not None
                payload = map_payload(lib, projection, None)
                body = json.dumps(
                    payload, ensure_ascii=False, separators=(",", ":")
                ).encode()
                map_cache["map"] = cached = (stamp, payload, body)
            return cached[1], cached[2]

    def warm_map() -> None:
        """Read (or compute) the map before the page asks for it."""
        with app.app_context():
            try:
                current_map()
            except Exception as exc:  # the page's request says it again
                log.debug("clapweb: the map is not ready: {}", exc)

    app.extensions["clapweb.warm_map"] = warm_map

    @app.get("/api/map")
    def api_map() -> Response:
        colour = request.args.get("colour") or None
        payload, body = current_map()
        if colour:
            return jsonify(
                {**payload, "colour": colours(lib, colour, payload["ids"])}
            )
        return Response(body, mimetype="application/json")

    @app.get("/audio/<int:item_id>")
    def audio_file(item_id: int) -> Response:
        path, mime = audio.file_of(search.item(item_id))
        response = send_file(path, mimetype=mime, conditional=True, max_age=0)
        response.headers["Accept-Ranges"] = "bytes"
        return response

    def playlist_items(ids: list[int]) -> list[Item]:
        found = items_by_id(lib, ids)
        if missing := [n for n in ids if n not in found]:
            raise WebError(404, f"no track {missing[0]} in the library")
        return [found[n] for n in ids]

    @app.get("/playlist.m3u8")
    def playlist_download() -> Response:
        ids = id_list(request.args.get("ids", ""), MOST_PLAYLIST_TRACKS)
        text = m3u_text(playlist_items(ids))
        return Response(
            text.encode("utf-8", "surrogateescape"),
            mimetype="audio/x-mpegurl",
            headers={"Content-Disposition": 'attachment; filename="clap.m3u8"'},
        )

    @app.post("/api/playlists")
    def playlist_save() -> tuple[Response, int]:
        form = request.get_json(silent=True) or request.form
        if not isinstance(form, dict):  # a JSON list, string or number
            raise WebError(400, "send the playlist as a JSON object or a form")
        sent = request.headers.get("X-CSRF-Token") or str(
            form.get("csrf_token", "")
        )
        if not hmac.compare_digest(sent.encode(), csrf.encode()):
            raise WebError(
                403, "the CSRF token is missing or wrong: reload the page"
            )
        folder = web.playlist_dir
        if folder is None:
            raise WebError(
                409, "no playlist folder: set audiofeatures.web.playlist_dir"
            )
        if not folder.is_dir():
            raise WebError(409, f"the playlist folder {folder} does not exist")
        name = form.get("name", "")
        if not isinstance(name, str):
            raise WebError(400, "a playlist's name is text")
        name = re.sub(r"\.m3u8?$", "", name.strip(), flags=re.IGNORECASE)
        input_limits.playlist_name(name, "the name")
        try:
            target = (folder / f"{name}.m3u8").resolve()
            inside = target.parent == folder.resolve()
        except (OSError, RuntimeError) as exc:  # a symbolic link loop
            raise WebError(
                409, f"the playlist folder {folder} cannot be used: {exc}"
            ) from None
        if not inside:
            raise WebError(
                400, "a playlist is saved in the playlist folder only"
            )
        ids = id_list(form.get("ids", ""), MOST_PLAYLIST_TRACKS)
        if not ids:
            raise WebError(400, "the playlist has no tracks")
        replace = str(form.get("replace", "")).lower() in (
            "1",
            "true",
            "yes",
            "on",
        )
        if target.exists() and not replace:
            raise WebError(409, f"a playlist {target.name} exists already")
        text = m3u_text(playlist_items(ids), relative_base(target))
        with atomic_write(target) as handle:  # paths that are not UTF-8 too
            handle.write(text.encode("utf-8", "surrogateescape"))
        log.info("clapweb: saved {} tracks to {}", len(ids), target)
        return jsonify(saved=target.name, tracks=len(ids)), 201

    @app.get("/assets/plotly.min.js")
    def plotly_js() -> Response:
        return send_file(
            plotly_bundle(), mimetype="text/javascript", max_age=86400
        )

    return app, audio


__all__ = ["MOST_RESULTS", "create_app"]
