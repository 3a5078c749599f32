"""``/rest/<method>`` and ``/rest/<method>.view``, GET or form POST: the
call authenticated, answered by its method, and every failure a
Subsonic error in the format asked for, never a traceback (the log gets
the error's kind and the method, never the address: it holds the
credentials)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from beets.exceptions import UserError
from flask import Blueprint, Flask, Response, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from beets_audiofeatures.errors import AudioFeaturesError, RequestError
from beetsplug.audiofeatures.web.subsonic import browsing, playback
from beetsplug.audiofeatures.web.subsonic.auth import User, Users
from beetsplug.audiofeatures.web.subsonic.calls import (
    METHODS,
    ApiState,
    Call,
    api_state,
)
from beetsplug.audiofeatures.web.subsonic.catalogue import Catalogue
from beetsplug.audiofeatures.web.subsonic.responses import (
    GENERIC,
    NOT_FOUND,
    SubsonicError,
    answer,
    envelope,
    error_body,
)

if TYPE_CHECKING:
    from beets.logging import BeetsLogger

    from beetsplug.audiofeatures.settings.web import WebSettings
    from beetsplug.audiofeatures.web.library_search import LibrarySearch

API_PREFIX = "/rest/"
#: The modules whose methods fill the table.
ANSWERING = (browsing, playback)

subsonic = Blueprint("subsonic", __name__)


def add_api(
    app: Flask, search: LibrarySearch, web: WebSettings, log: BeetsLogger
) -> None:
    """Serve the API from ``app``, for the users of the settings (read,
    and checked, here: ``beet clapweb`` stops on a bad value)."""
    users = Users([User(name, *secrets) for name, secrets in web.users.items()])
    app.extensions["subsonic"] = ApiState(
        search, Catalogue(search.lib), users, web, log
    )
    app.register_blueprint(subsonic)


def parameters() -> MultiDict[str, str]:
    """The address's parameters and a form POST's, together."""
    params: MultiDict[str, str] = MultiDict(request.args)
    if request.method == "POST":
        for key, values in request.form.lists():
            for value in values:
                params.add(key, value)
    return params


@subsonic.route(API_PREFIX + "<name>", methods=["GET", "POST"])
def call_method(name: str) -> Response:
    params = parameters()
    form, callback = params.get("f", "xml"), params.get("callback", "")
    name = name.removesuffix(".view")
    method = METHODS.get(name)
    if method is None:
        failure = SubsonicError(
            GENERIC, f"no method {name[:60]!r} on this server"
        )
        response = answer(error_body(failure), form, callback)
        response.status_code = 404
        return response
    try:
        user = api_state().users.authenticate(params)
        result = method(Call(name, params, user))
    except SubsonicError as exc:
        return answer(error_body(exc), form, callback)
    except HTTPException:  # a range past the end (416): HTTP's own answer
        raise
    except Exception as exc:
        return answer(error_body(as_subsonic(exc, name)), form, callback)
    if isinstance(result, Response):
        return result
    return answer(envelope(result), form, callback)


def as_subsonic(exc: Exception, name: str) -> SubsonicError:
    """The plugin's errors as the API's: what is not there is 70, the
    rest a generic error with its one line."""
    if isinstance(exc, RequestError):
        code = NOT_FOUND if exc.status in (404, 409) else GENERIC
        return SubsonicError(code, str(exc))
    if isinstance(exc, AudioFeaturesError | UserError):
        return SubsonicError(GENERIC, str(exc))
    api_state().log.error(
        "clapweb: {} in the API's {}: {}", type(exc).__name__, name, exc
    )
    return SubsonicError(
        GENERIC, f"internal error ({type(exc).__name__}): see the server's log"
    )
