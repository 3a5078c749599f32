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

The library is a real beets library of ``--rows`` items written by SQL,
each with a ``clap_uid``; its vectors are synthetic (clusters around 60
random centres, unit length, 512 wide) and saved as the store's index
directly (per-track files would take minutes to write). The model is
the tests' tiny random CLAP model: the text model's own time is not
measured here (see benchmarks/clap_query_cold.py for the real one).

    python benchmarks/web.py [--rows 100000] [--sample 30000]
                             [--queries 20] [--no-browser]
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
            "format, samplerate, channels, bitdepth, bitrate, length) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'MP3', 44100, 2, 0, 256000, 200.0)",
            [
                (n, f"/music/{n}.mp3".encode(), f"track {n}",
                 f"artist {n % 5000}", f"album {n % 9000}", int(years[n - 1]),
                 GENRES[genres[n - 1]])
                for n in range(1, rows + 1)
            ],
        )  # fmt: skip
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
        web_settings.DEFAULTS | {"map_sample": sample}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=30_000)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--no-browser", action="store_true")
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
        from beetsplug.audiofeatures.web.app import create_app
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
        app, audio = create_app(LibrarySearch(lib, settings, log), web, log)
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
