"""``beet clapweb``: the library's page (search by sentence, listen, see
the map, make playlists), a Flask app of the ``[web]`` extra.

``library_search`` ranks and describes tracks for the page (through
the ``search`` services), ``browser_audio`` serves a track's audio by
item id, ``routes`` holds the routes (a Blueprint), ``guards`` the token,
host and header checks, ``playlist_files`` the M3U download and save,
``map_cache`` the map as sent, ``map_file`` the map as one HTML file, and
``app`` builds the app with its one error handler; ``templates`` and
``static`` ship the page, and the map draws with the plotly.js bundle of
the ``plotly`` wheel: nothing comes from a CDN.
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
