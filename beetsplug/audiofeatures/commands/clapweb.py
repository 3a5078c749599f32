"""``beet clapweb`` (serve the library's page) and ``beet clapmap``
(write the map as one HTML file). Flask, plotly and umap-learn come
with the ``[web]`` extra and are imported only here, when one of these
commands runs: without them every other command works."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import confuse

from beets_audiofeatures.errors import CommandError, RequestError
from beets_audiofeatures.runner import Stopped, StopSignals, count
from beetsplug.audiofeatures.search.map import library_map, map_payload
from beetsplug.audiofeatures.search.vectors import embedded_index
from beetsplug.audiofeatures.settings.clap import QUERY, ClapSettings
from beetsplug.audiofeatures.settings.web import WebSettings, is_loopback
from beetsplug.audiofeatures.web import require_web_extra

if TYPE_CHECKING:
    from beets.library import Library
    from beets.logging import BeetsLogger


#: waitress's worker threads: requests answered at once (a radio or a
#: path takes one for its few milliseconds; sending a file takes none).
SERVER_THREADS = 16


class WebOptions(Protocol):
    """``beet clapweb``'s options (read by ``WebSettings``)."""

    host: str | None
    port: int | None


class MapOptions(Protocol):
    """``beet clapmap``'s options."""

    output: str | None
    colour: str | None


def run_clapweb(
    clap_view: confuse.ConfigView,
    web_view: confuse.ConfigView,
    log: BeetsLogger,
    lib: Library,
    opts: WebOptions,
    args: list[str],
) -> None:
    require_web_extra("clapweb")
    web = WebSettings(web_view, opts)
    host, port, token = web.host, web.port, web.token
    if not is_loopback(host):
        if token is None:
            raise CommandError(
                f"--host {host} lets other machines reach your library: "
                "set audiofeatures.web.token (a secret of 16 characters or "
                "more) first"
            )
        log.warning(
            "serving on {} port {}: other machines can reach it; every "
            "request needs audiofeatures.web.token (the Subsonic API: a "
            "user of audiofeatures.web.users)",
            host, port,
        )  # fmt: skip
    web.require("users")  # a bad value stops here, in one line
    settings = ClapSettings(clap_view, opts).require(*QUERY)
    from beetsplug.audiofeatures.web.app import create_app, one_blas_thread
    from beetsplug.audiofeatures.web.library_search import LibrarySearch

    one_blas_thread()
    app, audio = create_app(LibrarySearch(lib, settings, log), web, log)
    # The map's points are read while the first visitor types.
    threading.Thread(
        target=app.extensions["clapweb.warm_map"], daemon=True
    ).start()
    try:
        server = production_server(app, host, port)
    except OSError as exc:
        audio.close()
        raise CommandError(
            f"cannot serve on {host} port {port}: {exc.strerror or exc} "
            "(another port: --port N)"
        ) from None
    shown = f"[{host}]" if ":" in host else host
    log.info("the library's page: http://{}:{}/ (Ctrl-C stops)", shown, port)
    log.info(
        "the Subsonic API: http://{}:{}/rest/ ({})", shown, port,
        count(len(web.users), "user"),
    )  # fmt: skip
    # SIGTERM and SIGHUP stop the server as Ctrl-C does, so the
    # transcoded copies go with it.
    try:
        with StopSignals():
            server.run()
    except Stopped as stop:
        log.info("stopped by {}", stop)
        raise SystemExit(stop.exit_code) from None
    finally:
        close_server(server)
        audio.close()


def close_server(server: Any) -> None:
    """Stop waitress as its own Ctrl-C does: the worker threads first
    (one still sending an answer would write to a closed trigger), then
    every connection and the listening socket."""
    from waitress import wasyncore

    server.task_dispatcher.shutdown(timeout=5)
    wasyncore.close_all(getattr(server, "_map", None), ignore_all=True)


def production_server(app: Any, host: str, port: int) -> Any:
    """waitress, serving the page and the API: a few worker threads, the
    connections themselves (idle ones, files being sent) held by its one
    asynchronous loop, not by a thread each."""
    try:
        from waitress import create_server
    except ImportError:
        raise CommandError(
            "beet clapweb needs waitress: pip install "
            "'beets-audiofeatures[web]'"
        ) from None
    return create_server(
        app, host=host, port=port, threads=SERVER_THREADS,
        ident="beets-audiofeatures", channel_timeout=60,
    )  # fmt: skip


def run_clapmap(
    clap_view: confuse.ConfigView,
    web_view: confuse.ConfigView,
    log: BeetsLogger,
    lib: Library,
    opts: MapOptions,
    args: list[str],
) -> None:
    require_web_extra("clapmap")
    if not opts.output:
        raise RequestError("clapmap needs -o FILE, such as -o map.html")
    target = Path(opts.output).expanduser()
    if "\x00" in opts.output or target.is_dir() or not target.parent.is_dir():
        raise RequestError(
            f"-o {opts.output}: give an HTML file's name in a folder that "
            "exists"
        )
    web = WebSettings(web_view, opts)
    store, index = embedded_index(ClapSettings(clap_view, opts), lib)
    projection = library_map(lib, store, index, web.map_sample, log)
    assert projection is not None
    payload = map_payload(lib, projection, opts.colour)
    from beetsplug.audiofeatures.web.map_file import map_html

    target.write_text(map_html(payload), encoding="utf-8")
    log.info(
        "wrote the map of {} to {}", count(len(projection), "track"), target
    )
