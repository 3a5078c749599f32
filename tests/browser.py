"""A served ``beet clapweb`` app and headless Chromium driving it, for
the browser tests, the screenshots and the benchmark (Debian's
``chromium`` and ``chromium-driver``; scripts/system-deps.sh installs
them)."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator
from typing import Any

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def chromium_paths() -> tuple[str, str] | None:
    """The browser and its driver, None when either is missing."""
    browser = next(filter(None, map(shutil.which, CHROMIUM)), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """The app on a free port of 127.0.0.1, in a thread; its address."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@contextlib.contextmanager
def headless_chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if paths is None:
        raise RuntimeError(
            "chromium and chromedriver are needed: run scripts/system-deps.sh"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--autoplay-policy=no-user-gesture-required",
        # WebGL without a GPU, for the map's scattergl
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
        "--mute-audio",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        service=Service(paths[1], log_output=os.devnull), options=options
    )
    try:
        yield driver
    finally:
        driver.quit()
