"""``beet clapweb``'s figures at 100k tracks (issue 16's targets):

* the search round trip: ``GET /api/search`` through the Flask app
  (the HTTP layer, the text model embedding a new prompt, the ranking,
  loading and describing the results), median of ``--queries`` new
  prompts after a warm-up that loads the model; and the same with a
  beets query (``year:1990..1999``, a tenth of the library). Target
  ≤ 200 ms;
* ``beet clap --map`` over the library's vectors: UMAP fitted on a
  sample of ``--sample`` and the rest transformed. Target ≤ 2 min;
* the map's render in headless Chromium: from the click on "Map" to
  every point drawn (plotly.js loaded, ``/api/map`` fetched, drawn
  with WebGL). Target ≤ 3 s.

And the Subsonic API's (issue 28), with ``--subsonic`` (``--only-subsonic``
skips the above), through the real waitress server on 127.0.0.1:
``getSonicSimilarTracks`` p50 ≤ 30 ms, ``findSonicPath`` of 25 ≤ 200
ms, ``search3`` ≤ 100 ms, first byte of ``stream`` ≤ 50 ms, and 20
concurrent clients for ``--seconds`` (30) with no error and p99 within
5x p50.

The library is a real beets library of ``--rows`` items written by SQL,
each with a ``clap_uid``; its vectors are synthetic (clusters around 60
random centres, unit length, 512 wide) and saved as the store's index
directly (per-track files would take minutes to write). The model is
the tests' tiny random CLAP model: the text model's own time is not
measured here (see benchmarks/clap_query_cold.py for the real one).

    python benchmarks/web.py [--rows 100000] [--sample 30000]
                             [--queries 20] [--no-browser]
                             [--subsonic | --only-subsonic] [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DIM = 512
CENTRES = 60
GENRES = ("jazz", "metal", "ambient", "folk", "techno", "classical")


def synthetic_vectors(rows: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.standard_normal((CENTRES, DIM)).astype(np.float32)
    which = rng.integers(0, CENTRES, rows)
    matrix = centres[which] + 0.6 * rng.standard_normal(
        (rows, DIM), dtype=np.float32
    )
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix


def synthetic_library(root: Path, rows: int, rng: np.random.Generator) -> Any:
    """A beets library of ``rows`` items (no files: only the page's
    ranking and description are measured), each with a ``clap_uid``."""
    from beets.library import Library

    lib = Library(str(root / "library.db"), str(root / "music"))
    years = rng.integers(1960, 2025, rows)
    genres = rng.integers(0, len(GENRES), rows)
    with lib.transaction() as tx:
        tx.mutate_many(
            "INSERT INTO items (id, path, title, artist, album, year, genres, "
            "format, samplerate, channels, bitdepth, bitrate, length, "
            "album_id, albumartist) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'MP3', 44100, 2, 0, 256000, 200.0, "
            "?, ?)",
            [
                (n, f"/music/{n}.mp3".encode(), f"track {n}",
                 f"artist {n % 5000}", f"album {n % 9000}", int(years[n - 1]),
                 GENRES[genres[n - 1]], n % 9000 + 1, f"artist {n % 5000}")
                for n in range(1, rows + 1)
            ],
        )  # fmt: skip
        tx.mutate_many(
            "INSERT INTO albums (id, album, albumartist, year, genres) "
            "VALUES (?, ?, ?, 2000, 'jazz')",
            [(a + 1, f"album {a}", f"artist {a % 5000}") for a in range(9000)],
        )
        tx.mutate_many(
            "INSERT INTO item_attributes (entity_id, key, value) "
            "VALUES (?, 'clap_uid', ?)",
            [(n, f"{n:016x}") for n in range(1, rows + 1)],
        )
    return lib


def store_index(settings: Any, lib: Any, rng: np.random.Generator) -> None:
    """Every item's vector in the store's index, under its source key."""
    from beets_audiofeatures.clap.index import KEY_DTYPE, write_index
    from beetsplug.audiofeatures.library_query import source_keys

    store = settings.store(lib).open(settings.identity())
    keys = source_keys(lib)
    ids = np.array(sorted(keys), np.int64)
    write_index(
        store.folder,
        ids,
        synthetic_vectors(len(ids), rng),
        np.array([keys[n] for n in ids.tolist()], KEY_DTYPE),
    )


def configure(root: Path, model: Path, sample: int) -> tuple[Any, Any]:
    from beets import config

    from beetsplug.audiofeatures.settings import clap as clap_settings
    from beetsplug.audiofeatures.settings import web as web_settings

    config["audiofeatures"]["clap"].set(
        clap_settings.DEFAULTS
        | {"model": str(model), "cache_dir": str(root / "cache")}
    )
    config["audiofeatures"]["web"].set(
        web_settings.DEFAULTS
        | {"map_sample": sample, "users": {"bench": "bench"}}
    )
    return config["audiofeatures"]["clap"], config["audiofeatures"]["web"]


def round_trips(client: Any, queries: int, query: str) -> float:
    """Median ms of ``/api/search`` for new prompts."""
    times = []
    for n in range(queries):
        prompt = f"dusty jazz piano at night number {n} {query}"
        start = time.perf_counter()
        answer = client.get(
            "/api/search", query_string={"q": prompt, "query": query}
        )
        times.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert len(answer.get_json()["results"]) == 20
    return statistics.median(times)


def map_render_seconds(app: Any) -> tuple[float, int]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser import headless_chromium, served

    with served(app) as address, headless_chromium() as browser:
        browser.get(address + "/")
        start = time.perf_counter()
        browser.find_element(By.ID, "show-map").click()
        points = WebDriverWait(browser, 120).until(
            lambda d: d.execute_script(
                "return document.getElementById('map').dataset.points"
            )
        )
        # one frame after plotly says it is drawn
        browser.execute_async_script(
            "requestAnimationFrame(() => arguments[0]())"
        )
        return time.perf_counter() - start, int(points)


def timed_ms(call: Any) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def subsonic_figures(
    app: Any, lib: Any, root: Path, rows: int, seconds: float
) -> None:
    """The API's figures through waitress on 127.0.0.1 (one real file for
    ``stream``: the synthetic items have none)."""
    import json
    import subprocess
    import threading
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from waitress import create_server

    song = root / "song.mp3"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         "sine=frequency=440:duration=200", "-b:a", "256k", str(song)],
        check=True,
    )  # fmt: skip
    with lib.transaction() as tx:
        tx.mutate("UPDATE items SET path = ? WHERE id = 1", (bytes(song),))
    server = create_server(app, host="127.0.0.1", port=0, threads=16)
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{server.effective_port}/rest/"
    auth = "u=bench&p=bench&v=1.16.1&c=bench&f=json"
    rng = np.random.default_rng(1)

    def call(method: str, params: str) -> dict[str, Any]:
        url = f"{base}{method}?{auth}&{params}"
        with urllib.request.urlopen(url, timeout=60) as answer:
            document: dict[str, Any] = json.loads(answer.read())[
                "subsonic-response"
            ]
        assert document["status"] == "ok", document
        return document

    def median_of(method: str, params: Any, times: int = 30) -> float:
        call(method, params())  # warm
        return statistics.median(
            timed_ms(lambda: call(method, params())) for _ in range(times)
        )

    def song_id() -> str:
        return f"tr-{int(rng.integers(1, rows + 1))}"

    figures = {
        "getSonicSimilarTracks (10)": (
            median_of("getSonicSimilarTracks", lambda: f"id={song_id()}"), 30),
        "findSonicPath of 25": (median_of(
            "findSonicPath",
            lambda: f"startSongId={song_id()}&endSongId={song_id()}&count=25",
            10), 200),
        "search3 'track 12' (20 songs)": (
            median_of("search3", lambda: f"query=track+{rng.integers(100)}"),
            100),
        "search3 '' (500 songs: a client's sync)": (
            median_of("search3", lambda: "query=&songCount=500", 10), 100),
    }  # fmt: skip
    for what, (ms, target) in figures.items():
        print(f"{what}, {rows:,} tracks: {ms:.1f} ms (median)  "
              f"[target ≤ {target} ms]", flush=True)  # fmt: skip

    def first_byte() -> float:
        start = time.perf_counter()
        with urllib.request.urlopen(f"{base}stream?{auth}&id=tr-1") as answer:
            answer.read(1)
            return (time.perf_counter() - start) * 1000

    first_byte()
    print(f"stream, first byte: {statistics.median(first_byte() for _ in range(20)):.1f} "
          "ms (median)  [target ≤ 50 ms]", flush=True)  # fmt: skip
    mix = [
        ("getSonicSimilarTracks", lambda: f"id={song_id()}"),
        ("search3", lambda: f"query=track+{rng.integers(1000)}"),
        ("getSong", lambda: f"id={song_id()}"),
        ("getAlbumList2", lambda: "type=random&size=20"),
    ]
    deadline = time.perf_counter() + seconds

    def client(number: int) -> tuple[list[float], int]:
        times: list[float] = []
        errors = 0
        while time.perf_counter() < deadline:
            method, params = mix[(number + len(times)) % len(mix)]
            start = time.perf_counter()
            try:
                call(method, params())
            except Exception:  # counted, not raised
                errors += 1
                continue
            times.append((time.perf_counter() - start) * 1000)
        return times, errors

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(client, range(20)))
    times = sorted(t for part, _ in results for t in part)
    errors = sum(e for _, e in results)
    p50, p99 = times[len(times) // 2], times[int(len(times) * 0.99)]
    print(f"20 clients for {seconds:.0f} s: {len(times):,} calls, "
          f"{errors} errors, p50 {p50:.1f} ms, p99 {p99:.1f} ms "
          f"({p99 / p50:.1f}x)  [target: no error, p99 ≤ 5x p50]",
          flush=True)  # fmt: skip
    from beetsplug.audiofeatures.commands.clapweb import close_server

    close_server(server)  # as beet clapweb stops: its threads first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=30_000)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--subsonic", action="store_true")
    parser.add_argument("--only-subsonic", action="store_true")
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["BEETSDIR"] = str(root / "config")
        os.environ["HF_HUB_OFFLINE"] = "1"
        from beets import logging as beets_logging

        from beetsplug.audiofeatures.search.map import library_map
        from beetsplug.audiofeatures.settings.clap import QUERY, ClapSettings
        from beetsplug.audiofeatures.settings.web import WebSettings
        from beetsplug.audiofeatures.web.app import create_app, one_blas_thread
        from beetsplug.audiofeatures.web.library_search import LibrarySearch
        from tests import clap_fixtures

        tokenizer = clap_fixtures.make_tokenizer(root / "tokenizer")
        model = clap_fixtures.make_model(
            root / "model", tokenizer, projection_dim=DIM
        )
        clap_view, web_view = configure(root, model, args.sample)
        settings = ClapSettings(clap_view).require(*QUERY)
        print(f"library of {args.rows:,} tracks …", flush=True)
        lib = synthetic_library(root, args.rows, rng)
        store_index(settings, lib, rng)
        log = beets_logging.getLogger("beets.audiofeatures")
        web = WebSettings(web_view)
        one_blas_thread()  # as beet clapweb does
        app, audio = create_app(LibrarySearch(lib, settings, log), web, log)
        if args.subsonic or args.only_subsonic:
            subsonic_figures(app, lib, root, args.rows, args.seconds)
        if args.only_subsonic:
            audio.close()
            return
        client = app.test_client()
        client.get("/api/search?q=warm+up")  # loads the model
        full = round_trips(client, args.queries, "")
        filtered = round_trips(client, args.queries, "year:1990..1999")
        print(f"search round trip, {args.rows:,} tracks: {full:.0f} ms "
              f"(median of {args.queries}); within year:1990..1999: "
              f"{filtered:.0f} ms  [target ≤ 200 ms]", flush=True)  # fmt: skip
        store = settings.store(lib)
        start = time.perf_counter()
        library_map(lib, store, store.index(), args.sample, log)
        mapped = time.perf_counter() - start
        print(f"beet clap --map, {args.rows:,} vectors (UMAP on "
              f"{min(args.sample, args.rows):,}): {mapped:.1f} s  "
              "[target ≤ 120 s]", flush=True)  # fmt: skip
        for what, url in (
            ("first /api/map (read, then cached)", "/api/map"),
            ("next /api/map (from memory)", "/api/map"),
            ("/api/map?colour=genres", "/api/map?colour=genres"),
        ):
            start = time.perf_counter()
            payload = client.get(url)
            took = (time.perf_counter() - start) * 1000
            print(f"{what}: {took:.0f} ms, {len(payload.data) / 1e6:.1f} MB "
                  "of JSON", flush=True)  # fmt: skip
        if not args.no_browser:
            seconds, points = map_render_seconds(app)
            print(f"map render in headless Chromium (click on Map to all "
                  f"drawn, plotly.js loaded): {seconds:.2f} s for "
                  f"{points:,} points  [target ≤ 3 s]", flush=True)  # fmt: skip
        audio.close()


if __name__ == "__main__":
    main()
