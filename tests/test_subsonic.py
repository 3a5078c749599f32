"""The OpenSubsonic API of the real ``beet clapweb`` (waitress), on
127.0.0.1, asked by two Subsonic client libraries from PyPI (py-sonic
and py-opensonic) and by hand in XML and JSON, on a small real library
whose tracks the tiny CLAP model embedded."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import synth
from tests.conftest import Audio, ClapAssets
from tests.test_web_command import first_answer, free_port

pytest.importorskip("flask", reason="the [web] extra is not installed")
pytest.importorskip("waitress", reason="the [web] extra is not installed")
libsonic = pytest.importorskip("libsonic", reason="py-sonic is not installed")
libopensonic = pytest.importorskip(
    "libopensonic", reason="py-opensonic is not installed"
)

USER, PASSWORD = "ana", "sésame & <co>"
API_KEY = "an-api-key-of-more-than-16-characters"
TOKEN = "a-page-token-of-more-than-16-characters"
XMLNS = "{http://subsonic.org/restapi}"

#: The library: (folder, file, tags, source).
TRACKS = [
    ("Alpha Band/First Light", "01.flac",
     {"artist": "Alpha Band", "album_artist": "Alpha Band",
      "album": "First Light", "title": "Morning", "genre": "Jazz",
      "date": "2001", "track": "1"}, "a120_wav"),
    ("Alpha Band/First Light", "02.flac",
     {"artist": "Alpha Band", "album_artist": "Alpha Band",
      "album": "First Light", "title": "Noon", "genre": "Jazz",
      "date": "2001", "track": "2"}, "c90_mp3"),
    ("Beta & Co/Second", "01.mp3",
     {"artist": "Beta & Co", "album_artist": "Beta & Co",
      "album": "Second", "title": "Evening <live>", "genre": "Rock",
      "date": "2010", "track": "1"}, "a120_wav"),
    ("Beta & Co/Second", "02.ogg",
     {"artist": "Beta & Co", "album_artist": "Beta & Co",
      "album": "Second", "title": "Night", "genre": "Rock",
      "date": "2010", "track": "2"}, "c90_mp3"),
]  # fmt: skip


@dataclass
class Server:
    base: str
    port: int
    db: Path
    process: subprocess.Popen[bytes]

    def url(self, method: str, **params: Any) -> str:
        query = {"v": "1.16.1", "c": "tests", **params}
        return f"{self.base}/rest/{method}?{urllib.parse.urlencode(query)}"

    def get(self, method: str, auth: bool = True, **params: Any) -> bytes:
        if auth:
            params = {"u": USER, "p": PASSWORD, **params}
        with urllib.request.urlopen(self.url(method, **params), timeout=60) as r:
            assert r.status == 200
            body: bytes = r.read()
            return body

    def json(self, method: str, **params: Any) -> dict[str, Any]:
        answer = json.loads(self.get(method, f="json", **params))
        document: dict[str, Any] = answer["subsonic-response"]
        return document

    def xml(self, method: str, **params: Any) -> ElementTree.Element:
        return ElementTree.fromstring(self.get(method, **params))

    def ids(self) -> dict[str, str]:
        """Each track's API id, by title."""
        songs = self.json("search3", query="")["searchResult3"]["song"]
        return {song["title"]: song["id"] for song in songs}


def tagged(source: Path, target: Path, tags: dict[str, str]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    metadata = [arg for k, v in tags.items() for arg in ("-metadata", f"{k}={v}")]
    codec = synth.ENCODERS.get(target.suffix, [])
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source),
         "-t", "8", *metadata, *codec, str(target)],
        check=True, capture_output=True,
    )  # fmt: skip


def cover(target: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "color=red:s=64x48", "-frames:v", "1", str(target)],
        check=True, capture_output=True,
    )  # fmt: skip
    return target


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, audio: Audio, clap: ClapAssets
) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("subsonic")
    incoming = root / "incoming"
    for folder, name, tags, source in TRACKS:
        tagged(getattr(audio, source), incoming / folder / name, tags)
    users = root / "users.yaml"
    users.write_text(
        json.dumps({USER: {"password": PASSWORD, "api_key": API_KEY}})
    )
    config = (
        f"{{clap: {{model: {clap.model_dir}, cache_dir: {root / 'cache'}, "
        f"windows: 1}}, web: {{users: {users}, token: {TOKEN}}}}}"
    )
    env, db = synth.import_library(root, incoming, f"audiofeatures: {config}\n")
    env["HF_HUB_OFFLINE"] = "1"
    art = cover(root / "cover.jpg")
    with sqlite3.connect(db) as database:
        database.execute(
            "UPDATE albums SET artpath = ? WHERE album = 'First Light'",
            (str(art).encode(),),
        )
    subprocess.run(
        [synth.BEET, "clap"], env=env, check=True, capture_output=True,
        timeout=300,
    )  # fmt: skip
    port = free_port()
    process = subprocess.Popen(
        [synth.BEET, "clapweb", "--port", str(port)], env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    running = Server(f"http://127.0.0.1:{port}", port, db, process)
    try:
        status, _ = first_answer(process, running.url("ping"))
        assert status == 200
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=30)


def sonic(server: Server, **kwargs: Any) -> Any:
    return libsonic.Connection(
        "http://127.0.0.1", USER, PASSWORD, port=server.port, **kwargs
    )


def opensonic(server: Server, **kwargs: Any) -> Any:
    if "api_key" not in kwargs:
        kwargs |= {"username": USER, "password": PASSWORD}
    return libopensonic.Connection(
        "http://127.0.0.1", port=server.port, **kwargs
    )


@pytest.fixture(scope="module")
def open_client(server: Server) -> Iterator[Any]:
    client = opensonic(server)
    yield client
    client.cleanup()


# -- the envelope and authentication ---------------------------------------


def test_ping_answers_the_opensubsonic_envelope_in_xml_by_default(
    server: Server,
) -> None:
    root = server.xml("ping")
    assert root.tag == XMLNS + "subsonic-response"
    assert root.attrib == {
        "status": "ok", "version": "1.16.1", "type": "beets-audiofeatures",
        "serverVersion": root.attrib["serverVersion"], "openSubsonic": "true",
    }  # fmt: skip


def test_ping_answers_json_with_f_json(server: Server) -> None:
    document = server.json("ping")
    assert document["status"] == "ok"
    assert document["openSubsonic"] is True
    assert document["version"] == "1.16.1"
