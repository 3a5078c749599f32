"""The page's routes, as one Flask Blueprint: the page, the search and
radio API, the map, a track's audio and the playlists. Each reads the
server's :class:`PageState`; a request that cannot be answered raises a
:class:`RequestError`, answered in the app's one error handler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    render_template,
    request,
    send_file,
)

from beets_audiofeatures.errors import RequestError
from beetsplug.audiofeatures.input_limits import MOST_INTEGER
from beetsplug.audiofeatures.search.map import SUGGESTED_COLOURS, colours
from beetsplug.audiofeatures.settings.web import WebSettings
from beetsplug.audiofeatures.web.browser_audio import BrowserAudio
from beetsplug.audiofeatures.web.guards import require_csrf
from beetsplug.audiofeatures.web.library_search import LibrarySearch, Track
from beetsplug.audiofeatures.web.map_cache import MapCache
from beetsplug.audiofeatures.web.map_file import plotly_bundle
from beetsplug.audiofeatures.web.playlist_files import (
    id_list,
    m3u_bytes,
    playlist_items,
    save_playlist,
)

if TYPE_CHECKING:
    from beets.logging import BeetsLogger

pages = Blueprint("clapweb", __name__)


@dataclass
class PageState:
    """What one server's requests share."""

    search: LibrarySearch
    web: WebSettings
    log: BeetsLogger
    csrf: str
    audio: BrowserAudio
    maps: MapCache


def state() -> PageState:
    found: PageState = current_app.extensions["clapweb"]
    return found


def number(value: str | None, name: str) -> int | None:
    """A whole number sent in the address; None when not sent."""
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()):
        raise RequestError(f"{name} must be a whole number, not {value!r}")
    if len(value) > len(str(MOST_INTEGER)):
        raise RequestError(f"{name} is too large a number")
    return int(value)


def count_asked(name: str) -> int:
    """How many tracks the address asks for (``name``), else the
    ``limit`` setting; 0 and negative numbers are refused, as ``-n`` is,
    rather than read as "the default"."""
    value = request.args.get(name, "")
    sent = value.strip()  # read by its digits: int() of 5,000 of them fails
    negative_or_zero = sent.startswith("-") or not sent.lstrip("+0")
    if sent.lstrip("+-").isdigit() and negative_or_zero:
        raise RequestError(f"{name} must be 1 or more, not {sent}")
    return number(value, name) or state().search.settings.limit


def searched() -> tuple[str, str, int | None, int, bool]:
    """The prompt, the query, the seed track, the count asked for and
    whether the prompt is searched as typed (``as_typed=1``: never
    translated)."""
    prompt = request.args.get("q", "")
    query = request.args.get("query", "")
    like = number(request.args.get("like"), "like")
    limit = count_asked("n")
    as_typed = request.args.get("as_typed", "") not in ("", "0")
    return prompt, query, like, limit, as_typed


def page_html(
    tracks: list[Track], heading: str, error: str, english: str | None = None
) -> str:
    """The page, with the boxes holding what was typed (to correct it,
    after an error) and the English a translated prompt was searched as."""
    return render_template(
        "page.html", tracks=tracks, prompt=request.args.get("q", ""),
        query=request.args.get("query", ""), heading=heading, error=error,
        english=english,
        csrf=state().csrf, colours=SUGGESTED_COLOURS,
        ids=",".join(str(t.id) for t in tracks),
    )  # fmt: skip


def results(tracks: list[Track]) -> Response:
    return jsonify(results=[t.as_json() for t in tracks])


@pages.get("/")
def page() -> str:
    search = state().search
    prompt, query, like, limit, as_typed = searched()
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
        tracks = search.search(prompt, query, like, limit, as_typed)
    return page_html(tracks, heading, "", search.english(prompt, as_typed))


@pages.get("/api/search")
def api_search() -> Response:
    """The results, and ``english``: what a translated prompt was
    searched as (null: as typed)."""
    search, asked = state().search, searched()
    tracks = search.search(*asked)
    return jsonify(
        results=[t.as_json() for t in tracks],
        english=search.english(asked[0], asked[4]),
    )


@pages.get("/api/tracks")
def api_tracks() -> Response:
    return results(state().search.tracks(id_list(request.args.get("ids", ""))))


@pages.get("/api/radio/<int:item_id>")
def api_radio(item_id: int) -> Response:
    search = state().search
    limit = count_asked("n")
    return results(search.radio(item_id, request.args.get("query", ""), limit))


@pages.get("/api/map")
def api_map() -> Response:
    colour = request.args.get("colour") or None
    payload, body = state().maps.current()
    if colour:
        lib = state().search.lib
        return jsonify(
            {**payload, "colour": colours(lib, colour, payload["ids"])}
        )
    return Response(body, mimetype="application/json")


@pages.get("/audio/<int:item_id>")
def audio_file(item_id: int) -> Response:
    path, mime = state().audio.file_of(state().search.item(item_id))
    response = send_file(path, mimetype=mime, conditional=True, max_age=0)
    response.headers["Accept-Ranges"] = "bytes"
    return response


@pages.get("/playlist.m3u8")
def playlist_download() -> Response:
    ids = id_list(request.args.get("ids", ""))
    return Response(
        m3u_bytes(playlist_items(state().search.lib, ids)),
        mimetype="audio/x-mpegurl",
        headers={"Content-Disposition": 'attachment; filename="clap.m3u8"'},
    )


@pages.post("/api/playlists")
def playlist_save() -> tuple[Response, int]:
    form = request.get_json(silent=True) or request.form
    if not isinstance(form, dict):  # a JSON list, string or number
        raise RequestError("send the playlist as a JSON object or a form")
    sent = request.headers.get("X-CSRF-Token") or str(
        form.get("csrf_token", "")
    )
    require_csrf(sent, state().csrf)
    target, tracks = save_playlist(
        state().search.lib, state().web.playlist_dir, form
    )
    state().log.info("clapweb: saved {} tracks to {}", tracks, target)
    return jsonify(saved=target.name, tracks=tracks), 201


@pages.get("/assets/plotly.min.js")
def plotly_js() -> Response:
    return send_file(plotly_bundle(), mimetype="text/javascript", max_age=86400)
