"""The real ``beet clapweb`` program: it serves the page on 127.0.0.1
until it is stopped, and ``beet clapmap`` writes its file."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests import synth
from tests.conftest import Audio, ClapAssets

pytest.importorskip("flask", reason="the [web] extra is not installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def start_clapweb(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """The real ``beet clapweb`` on a free port, in a session of its
    own; the process and the page's address."""
    port = free_port()
    server = subprocess.Popen(
        [synth.BEET, "clapweb", "--port", str(port)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    return server, f"http://127.0.0.1:{port}"


def first_answer(
    server: subprocess.Popen[bytes], url: str
) -> tuple[int, bytes]:
    """``fetch(url)`` once the server answers (within two minutes)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return fetch(url)
        except OSError:
            assert server.poll() is None, "beet clapweb stopped"
            assert time.monotonic() < deadline, "beet clapweb never served"
            time.sleep(0.3)


def test_beet_clapweb_serves_the_library_until_stopped(
    tmp_path: Path, audio: Audio, clap: ClapAssets
) -> None:
    config = (
        f"{{clap: {{model: {clap.model_dir}, cache_dir: {tmp_path / 'cache'},"
        f" windows: 1}}}}"
    )
    env, _ = synth.library_of_copies(tmp_path, audio.a120_wav, 2, config)
    subprocess.run(
        [synth.BEET, "clap"], env=env, check=True, capture_output=True,
        timeout=300,
    )  # fmt: skip
    server, base = start_clapweb(env)
    try:
        status, _ = first_answer(server, base + "/static/page.js")
        assert status == 200
        status, body = fetch(base + "/api/search?q=dusty+jazz")
        assert status == 200
        results = json.loads(body)["results"]
        assert len(results) == 2
        status, data = fetch(base + results[0]["audio"])
        assert status == 200
        assert data[:4] == b"fLaC"
        status, body = fetch(base + "/api/map")
        assert status == 200
        assert len(json.loads(body)["ids"]) == 2
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=30)[0].decode()
    assert "http://127.0.0.1:" in output
    assert "Traceback" not in output
    target = tmp_path / "map.html"
    done = subprocess.run(
        [synth.BEET, "clapmap", "-o", str(target)], env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Plotly" in target.read_text()
