"""``beet clapweb``: the library's page (search by sentence, listen, see
the map, make playlists), a Flask app of the ``[web]`` extra.

``library_search`` ranks and describes tracks for the page (through
``clapquery``'s ranking), ``browser_audio`` serves a track's audio by
item id, ``app`` holds the routes and the guards (token, CSRF, JSON
errors); ``templates`` and ``static`` ship the page, and the map draws
with the plotly.js bundle of the ``plotly`` wheel: nothing comes from a
CDN.
"""

from __future__ import annotations

from beets_audiofeatures.errors import RequestError

INSTALL = "pip install 'beets-audiofeatures[web]'"


def require_web_extra(command: str) -> None:
    """One line naming the pip command when Flask or plotly is missing
    (imported only by the commands that need them)."""
    missing = []
    for module in ("flask", "plotly"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise RequestError(
            f"beet {command} needs {' and '.join(missing)}: {INSTALL}", 503
        )
