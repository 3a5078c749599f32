"""``beet essentia`` as a new user meets it, on a real on-disk library:
album mode, the core fields, profile switches, ``--dump`` and what the
terminal shows."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from beets.exceptions import UserError
from beets.library import Item
from mediafile import MediaFile

from tests import synth
from tests.conftest import Audio
from tests.helpers import AudioFeaturesHelper
from tests.synth import BEET


def own_fields(item: Item) -> dict[str, Any]:
    """Everything the track itself holds (never its album's values)."""
    item.load()
    return {
        k: item.get(k, with_album=False) for k in item.keys(with_album=False)
    }


def titles(lib: Any, *query: str) -> list[str]:
    return sorted(i.title for i in lib.items(list(query)))


class TestAlbumMode(AudioFeaturesHelper):
    def album_of_three(self) -> tuple[Any, list[Item]]:
        tracks = [
            self.add_track(self.audio.a120_flac, title="fast"),
            self.add_track(self.audio.c90_mp3, title="slow"),
            self.add_track(self.audio.a120_mp3, title="fast too"),
        ]
        return self.lib.add_album(tracks), tracks

    def test_album_values_never_touch_the_tracks(self):
        album, tracks = self.album_of_three()
        self.essentia()
        before = [own_fields(t) for t in tracks]
        assert before[1]["essentia_bpm"] == pytest.approx(90, abs=1)

        self.essentia("-a")

        assert [own_fields(t) for t in tracks] == before  # every field
        album.load()
        assert album["essentia_album_bpm"] == pytest.approx(120, abs=1)
        assert album["essentia_album_key"] == "Am"  # two of three
        assert "essentia_bpm" not in album
        assert [
            a.id for a in self.lib.albums("essentia_album_bpm:110..130")
        ] == [album.id]
        assert titles(self.lib, "essentia_bpm:80..100") == ["slow"]

    def test_a_new_track_of_an_analysed_album_is_not_analysed(self):
        album, _tracks = self.album_of_three()
        self.essentia("-a")
        late = self.add_track(self.audio.c90_mp3, title="late")
        late.album_id = album.id
        late.store()

        # its album's values are no track values of its own
        assert titles(self.lib, "essentia_bpm:0..1000") == [
            "fast", "fast too", "slow",
        ]  # fmt: skip
        assert titles(self.lib, "essentia_key:Am") == ["fast", "fast too"]
        out = self.run_with_output("essentia", "-p")
        assert "would analyse 1 of 4 tracks" in out
        assert "late" in out
        self.essentia("-a")
        assert own_fields(late)["essentia_bpm"] == pytest.approx(90, abs=1)

    def test_the_summary_names_the_albums(self, caplog):
        album, _tracks = self.album_of_three()
        album.albumartist, album.album = "Someone", "Album One"
        album.store()
        with caplog.at_level(logging.INFO):
            self.essentia("-a", "--profile", "rhythm")
        assert "stored album values of 1 album: Someone - Album One" in (
            caplog.text
        )


def test_a_library_damaged_by_0_1_0_is_repaired_when_opened(
    tmp_path: Path, audio: Audio
):
    # As 0.1.0's -a left it: the album holds its values under the track
    # names, and inheritance wrote them over every track's own values.
    env, db = synth.library_of_copies(tmp_path, audio.a120_wav, 3, "{}")
    damaged = {"essentia_bpm": "124.1", "essentia_key": "Am",
               "essentia_analyzed": "1700000000.0"}  # fmt: skip
    with sqlite3.connect(db) as conn:
        (album,) = conn.execute("SELECT id FROM albums").fetchone()
        items = [row[0] for row in conn.execute("SELECT id FROM items")]
        for key, value in damaged.items():
            conn.execute(
                "INSERT INTO album_attributes (entity_id, key, value) "
                "VALUES (?, ?, ?)", (album, key, value),
            )  # fmt: skip
            for item in items:
                conn.execute(
                    "INSERT INTO item_attributes (entity_id, key, value) "
                    "VALUES (?, ?, ?)", (item, key, value),
                )  # fmt: skip

    # the import above ran this version; 0.1.0 kept no record of it
    (Path(env["BEETSDIR"]) / "audiofeatures" / "repaired").unlink()
    first = subprocess.run(
        [BEET, "ls", "-a", "-f", "$essentia_album_bpm"], env=env,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert first.stdout.strip() == "124.10"
    assert "moved the album values of 1 album" in first.stderr
    assert "3 tracks that 0.1.0's -a had overwritten" in first.stderr
    with sqlite3.connect(db) as conn:
        keys = {r[0] for r in conn.execute("SELECT key FROM album_attributes")}
    assert keys >= {"essentia_album_bpm", "essentia_album_key"}
    assert not keys & {"essentia_bpm", "essentia_key", "essentia_analyzed"}

    again = subprocess.run(
        [BEET, "essentia", "-p"], env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    assert "moved" not in again.stderr  # once
    assert "would analyse 3 of 3 tracks" in again.stdout


class TestCoreFields(AudioFeaturesHelper):
    def test_empty_core_fields_are_filled_and_others_kept(self, caplog):
        empty = self.add_track(self.audio.a120_flac, title="empty", bpm=0)
        tagged = self.add_track(
            self.audio.c90_mp3, title="tagged", bpm=93, initial_key="Dm"
        )
        with caplog.at_level(logging.INFO):
            self.essentia()
        assert "core fields filled: 2" in caplog.text

        empty.load()
        assert (empty.bpm, empty.initial_key) == (120, "Am")
        assert titles(self.lib, "bpm:118..122") == ["empty"]
        assert titles(self.lib, "initial_key:Am") == ["empty"]
        assert MediaFile(empty.path).bpm in (0, None)  # no -w: file alone
        tagged.load()
        assert (tagged.bpm, tagged.initial_key) == (93, "Dm")

    def test_force_overwrites_and_w_writes_the_file(self):
        item = self.add_track(self.audio.c90_mp3, title="t", bpm=93)
        self.essentia("-f", "-w")
        item.load()
        assert item.bpm == 90
        assert MediaFile(item.path).bpm == 90

    def test_the_setting_turns_it_off(self):
        self.config["audiofeatures"]["essentia"]["fill_core_fields"] = False
        item = self.add_track(self.audio.a120_flac, bpm=0)
        self.essentia()
        item.load()
        assert item.bpm == 0


class TestProfileSwitches(AudioFeaturesHelper):
    def test_each_group_says_what_computed_it(self):
        item = self.add_track(self.audio.a120_flac, title="t")
        self.essentia()
        loudness = own_fields(item)["essentia_loudness"]

        self.essentia("--profile", "rhythm,tonal", "-f")
        values = own_fields(item)
        assert values["essentia_loudness"] == loudness  # not produced: kept
        assert values["essentia_lowlevel_method"].startswith("stored, essentia")
        assert values["essentia_rhythm_method"].startswith("light, essentia")
        assert values["essentia_tonal_method"].startswith(
            "light, key KeyExtractor bgate"
        )
        assert values["essentia_profile"] == "rhythm,tonal"

        out = self.run_with_output("essentia", "-p")
        assert "[rhythm, tonal, lowlevel: essentia_bpm" in out
        self.essentia()
        values = own_fields(item)
        assert all(
            values[f"essentia_{g}_method"].startswith("stored")
            for g in ("rhythm", "tonal", "lowlevel")
        )

    def test_current_groups_are_not_computed_again(self):
        item = self.add_track(self.audio.a120_flac, title="t")
        self.essentia("--profile", "rhythm")
        rhythm = own_fields(item)["essentia_rhythm_method"]

        out = self.run_with_output(
            "essentia", "-p", "--profile", "rhythm,tonal"
        )
        assert "[tonal: essentia_key" in out
        self.essentia("--profile", "rhythm,tonal")
        values = own_fields(item)
        assert values["essentia_key"] == "Am"
        assert values["essentia_rhythm_method"] == rhythm

    def test_a_new_key_profile_makes_the_key_stale(self):
        self.add_track(self.audio.a120_flac, title="t")
        self.essentia("--profile", "tonal")
        self.config["audiofeatures"]["essentia"]["key_profile"] = "krumhansl"
        out = self.run_with_output("essentia", "-p", "--profile", "tonal")
        assert "would analyse 1 of 1 track" in out


class TestDump(AudioFeaturesHelper):
    def test_analysed_tracks_are_dumped_too(self, tmp_path, caplog):
        item = self.add_track(self.audio.a120_flac, title="done")
        self.essentia("--profile", "rhythm")
        analysed = own_fields(item)["essentia_analyzed"]

        self.essentia("--profile", "rhythm", "--dump", str(tmp_path))
        assert (tmp_path / "done.flac.json").is_file()
        assert own_fields(item)["essentia_bpm"] == pytest.approx(120, abs=1)
        assert own_fields(item)["essentia_analyzed"] > analysed
        with caplog.at_level(logging.INFO):
            self.essentia("--profile", "rhythm", "--dump", str(tmp_path))
        assert "nothing to analyse" in caplog.text  # the dump is there

    def test_light_profiles_dump_essentias_layout(self, tmp_path):
        self.add_track(self.audio.a120_flac, title="light")
        self.essentia(
            "--profile", "rhythm,tonal,lowlevel", "--dump", str(tmp_path)
        )
        dump = json.loads((tmp_path / "light.flac.json").read_text())
        rhythm, tonal, lowlevel = (
            dump["rhythm"],
            dump["tonal"],
            dump["lowlevel"],
        )
        assert rhythm["bpm"] == pytest.approx(120, abs=1)
        assert len(rhythm["beats_position"]) == rhythm["beats_count"] > 20
        assert rhythm["beats_position"] == sorted(rhythm["beats_position"])
        assert len(rhythm["onset_times"]) > 10
        assert tonal["key_bgate"]["key"] == "A"
        assert tonal["key_bgate"]["scale"] == "minor"
        assert len(tonal["hpcp"]["mean"]) == 36
        assert len(lowlevel["mfcc"]["mean"]) == 13
        assert lowlevel["spectral_centroid"]["mean"] > 0
        assert "essentia_bpm" not in json.dumps(dump)

    def test_a_dump_that_cannot_be_written_costs_only_the_dump(
        self, tmp_path, caplog
    ):
        item = self.add_track(self.audio.a120_flac, title="t")
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        with (
            caplog.at_level(logging.INFO),
            pytest.raises(UserError, match="1 dump could not be written"),
        ):
            self.essentia("--profile", "rhythm", "--dump", str(blocker))
        assert "could not write the dump" in caplog.text
        assert str(blocker) in caplog.text
        assert own_fields(item)["essentia_bpm"] == pytest.approx(120, abs=1)

    def test_files_outside_the_library_keep_their_absolute_path(self, tmp_path):
        outside = tmp_path / "elsewhere" / "x.flac"
        outside.parent.mkdir()
        outside.write_bytes(self.audio.a120_flac.read_bytes())
        item = Item.from_path(outside)
        item.add(self.lib)
        dump = tmp_path / "dump"
        self.essentia("--profile", "rhythm", "--dump", str(dump))
        assert (dump / f"{str(outside).lstrip('/')}.json").is_file()


def run_beet(
    env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BEET, *args], env=env, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_the_terminal_shows_no_library_noise(tmp_path: Path, audio: Audio):
    incoming = tmp_path / "incoming"
    # Essentia warns "Danceability: Signal is too short" on its stdout
    synth.make_track(incoming / "short.wav", 120, "Am", seconds=0.3)
    synth.make_track(incoming / "one.wav", 120, "Am", seconds=8)
    env, _db = synth.import_library(
        tmp_path, incoming, "audiofeatures: {essentia: {jobs: 1}}\n"
    )
    run = run_beet(env, "essentia", "--profile", "rhythm")
    shown = run.stdout + run.stderr
    assert "WARNING" not in shown
    assert "analysing 2 tracks with profile rhythm" in shown
    assert "tracks/min" in shown

    again = run_beet(env, "essentia", "--profile", "rhythm")
    assert again.stdout + again.stderr == (
        "audiofeatures: nothing to analyse: 2 tracks already current for "
        "profile rhythm\n"
    )
    # the beets log has it, at debug level, with the file's name
    verbose = run_beet(env, "-v", "essentia", "--profile", "rhythm", "-f")
    (line,) = [
        x for x in verbose.stderr.splitlines() if "Signal is too short" in x
    ]
    assert ".wav: [ WARNING  ] Danceability" in line


@pytest.mark.parametrize(
    ("sig", "code", "by"),
    [
        (signal.SIGINT, 130, "Ctrl-C"),
        (signal.SIGTERM, 143, "SIGTERM"),
        (signal.SIGHUP, 129, "SIGHUP"),
    ],
)
def test_a_stopped_run_says_so_and_exits_with_the_signal(
    tmp_path: Path, audio: Audio, sig: int, code: int, by: str
):
    env, db = synth.library_of_copies(
        tmp_path, audio.a120_wav, 6, "{essentia: {jobs: 1}}"
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env["TMPDIR"] = str(scratch)
    run = subprocess.Popen(
        [BEET, "essentia"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            done = conn.execute(
                "SELECT COUNT(*) FROM item_attributes "
                "WHERE key = 'essentia_analyzed'"
            ).fetchone()[0]
        if done:
            break
        time.sleep(0.05)
    os.killpg(run.pid, sig)  # as a terminal does: the whole group
    stdout, stderr = run.communicate(timeout=60)

    assert run.returncode == code
    assert "Traceback" not in stderr
    (line,) = [x for x in stdout.splitlines() if x.startswith("stopped")]
    assert line.startswith(f"stopped by {by}: ")
    assert "run the command again to resume" in line
    assert synth.group_has_exited(run.pid, 10), "a worker is still running"
    assert list(scratch.iterdir()) == []  # no scratch folder, no WAV
    resumed = run_beet(env, "essentia")
    assert resumed.returncode == 0
    assert "already analysed" in resumed.stderr


class TestKeyMethod(AudioFeaturesHelper):
    """The stored key is KeyExtractor's (``tonal``), or the more confident
    of KeyExtractor's and the key of MusicExtractor's HPCP (``music``); a
    key weaker than ``min_key_strength`` is not stored, and counted."""

    @staticmethod
    def bare_key(path: Path, tuning: float | None = None) -> tuple[str, float]:
        """KeyExtractor as the docs say the plugin runs it: on the
        track's tuning (by default the light profile's estimate)."""
        import essentia.standard as es

        from beets_audiofeatures.essentia.tuning import estimate_tuning

        mono = es.MonoLoader(filename=str(path), sampleRate=44100)()
        if tuning is None:
            tuning = estimate_tuning(mono)
        key, scale, strength = es.KeyExtractor(
            profileType="bgate", frameSize=8192, hopSize=4096,
            tuningFrequency=tuning,
        )(mono)  # fmt: skip
        return f"{key}{'m' if scale == 'minor' else ''}", strength

    @staticmethod
    def hpcp_key(path: Path) -> tuple[str, float]:
        import essentia.standard as es

        _pool, frames = es.MusicExtractor()(str(path))
        key, scale, strength, _ = es.Key(
            profileType="edma", pcpSize=36, numHarmonics=4, slope=0.6,
            usePolyphony=True, useThreeChords=True,
        )(frames["tonal.hpcp"].mean(axis=0))  # fmt: skip
        return f"{key}{'m' if scale == 'minor' else ''}", strength

    @pytest.mark.parametrize("profile", ["music", "tonal"])
    def test_the_key_and_its_method_are_recorded(self, profile):
        item = self.add_track(self.audio.c90_mp3, title="c")
        self.essentia("--profile", profile)
        values = own_fields(item)
        path = Path(os.fsdecode(item.path))
        key, strength = self.bare_key(path, values["essentia_tuning"])
        if profile == "music":
            other, other_strength = self.hpcp_key(path)
            if other_strength / 0.759 > strength / 0.888:
                key, strength = other, other_strength
        assert values["essentia_key"] == key == "C"
        assert values["essentia_key_strength"] == pytest.approx(
            strength, abs=1e-3
        )
        method = values["essentia_tonal_method"]
        assert method.startswith(
            f"{'music' if profile == 'music' else 'light'}, key KeyExtractor "
            "bgate 8192/4096"
        )
        assert ("the extractor's HPCP" in method) == (profile == "music")
        assert "from strength 0.6" in method
        assert values["initial_key"] == "C"  # the core field, filled

    def test_a_weak_key_is_left_empty_and_counted(self, caplog):
        strong = self.add_track(self.audio.c90_mp3, title="strong")
        weak = self.add_track(self.audio.a120_flac, title="weak")
        _, strength = self.bare_key(Path(os.fsdecode(strong.path)))
        _, weak_strength = self.bare_key(Path(os.fsdecode(weak.path)))
        assert weak_strength < strength
        threshold = round((strength + weak_strength) / 2, 3)
        settings = self.config["audiofeatures"]["essentia"]
        settings["min_key_strength"] = threshold
        with caplog.at_level(logging.INFO):
            self.essentia("--profile", "rhythm,tonal")
        assert "keys too weak to store: 1" in caplog.text
        values = own_fields(weak)
        assert "essentia_key" not in values
        assert "initial_key" not in values or not values["initial_key"]
        assert values["essentia_key_strength"] == pytest.approx(
            weak_strength, abs=1e-3
        )
        assert values["essentia_bpm"] == pytest.approx(120, abs=1)
        assert own_fields(strong)["essentia_key"] == "C"
        assert titles(self.lib, "essentia_key::.") == ["strong"]

        # another threshold is another method: the key is stale, no -f
        settings["min_key_strength"] = 0
        out = self.run_with_output(
            "essentia", "-p", "--profile", "rhythm,tonal"
        )
        assert "would analyse 2 of 2 tracks" in out
        self.essentia("--profile", "rhythm,tonal")
        assert own_fields(weak)["essentia_key"] == "Am"
