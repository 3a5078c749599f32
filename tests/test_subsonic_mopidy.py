"""A real player on the API: Mopidy with Mopidy-Subidy (the Subsonic
backend from PyPI), headless, plays a song of ``beet clapweb``'s library
through its Subsonic URL.

Mopidy needs GStreamer's Python bindings, which come with the system
(Debian: ``apt install mopidy``), not with pip: the test runs where
``MOPIDY_PYTHON`` names a Python that imports both ``mopidy`` and
``mopidy_subidy`` (say a venv made with ``--system-site-packages`` and
``pip install mopidy-subidy``), and is skipped elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_subsonic import PASSWORD, USER, Server, server
from tests.test_web_command import free_port

MOPIDY_PYTHON = os.environ.get("MOPIDY_PYTHON", "")


def player_installed() -> bool:
    if not MOPIDY_PYTHON:
        return False
    found = subprocess.run(
        [MOPIDY_PYTHON, "-c", "import mopidy, mopidy_subidy"],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    return found.returncode == 0


pytestmark = pytest.mark.skipif(
    not player_installed(),
    reason="no MOPIDY_PYTHON with mopidy and mopidy_subidy",
)
__all__ = ["server"]  # the module's live server, a fixture


class Mopidy:
    def __init__(self, port: int) -> None:
        self.rpc = f"http://127.0.0.1:{port}/mopidy/rpc"

    def call(self, method: str, **params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        request = urllib.request.Request(
            self.rpc, json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as answer:
            document = json.loads(answer.read())
        assert "error" not in document, document["error"]
        return document["result"]


@pytest.fixture
def mopidy(server: Server, tmp_path: Path) -> Iterator[Mopidy]:
    port = free_port()
    config = tmp_path / "mopidy.conf"
    config.write_text(
        f"[core]\ncache_dir = {tmp_path}/cache\nconfig_dir = "
        f"{tmp_path}/config\ndata_dir = {tmp_path}/data\n"
        # Played in real time into nothing: no sound card here.
        "[audio]\noutput = fakesink sync=true\n"
        f"[http]\nenabled = true\nhostname = 127.0.0.1\nport = {port}\n"
        "[file]\nenabled = false\n[m3u]\nenabled = false\n"
        f"[subidy]\nurl = {server.base}\nusername = {USER}\n"
        f"password = {PASSWORD}\nlegacy_auth = false\napi_version = 1.16.1\n"
    )
    process = subprocess.Popen(
        [MOPIDY_PYTHON, "-m", "mopidy", "--config", str(config)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    player = Mopidy(port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                player.call("core.get_version")
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "Mopidy did not start"
                time.sleep(0.5)
        yield player
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode(errors="replace")
        # Subidy logs a failed call of ours; a test reading it fails.
        print(output)


def test_mopidy_plays_a_song_through_subidy(
    server: Server, mopidy: Mopidy
) -> None:
    song = f"subidy:song:{server.ids()['Morning']}"
    (found,) = mopidy.call("core.library.lookup", uris=[song])[song]
    assert found["name"] == "Morning"
    assert found["album"]["name"] == "First Light"
    mopidy.call("core.tracklist.add", uris=[song])
    mopidy.call("core.playback.play")
    deadline = time.monotonic() + 30
    position = 0
    while position < 1500 and time.monotonic() < deadline:
        time.sleep(0.25)
        position = mopidy.call("core.playback.get_time_position") or 0
    assert mopidy.call("core.playback.get_state") == "playing"
    assert position >= 1500  # the stream decoded, a second and a half in
    mopidy.call("core.playback.stop")
