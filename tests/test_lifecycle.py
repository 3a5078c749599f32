"""What the plugin stores, through the beets commands that change a
library after it: ``beet update`` (after a tag edit and after new audio),
``beet modify`` clearing a field, ``beet write``, ``beet move``, ``beet
rm`` and a re-import. After each, every value is current and right, or
``-p`` plans it again and says why; nothing is lost silently.

Real files (the same length, so beets' audio columns cannot tell them
apart), a real on-disk library, real Essentia and a tiny real CLAP model.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from beets.library import Item
from mediafile import MediaFile

from beets_audiofeatures.audio_files import (
    AudioCheck,
    FileIdentity,
    audio_digest,
    check_identity,
    file_identity,
)
from beetsplug.audiofeatures.library_query import (
    CLAP_FILE,
    audio_fingerprint,
    item_id,
    source_key,
)
from tests import synth
from tests.helpers import ClapHelper

SECONDS = 8
#: PCM and constant-bitrate formats, where beets' audio columns are the
#: same for any two files of one length; and two where they differ.
SAME_COLUMNS = ("wav", "aiff", "mp3")
FORMATS = (*SAME_COLUMNS, "flac", "ogg")
#: A light profile: the tempo and key, quickly.
PROFILE = "rhythm,tonal"


class Recordings:
    """Two recordings of one length (120 BPM in A minor, 90 BPM in C) in
    each format."""

    def __init__(self, root: Path) -> None:
        old = synth.make_track(root / "old.wav", 120, "Am", seconds=SECONDS)
        new = synth.make_track(root / "new.wav", 90, "C", seconds=SECONDS)
        self.files = {
            ext: (self.encode(old, root / f"old.{ext}"),
                  self.encode(new, root / f"new.{ext}"))
            for ext in FORMATS
        }  # fmt: skip

    @staticmethod
    def encode(source: Path, target: Path) -> Path:
        if target.suffix == ".wav":
            return source
        if target.suffix == ".aiff":
            subprocess.run(
                ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i",
                 str(source), "-c:a", "pcm_s16be", str(target)],
                check=True,
            )  # fmt: skip
            return target
        return synth.encode(source, target)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Recordings:
    return Recordings(tmp_path_factory.mktemp("recordings"))


def replace_audio(item: Item, source: Path) -> None:
    """Another recording at the track's path (a re-rip), newer."""
    path = os.fsdecode(item.path)
    shutil.copyfile(source, path)
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


class Lifecycle(ClapHelper):
    @pytest.fixture(autouse=True)
    def _lifecycle(self, _clap: None, recordings: Recordings) -> None:
        self.recordings = recordings
        self.config["audiofeatures"]["essentia"]["profile"] = PROFILE

    def track(self, ext: str = "flac", title: str = "t") -> Item:
        old, _new = self.recordings.files[ext]
        return self.add_track(old, title=title, artist="synth")

    def plan(self, command: str, *args: str) -> str:
        self.io.getoutput()
        return self.run_with_output(command, "-p", *args)


class TestEssentiaValues(Lifecycle):
    def test_beet_update_after_a_tag_edit_refills_core_fields_without_analysing(
        self, caplog
    ):
        item = self.track()
        self.essentia()
        analysed = self.item(item_id(item))["essentia_analyzed"]
        tags = MediaFile(item.path)  # a tag editor; the plugin wrote none
        tags.title = "edited"
        tags.save()
        self.run_command("update")
        emptied = self.item(item_id(item))
        assert (emptied.bpm, emptied.initial_key) == (0, None)

        plan = self.plan("essentia")
        assert "nothing to analyse" in plan
        assert "would refill 1 track from the stored values" in plan
        assert "refill:  -  - edited [refill bpm, initial_key]" in plan
        assert self.item(item_id(item)).bpm == 0  # -p changes nothing

        with caplog.at_level(logging.INFO):
            self.essentia()
        refilled = self.item(item_id(item))
        assert (refilled.bpm, refilled.initial_key) == (120, "Am")
        assert refilled["essentia_analyzed"] == analysed  # no decode
        assert "core fields refilled: 1" in caplog.text
        assert [i.title for i in self.lib.items("bpm:110..130")] == ["edited"]
        assert self.plan("essentia").startswith("nothing to analyse")

    def test_a_cleared_field_is_analysed_again_and_the_plan_says_why(self):
        item = self.track()
        self.essentia()
        self.run_command("modify", "-y", "essentia_bpm!")
        assert "essentia_bpm" not in self.item(item_id(item))

        plan = self.plan("essentia")
        assert "would analyse 1 of 1 track" in plan
        assert "(essentia_bpm missing)" in plan
        self.essentia()
        assert self.item(item_id(item))["essentia_bpm"] == pytest.approx(
            120, abs=1
        )

    def test_a_key_too_weak_to_store_is_not_analysed_again(self):
        self.config["audiofeatures"]["essentia"]["min_key_strength"] = 0.99
        item = self.track()
        self.essentia()
        weak = self.item(item_id(item))
        assert "essentia_key" not in weak
        assert weak["essentia_unmeasured"] == "essentia_key"

        assert self.plan("essentia").startswith("nothing to analyse")

    @pytest.mark.parametrize("ext", FORMATS)
    def test_new_audio_of_the_same_length_is_analysed_again(self, ext):
        item = self.track(ext)
        self.essentia()
        assert self.item(item_id(item))["essentia_bpm"] == pytest.approx(
            120, abs=1
        )
        replace_audio(item, self.recordings.files[ext][1])
        self.run_command("update")

        plan = self.plan("essentia")
        assert "would analyse 1 of 1 track" in plan
        assert "(new audio)" in plan
        self.essentia()
        renewed = self.item(item_id(item))
        assert renewed["essentia_bpm"] == pytest.approx(90, abs=1)
        # What a track that always had the new audio gets (the key of the
        # synthetic C track, hi-hat noise and all, is C or F by session).
        fresh = self.add_track(self.recordings.files[ext][1], title="fresh")
        self.essentia()
        fresh = self.item(item_id(fresh))
        for name in ("essentia_bpm", "essentia_key", "essentia_key_strength"):
            assert renewed[name] == fresh[name], name
        assert renewed["essentia_key"] != "Am"

    @pytest.mark.parametrize("ext", SAME_COLUMNS)
    def test_new_audio_is_noticed_before_beet_update_too(self, ext):
        item = self.track(ext)
        self.essentia()
        replace_audio(item, self.recordings.files[ext][1])
        assert "(new audio)" in self.plan("essentia")

    @pytest.mark.parametrize("ext", FORMATS)
    def test_a_tag_write_is_not_new_audio(self, ext):
        number = item_id(self.track(ext))
        self.essentia()
        before = os.stat(self.item(number).path)
        self.run_command("modify", "-y", "-w", "title=retitled")
        path = self.item(number).path  # moved to its new name
        assert os.stat(path).st_mtime_ns != before.st_mtime_ns

        assert self.plan("essentia").startswith("nothing to analyse")
        self.essentia()  # records the rewritten file: one stat next time
        recorded = FileIdentity.parse(self.item(number)["essentia_file"])
        assert recorded is not None
        assert recorded.same_file(os.stat(path))

    def test_essentia_w_records_the_file_it_wrote(self):
        item = self.track("mp3")
        self.essentia("-w")
        assert MediaFile(item.path).bpm == 120
        recorded = FileIdentity.parse(self.item(item_id(item))["essentia_file"])
        assert recorded is not None
        assert recorded.same_file(os.stat(item.path))

    def test_values_stored_before_files_were_recorded_stay_current(self):
        item = self.track("wav")
        self.essentia()
        legacy = self.item(item_id(item))
        del legacy["essentia_file"]
        legacy.store()

        assert self.plan("essentia").startswith("nothing to analyse")
        assert "essentia_file" not in self.item(item_id(item))  # -p
        self.essentia()
        assert "essentia_file" in self.item(item_id(item))
        replace_audio(item, self.recordings.files["wav"][1])
        assert "(new audio)" in self.plan("essentia")

    def test_beet_move_keeps_every_value_current(self, tmp_path):
        item = self.track()
        self.essentia()
        self.clap()
        (tmp_path / "elsewhere").mkdir()
        self.run_command("move", "-d", str(tmp_path / "elsewhere"))
        moved = self.item(item_id(item))
        assert os.fsdecode(moved.path).startswith(str(tmp_path))

        assert self.plan("essentia").startswith("nothing to analyse")
        assert self.plan("clap").startswith("nothing to embed")

    def test_a_removed_track_reimported_is_planned_again(self):
        item = self.track()
        self.essentia()
        self.clap()
        path = os.fsdecode(item.path)
        self.run_command("rm", "-f")
        assert os.path.exists(path)  # beet rm without -d keeps the file
        self.run_command("import", "-A", "-q", "-s", "-C", path)
        (again,) = self.lib.items()
        assert item_id(again) != item_id(item) or "clap_uid" not in again

        assert "would analyse 1 of 1 track" in self.plan("essentia")
        assert "would embed 1 of 1 track" in self.plan("clap")

    def test_a_library_reimport_keeps_every_value_current(self):
        item = self.track()
        self.essentia()
        self.clap()
        self.run_command("import", "-L", "-A", "-q")
        again = self.item(item_id(item))
        assert again["essentia_bpm"] == pytest.approx(120, abs=1)

        assert self.plan("essentia").startswith("nothing to analyse")
        assert self.plan("clap").startswith("nothing to embed")


class TestAlbumValues(Lifecycle):
    def test_album_values_follow_their_tracks_new_audio(self):
        item = self.track("wav")
        self.lib.add_album([item])
        self.essentia("-a")
        album = self.lib.albums()[0]
        assert album["essentia_album_bpm"] == pytest.approx(120, abs=1)

        replace_audio(item, self.recordings.files["wav"][1])
        self.run_command("update")
        assert "(new audio)" in self.plan("essentia", "-a")
        self.essentia("-a")
        album = self.lib.albums()[0]
        assert album["essentia_album_bpm"] == pytest.approx(90, abs=1)

    def test_a_cleared_album_value_comes_back(self):
        item = self.track()
        self.lib.add_album([item])
        self.essentia("-a")
        self.run_command("modify", "-a", "-y", "essentia_album_bpm!")
        assert "essentia_album_bpm" not in self.lib.albums()[0]
        self.essentia("-a")
        assert self.lib.albums()[0]["essentia_album_bpm"] == pytest.approx(
            120, abs=1
        )


class TestClapVectors(Lifecycle):
    @pytest.mark.parametrize("ext", FORMATS)
    def test_new_audio_of_the_same_length_is_embedded_again(self, ext):
        item = self.track(ext)
        self.clap()
        number = item_id(item)
        old = self.vector(number)
        old_key = source_key(self.item(number)) or ""
        replace_audio(item, self.recordings.files[ext][1])
        self.run_command("update")

        plan = self.plan("clap")
        assert "would embed 1 of 1 track" in plan
        if ext in SAME_COLUMNS:  # the audio columns did not tell
            assert "[new audio]" in plan
        self.clap()
        assert source_key(self.item(number)) != old_key
        assert not np.allclose(self.vector(number), old)
        assert self.store().get(number, old_key) is None  # not kept

    @pytest.mark.parametrize("ext", SAME_COLUMNS)
    def test_another_models_vector_of_the_old_audio_is_stale(self, ext):
        number = item_id(self.track(ext))
        self.clap()
        replace_audio(self.item(number), self.recordings.files[ext][1])
        settings = self.config["audiofeatures"]["clap"]
        settings["windows"] = 1  # another pipeline: another store
        self.clap()  # embeds the new audio, and records its file
        settings["windows"] = 2

        plan = self.plan("clap")
        assert "would embed 1 of 1 track" in plan
        self.clap()
        self.io.getoutput()
        self.clap("--stats")
        assert "embedded 1, missing 0, stale 0" in self.io.getoutput()

    @pytest.mark.parametrize("ext", FORMATS)
    def test_a_tag_write_keeps_the_vector(self, ext):
        number = item_id(self.track(ext))
        self.clap()
        key = source_key(self.item(number))
        self.run_command("modify", "-y", "-w", "title=retitled")
        self.run_command("modify", "-y", "comments=more", "title=again")
        self.run_command("write")

        assert self.plan("clap").startswith("nothing to embed")
        self.clap()
        assert source_key(self.item(number)) == key
        assert self.vector(number) is not None

    def test_a_vector_embedded_before_files_were_recorded_stays_current(self):
        item = self.track("wav")
        self.clap()
        number = item_id(item)
        vector = self.vector(number)
        legacy = self.item(number)
        del legacy[CLAP_FILE]
        legacy.store()
        self.store().put(number, vector, source_key(legacy) or "")

        assert self.plan("clap").startswith("nothing to embed")
        assert CLAP_FILE not in self.item(number)  # -p changes nothing
        self.clap()
        recorded = self.item(number)[CLAP_FILE]
        assert recorded.endswith(" unkeyed")
        np.testing.assert_array_equal(self.vector(number), vector)
        key = source_key(self.item(number))
        self.clap("-f")  # the same audio keeps the key every store uses
        assert source_key(self.item(number)) == key

        replace_audio(item, self.recordings.files["wav"][1])
        assert "[new audio]" in self.plan("clap")

    def test_clearing_the_uid_makes_the_track_embedded_again(self):
        item = self.track()
        self.clap()
        self.run_command("modify", "-y", "clap_uid!")
        assert "would embed 1 of 1 track" in self.plan("clap")
        self.clap()
        assert self.vector(item_id(item)) is not None

    def test_clap_tags_follow_new_audio(self):
        self.config["audiofeatures"]["clap"]["tags"] = {
            "mood": ["calm", "energetic"]
        }
        self.unload_plugins()  # the tag fields' types come from the config
        self.load_plugins("audiofeatures")
        item = self.track("wav")
        self.clap("--tags")
        number = item_id(item)
        old = self.vector(number)
        assert self.tags(number)
        replace_audio(item, self.recordings.files["wav"][1])
        # The tiny model's labels barely tell the two recordings apart, so
        # the replaced track is held to a track that always had the new
        # audio: the same vector, and the tags made from it.
        fresh = item_id(self.add_track(self.recordings.files["wav"][1]))
        self.clap("--tags")
        assert not np.allclose(self.vector(number), old)
        np.testing.assert_array_equal(self.vector(number), self.vector(fresh))
        assert self.tags(number) == self.tags(fresh)

    def tags(self, number: int) -> dict[str, object]:
        return {
            k: v
            for k, v in self.item(number).items()
            if k.startswith("clap_mood")
        }


class TestFileIdentity:
    """The core's identity of a file, on the recordings."""

    @pytest.mark.parametrize("ext", FORMATS)
    def test_the_digest_tells_recordings_apart_and_ignores_tags(
        self, recordings, tmp_path, ext
    ):
        old, new = recordings.files[ext]
        copy = tmp_path / f"copy.{ext}"
        shutil.copyfile(old, copy)
        before = file_identity(copy)
        tags = MediaFile(copy)
        tags.title = "x" * 5000  # the tags grow past any padding
        tags.save()
        assert audio_digest(copy) == audio_digest(old) != audio_digest(new)
        assert check_identity(before, copy)[0] is AudioCheck.SAME_AUDIO
        replace = tmp_path / f"replaced.{ext}"
        shutil.copyfile(new, replace)
        recorded = FileIdentity(0, 0, before.digest)
        assert check_identity(recorded, replace)[0] is AudioCheck.NEW_AUDIO

    def test_a_fifo_is_never_read(self, tmp_path):
        fifo = tmp_path / "fifo.wav"
        os.mkfifo(fifo)  # opening it to read would wait for a writer
        assert audio_digest(fifo) is None
        recorded = FileIdentity(1, 1, "0123456789abcdef")
        assert check_identity(recorded, fifo) == (AudioCheck.UNKNOWN, None)

    def test_an_unchanged_file_costs_one_stat(self, recordings):
        old, _ = recordings.files["wav"]
        recorded = FileIdentity(*_size_and_time(old), digest="not-read")
        assert check_identity(recorded, old) == (AudioCheck.SAME_FILE, None)

    def test_the_audio_columns_alone_cannot_tell_them_apart(self, recordings):
        for ext in SAME_COLUMNS:
            old, new = (Item.from_path(p) for p in recordings.files[ext])
            assert audio_fingerprint(old) == audio_fingerprint(new)


def _size_and_time(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns
