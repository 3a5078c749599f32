"""Crashes, concurrency, full disks and hostile files: what they may
cost, and what they must not."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from beets.exceptions import UserError
from beets.library import Library

from beets_audiofeatures import atomic_files
from beets_audiofeatures.clap import store as store_module
from beets_audiofeatures.clap.store import EmbeddingStore, stores
from beets_audiofeatures.essentia.profiles import ProfileError, resolve_profile
from beetsplug.audiofeatures.analysis import essentia as essentia_analysis
from beetsplug.audiofeatures.library_query import (
    UID,
    claimed_uid,
    library_name,
    source_key,
)
from tests import synth
from tests.helpers import ClapHelper
from tests.reliability.crashing import CrashingAnalyzer
from tests.reliability.mounts import fill, tmpfs
from tests.synth import BEET


class TestWorkerCrash(ClapHelper):
    def test_a_segfault_on_one_file_costs_that_file_only(
        self, monkeypatch, caplog
    ):
        monkeypatch.setattr(essentia_analysis, "Analyzer", CrashingAnalyzer)
        good = [
            self.add_track(self.audio.a120_flac, title=f"ok{n}")
            for n in range(3)
        ]
        crash = self.add_track(self.audio.a120_flac, title="crash")
        with (
            caplog.at_level(logging.INFO),
            pytest.raises(UserError, match="1 of 4 tracks"),
        ):
            self.essentia("--profile", "rhythm")
        # retried once through ffmpeg in a fresh worker, then given up
        assert (
            f"{os.fsdecode(crash.path)}: the worker process crashed (killed by SIGSEGV)"
            in caplog.text
        )
        for item in good:
            item.load()
            assert "essentia_bpm" in item
        crash.load()
        assert "essentia_analyzed" not in crash


class TestFullDisk(ClapHelper):
    def test_a_full_cache_disk_stops_clap_with_one_line(self, monkeypatch):
        items = [
            self.add_track(self.audio.a120_flac, title=f"t{n}")
            for n in range(3)
        ]
        self.clap("title:t0")  # one vector stored before the disk fills up
        real_replace = os.replace

        def full(source, target, *args, **kwargs):
            if str(target).endswith(".npy"):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_replace(source, target, *args, **kwargs)

        monkeypatch.setattr(os, "replace", full)
        with pytest.raises(
            UserError, match=r"cannot write to the CLAP cache .*No space left"
        ):
            self.clap()
        monkeypatch.undo()
        store = self.store()
        assert not list(store.folder.rglob("*.tmp"))  # nothing half-written
        assert store.index().ids.tolist() == [items[0].id]
        for item in items[1:]:
            item.load()
            assert "clap_model" not in item
        self.clap()  # with room again, the rest follows
        assert len(store.index()) == 3

    def test_a_read_only_cache_is_one_line(self, monkeypatch):
        self.add_track(self.audio.a120_flac, title="t")

        def read_only(self, *args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(Path, "mkdir", read_only)
        with pytest.raises(
            UserError, match=r"cannot create the CLAP cache .*Read-only"
        ):
            self.clap()


def test_a_full_library_disk_stops_essentia_with_one_line(
    tmp_path: Path, audio
):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for n in range(2):
        synth.encode(audio.a120_wav, incoming / f"{n}.flac")
    env, db = synth.import_library(tmp_path, incoming)
    with tmpfs(tmp_path / "small", "1m") as disk:
        moved = disk / "library.db"
        moved.write_bytes(db.read_bytes())
        config = Path(env["BEETSDIR"]) / "config.yaml"
        config.write_text(config.read_text().replace(str(db), str(moved)))
        filler = fill(disk)
        run = subprocess.run(
            [BEET, "essentia", "--profile", "rhythm"], env=env,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert run.returncode == 1
        assert "Traceback" not in run.stderr
        (line,) = [x for x in run.stderr.splitlines() if x.startswith("error:")]
        assert "library database" in line
        assert "full" in line
        filler.unlink()  # room again: the next run stores everything
        subprocess.run(
            [BEET, "essentia", "--profile", "rhythm"], env=env, check=True,
            capture_output=True, timeout=300,
        )  # fmt: skip
        with sqlite3.connect(moved) as con:
            (stored,) = con.execute(
                "SELECT count(*) FROM item_attributes WHERE key = 'essentia_bpm'"
            ).fetchone()
        assert stored == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
class TestUnreadable(ClapHelper):
    def test_a_file_without_read_permission_fails_alone(self, caplog):
        good = self.add_track(self.audio.a120_flac, title="good")
        locked = self.add_track(self.audio.a120_mp3, title="locked")
        os.chmod(locked.path, 0)
        with (
            caplog.at_level(logging.INFO),
            pytest.raises(UserError, match="1 of 2"),
        ):
            self.clap()
        assert "Permission denied" in caplog.text
        good.load()
        assert "clap_model" in good


@pytest.fixture
def shared_library(
    tmp_path: Path, audio, clap
) -> tuple[dict[str, str], Path, Path]:
    cache = tmp_path / "cache"
    env, db = synth.library_of_copies(
        tmp_path, audio.a120_wav, 8,
        f"{{essentia: {{jobs: 1, profile: rhythm}}, clap: {{model: "
        f"'{clap.model_dir}', cache_dir: '{cache}', jobs: 1, windows: 1}}}}",
    )  # fmt: skip
    return env, db, cache


@pytest.mark.parametrize("command", ["clap", "essentia"])
def test_two_runs_at_once_on_overlapping_queries(shared_library, command):
    env, db, cache = shared_library
    runs = [
        subprocess.Popen(
            [BEET, command, *query],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for query in ([], ["path::[0-5]\\.flac$"])
    ]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err.decode()
        assert b"Traceback" not in err
    field = "clap_model" if command == "clap" else "essentia_analyzed"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        count = conn.execute(
            "SELECT COUNT(*) FROM item_attributes WHERE key = ?", (field,)
        ).fetchone()[0]
    assert count == 8
    if command == "clap":
        (store,) = stores(cache / library_name(db))
        assert len(store.index()) == 8
        assert not list(cache.rglob("*.tmp"))


class TestTwoRunsOnOneTrack(ClapHelper):
    def test_two_runs_storing_a_track_at_once_leave_one_current_vector(
        self, monkeypatch
    ):
        """Another run stores the track's vector while this one does (its
        file written, the old ones not yet removed): the track ends with
        one vector, current for the uid the library holds. (Two new uids,
        two keys: each run removed the other's file, and none was left.)"""
        item = self.add_track(self.audio.a120_flac, title="both")
        save = atomic_files.atomic_save
        other: list[threading.Thread] = []

        def save_and_let_the_other_run_in(path, array):
            save(path, array)
            if not other:
                run = threading.Thread(
                    target=self._other_run, args=(item.id, len(array))
                )
                other.append(run)
                run.start()
                run.join(timeout=2)  # it waits for the store while locked

        monkeypatch.setattr(
            store_module, "atomic_save", save_and_let_the_other_run_in
        )
        self.clap()
        other[0].join()
        item.load()
        store = self.store()
        assert store.disk_keys() == {item.id: source_key(item)}
        assert list(store.index().ids) == [item.id]

    def _other_run(self, track: int, size: int) -> None:
        """What another ``beet clap`` does to store the track's vector."""
        lib = Library(os.fsdecode(self.lib.path))
        store = self.store()
        with store.writing():
            theirs = lib.get_item(track)
            assert theirs is not None
            theirs[UID] = claimed_uid(lib, theirs)
            key = source_key(theirs)
            assert key is not None
            store.put(track, np.ones(size, np.float32), key)
            theirs.store()
        lib._close()


class TestHostileInput:
    def test_profile_yaml_cannot_run_code(self, tmp_path):
        marker = tmp_path / "pwned"
        path = tmp_path / "evil.yaml"
        path.write_text(
            f"endTime: !!python/object/apply:os.system ['touch {marker}']\n"
        )
        with pytest.raises(ProfileError):
            resolve_profile(str(path))
        assert not marker.exists()
        with pytest.raises(yaml.YAMLError):  # what a full loader would run
            yaml.safe_load(path.read_text())

    def test_cache_paths_come_from_item_ids_only(self, tmp_path):
        store = EmbeddingStore(tmp_path / "cache", "m-1").open({"model": "m"})
        for bad in (-1, "../../etc/passwd", "1/../../x"):
            with pytest.raises(ValueError):
                store.vector_path(bad)  # type: ignore[arg-type]
        path = store.vector_path(1234567)
        assert path.resolve().is_relative_to((tmp_path / "cache").resolve())
        store.put(7, np.ones(4, np.float32) / 2)
        assert store.discard([7]) == 1

    def test_no_shell_between_beets_and_ffmpeg(self, tmp_path, audio):
        from beets_audiofeatures.transcode import transcode_to_wav

        odd = tmp_path / "-$(touch pwned) `x` 'q' \"d\".flac"
        odd.write_bytes(audio.a120_flac.read_bytes())
        out = tmp_path / "out.wav"
        transcode_to_wav(os.fsencode(odd), out, seconds=2)
        assert out.stat().st_size > 44_100 * 4
        assert not (tmp_path / "pwned").exists()
        assert not Path("pwned").exists()
