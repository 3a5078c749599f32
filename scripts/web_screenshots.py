#!/usr/bin/env python3
"""The screenshots of docs/web.rst: ``beet clapweb``'s page with the
results of a prompt, and its map coloured by genre, taken with headless
Chromium (Debian's ``chromium`` and ``chromium-driver``).

The library is the benchmark's synthetic one (benchmarks/web.py: real
beets items, clustered random vectors, the tests' tiny random model), so
the pictures show the page, not what a real model hears.

    .venv/bin/python scripts/web_screenshots.py [--rows 3000] [--out docs/_static]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "_static")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["BEETSDIR"] = str(root / "config")
        os.environ["HF_HUB_OFFLINE"] = "1"
        import web as bench
        from beets import logging as beets_logging
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import WebDriverWait

        from beetsplug.audiofeatures.settings.clap import QUERY, ClapSettings
        from beetsplug.audiofeatures.settings.web import WebSettings
        from beetsplug.audiofeatures.web.app import create_app
        from beetsplug.audiofeatures.web.library_search import LibrarySearch
        from tests import clap_fixtures
        from tests.browser import headless_chromium, served

        rng = np.random.default_rng(1)
        tokenizer = clap_fixtures.make_tokenizer(root / "tokenizer")
        model = clap_fixtures.make_model(
            root / "model", tokenizer, projection_dim=bench.DIM
        )
        clap_view, web_view = bench.configure(root, model, 50_000)
        settings = ClapSettings(clap_view).require(*QUERY)
        lib = bench.synthetic_library(root, args.rows, rng)
        bench.store_index(settings, lib, rng)
        log = beets_logging.getLogger("beets.audiofeatures")
        app, audio = create_app(
            LibrarySearch(lib, settings, log), WebSettings(web_view), log
        )
        try:
            with (
                served(app) as address,
                headless_chromium(1280, 860) as browser,
            ):
                browser.get(
                    address
                    + "/?q=rainy+night+jazz+piano&query=year:1990..&n=12"
                )
                browser.save_screenshot(str(args.out / "web-page.png"))
                browser.find_element(By.ID, "show-map").click()
                WebDriverWait(browser, 300).until(
                    lambda d: d.execute_script(
                        "return document.getElementById('map').dataset.points"
                    )
                )
                colour = browser.find_element(By.ID, "colour")
                colour.send_keys("genres", Keys.TAB)
                WebDriverWait(browser, 60).until(  # a trace per genre
                    lambda d: d.execute_script(
                        "return document.getElementById('map')"
                        "._fullData.length > 2"
                    )
                )
                browser.execute_script("window.scrollTo(0, 0)")
                browser.save_screenshot(str(args.out / "web-map.png"))
        finally:
            audio.close()
    print(f"wrote {args.out / 'web-page.png'} and {args.out / 'web-map.png'}")


if __name__ == "__main__":
    main()
