"""No litter: the temp folder is the same before and after a run of
``beet essentia`` (local, on a ``local:N`` cluster, stopped by a signal,
killed outright) and a ``beet clapweb`` that served a transcoded copy,
whichever signal stopped it. Each run gets a fresh temp folder (TMPDIR,
which its workers and decoders inherit)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from beets.exceptions import UserError

from beetsplug.audiofeatures.analysis import essentia as essentia_analysis
from tests import synth
from tests.conftest import Audio, ClapAssets
from tests.dying_analyzer import DyingAfterTranscode
from tests.helpers import AudioFeaturesHelper
from tests.reliability.test_interruption import (
    analysed,
    interrupt_once_one_is_stored,
)


def contents(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def essentia_library(
    tmp_path: Path, audio: Audio
) -> tuple[dict[str, str], Path, Path]:
    """Four tracks (one in Opus, which goes through a transcoded WAV),
    an environment whose temp folder is fresh, the database and the
    temp folder."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for n in range(3):
        synth.encode(audio.a120_wav, incoming / f"{n}.flac")
    synth.encode(audio.a120_wav, incoming / "3.opus")
    env, db = synth.import_library(
        tmp_path, incoming,
        "audiofeatures: {essentia: {jobs: 2, profile: rhythm}}\n",
    )  # fmt: skip
    temp = tmp_path / "temp"
    temp.mkdir()
    env["TMPDIR"] = str(temp)
    return env, db, temp


def beet(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [synth.BEET, *args], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def test_a_local_run_leaves_the_temp_folder_as_it_was(essentia_library):
    env, db, temp = essentia_library
    beet(env, "essentia")
    assert analysed(db) == 4
    assert contents(temp) == []


def test_a_cluster_run_leaves_the_temp_folder_as_it_was(essentia_library):
    env, db, temp = essentia_library
    beet(env, "essentia", "--cluster", "local:2")
    assert analysed(db) == 4
    assert contents(temp) == []


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name
)
def test_a_stopped_run_leaves_the_temp_folder_as_it_was(essentia_library, sig):
    env, db, temp = essentia_library
    run, _ = interrupt_once_one_is_stored(
        "essentia", env, db, "essentia_analyzed", sig
    )
    assert run.returncode == 128 + sig
    assert synth.group_has_exited(run.pid, 30)
    assert contents(temp) == []


def test_the_next_run_removes_what_a_killed_run_left(essentia_library):
    env, db, temp = essentia_library
    run, _ = interrupt_once_one_is_stored(
        "essentia", env, db, "essentia_analyzed", signal.SIGKILL
    )
    assert synth.group_has_exited(run.pid, 30)
    assert contents(temp), "a killed run cannot clean up"
    # someone else's folder of the same kind, alive, is left alone
    alive = temp / f"beets-audiofeatures-{os.getpid()}-essentia-x"
    alive.mkdir()
    beet(env, "essentia")
    assert analysed(db) == 4
    assert contents(temp) == [alive.name]


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name
)
def test_clapweb_stopped_by_a_signal_removes_its_transcoded_copies(
    tmp_path: Path, audio: Audio, clap: ClapAssets, sig: signal.Signals
) -> None:
    pytest.importorskip("flask", reason="the [web] extra is not installed")
    from tests.test_web_command import first_answer, start_clapweb

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", audio.a120_wav,
         "-t", "3", "-c:a", "pcm_s16be", incoming / "0.aiff"],
        check=True,
    )  # fmt: skip
    env, _ = synth.import_library(
        tmp_path, incoming,
        f"audiofeatures: {{clap: {{model: {clap.model_dir}, "
        f"cache_dir: {tmp_path / 'cache'}}}}}\n",
    )  # fmt: skip
    env["HF_HUB_OFFLINE"] = "1"
    temp = tmp_path / "temp"
    temp.mkdir()
    env["TMPDIR"] = str(temp)
    server, base = start_clapweb(env)
    try:
        status, data = first_answer(server, base + "/audio/1")
        assert status == 200
        assert data[:4] == b"fLaC"  # AIFF, copied to FLAC for browsers
        assert [p.suffix for p in temp.rglob("*.flac")] == [".flac"]
    finally:
        server.send_signal(sig)
        output = server.communicate(timeout=30)[0].decode()
    assert "Traceback" not in output
    assert contents(temp) == []
    assert server.returncode == 128 + sig  # as every command stopped so


def test_an_earlier_versions_empty_worker_folders_are_removed(tmp_path):
    from beets_audiofeatures.scratch import sweep_orphans

    two_hours_ago = time.time() - 2 * 3600
    old_empty, old_full, new_empty = (
        tmp_path / f"beets-audiofeatures-{n:032x}" for n in range(3)
    )
    for folder in (old_empty, old_full, new_empty):
        folder.mkdir()
    (old_full / "track.wav").write_bytes(b"RIFF")
    for folder in (old_empty, old_full):
        os.utime(folder, (two_hours_ago, two_hours_ago))
    sweep_orphans(tmp_path)
    assert contents(tmp_path) == sorted(
        [old_full.name, f"{old_full.name}/track.wav", new_empty.name]
    )


@pytest.fixture
def worker_with_own_temp(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, Path]]:
    """A Dask scheduler and one worker (``dask worker``, with its nanny)
    whose temp folder is fresh."""
    from tests.test_cluster import Cluster

    folder = tmp_path_factory.mktemp("dask-litter")
    temp = folder / "temp"
    temp.mkdir()
    running = Cluster(folder)
    try:
        running.worker("w1", TMPDIR=str(temp))
        running.wait_for(1)
        yield running, temp
    finally:
        running.stop()


class TestClusterWorker(AudioFeaturesHelper):
    def test_a_killed_worker_leaves_no_transcoded_audio(
        self, worker_with_own_temp, monkeypatch
    ):
        cluster, temp = worker_with_own_temp
        monkeypatch.setattr(essentia_analysis, "Analyzer", DyingAfterTranscode)
        self.add_track(self.audio.a120_flac, title="fine")
        self.add_track(self.audio.opus, title="crash")
        with pytest.raises(UserError, match="1 of 2 tracks"):
            self.essentia("--cluster", cluster.address, "--profile", "rhythm")
        # The nanny starts a new worker, which purges the dead one's
        # directory, the WAV with it.
        cluster.wait_for(1)
        deadline = time.monotonic() + 30
        while list(cluster.folder.rglob("*.wav")):
            assert time.monotonic() < deadline, "the WAV stayed"
            time.sleep(0.2)
        assert contents(temp) == []
