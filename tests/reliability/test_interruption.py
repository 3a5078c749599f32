"""``beet essentia`` and ``beet clap`` killed mid-batch (SIGINT, SIGKILL):
what was stored stays, the store stays consistent, a re-run resumes."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beets_audiofeatures.clap.store import stores
from beetsplug.audiofeatures.library_query import library_name
from tests import synth
from tests.conftest import Audio
from tests.synth import BEET


def stored(db: Path, field: str) -> int:
    """How many items have ``field``, read straight from the database."""
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM item_attributes WHERE key = ?", (field,)
        ).fetchone()
    assert isinstance(count, int), count
    return count


def analysed(db: Path) -> int:
    return stored(db, "essentia_analyzed")


def embedded(db: Path) -> int:
    return stored(db, "clap_model")


def interrupt_once_one_is_stored(
    command: str, env: dict[str, str], db: Path, field: str, sig: int
) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``beet command`` and send ``sig`` as soon as one item has
    ``field``; return the finished process and what it printed."""
    run = subprocess.Popen(
        [BEET, command], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while stored(db, field) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    run.send_signal(sig)
    stdout, stderr = run.communicate(timeout=60)
    assert b"Traceback" not in stderr
    return run, stdout.decode()


@pytest.fixture
def library(tmp_path: Path, audio: Audio) -> tuple[dict[str, str], Path]:
    return synth.library_of_copies(
        tmp_path, audio.a120_wav, 5, "{essentia: {jobs: 1}}"
    )


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_an_interrupted_run_keeps_what_it_stored_and_resumes(library, sig):
    env, db = library
    run, _ = interrupt_once_one_is_stored(
        "essentia", env, db, "essentia_analyzed", sig
    )

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    kept = analysed(db)
    assert 1 <= kept < 5

    # the workers notice their parent is gone and leave
    assert synth.group_has_exited(run.pid, 30), "workers outlived beet"

    again = subprocess.run(
        [BEET, "essentia"], env=env, capture_output=True, text=True, check=True
    )
    assert f"({kept} already analysed)" in again.stderr
    assert analysed(db) == 5


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_clap_run_leaves_a_consistent_store(
    tmp_path, audio, clap, sig
):
    cache = tmp_path / "cache"
    env, db = synth.library_of_copies(
        tmp_path, audio.a120_wav, 12,
        f"{{clap: {{model: '{clap.model_dir}', cache_dir: '{cache}', "
        "jobs: 1, batch_size: 1, windows: 3}}",
    )  # fmt: skip
    run, out = interrupt_once_one_is_stored("clap", env, db, "clap_model", sig)
    if sig != signal.SIGKILL:  # one line, the shell's exit status
        assert run.returncode == 128 + sig
        (line,) = [x for x in out.splitlines() if x.startswith("stopped by")]
        assert "embedded and stored; run the command again" in line
    kept = embedded(db)
    assert 1 <= kept < 12

    (store,) = stores(cache / library_name(db))
    assert not list(cache.rglob("*.tmp"))
    # every stored item has its vector; the index holds every vector
    assert set(store.index().ids.tolist()) == set(store.disk_ids().tolist())
    assert len(store.disk_ids()) >= kept

    again = subprocess.run(
        [BEET, "clap"], env=env, capture_output=True, text=True, check=True
    )
    assert f"({kept} already embedded)" in again.stderr
    assert embedded(db) == 12
    assert len(store.index()) == 12


def busy_worker(pgid: int, cpu_seconds: float) -> bool:
    """Whether a process of group ``pgid`` other than its leader has used
    ``cpu_seconds`` of CPU (a worker deep in an analysis)."""
    ticks = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        pid = int(stat.parent.name)
        # after the name: state, ppid, pgrp, ... utime (12th), stime
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        if int(fields[2]) == pgid and pid != pgid and cpu >= cpu_seconds:
            return True
    return False


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_killed_run_leaves_no_worker_computing(tmp_path: Path) -> None:
    # a WavPack file whose middle is garbage: MusicExtractor spins on it
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    with synth.repeatable():
        tune = synth.make_wav(tmp_path / "tune.wav", 120, "Am", 14.5)
    clean = tmp_path / "clean.wv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", tune, "-ac", "1", "-ar", "22050",
         "-c:a", "wavpack", clean],
        check=True,
    )  # fmt: skip
    synth.overwrite(
        clean, incoming / "garbled.wv", 1 / 3, clean.stat().st_size // 3,
        random.Random(24).randbytes(4096),
    )  # fmt: skip
    env, _ = synth.import_library(
        # music: MusicExtractor spins on the garbled file (stored refuses it
        # as truncated at once)
        tmp_path,
        incoming,
        "audiofeatures: {essentia: {jobs: 1, profile: music}}\n",
    )
    run = subprocess.Popen(
        [BEET, "essentia"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not busy_worker(run.pid, 2.0):
            assert run.poll() is None, "beet essentia ended"
            assert time.monotonic() < deadline, "no worker got busy"
            time.sleep(0.2)
        run.kill()
        run.wait()
        assert synth.group_has_exited(run.pid, 5), "a worker outlived beet"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
