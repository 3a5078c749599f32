"""``beet clapdupes`` on a real library of synthesised tracks, embedded
by the tiny real CLAP model and analysed by Essentia."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from beets_audiofeatures.clap.duplicates import (
    DuplicateRules,
    Evidence,
    duplicate_groups,
    same_recording,
)
from tests import synth
from tests.helpers import ClapHelper


class Versions:
    """Tracks of one sound: the same audio in two formats, the same audio
    40 s long and cut to 20 s, and another melody on the same instruments
    at the same tempo."""

    def __init__(self, root: Path) -> None:
        self.long_flac = synth.make_track(root / "long.flac", 120, "Am", 40)
        self.cut_mp3 = synth.make_track(root / "cut.mp3", 120, "Am", 20)
        self.other_melody = synth.make_track(root / "other.flac", 120, "C", 15)


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Versions:
    return Versions(tmp_path_factory.mktemp("versions"))


class TestClapDupes(ClapHelper):
    @pytest.fixture(autouse=True)
    def ids(self, _clap: None, versions: Versions) -> dict[str, int]:
        a = self.audio
        tracks = {
            "a-flac": a.a120_flac, "a-mp3": a.a120_mp3,
            "other-melody": versions.other_melody,
            "long": versions.long_flac, "cut": versions.cut_mp3,
        }  # fmt: skip
        self._ids = {
            title: self.add_track(source, title=title, artist="synth").id or 0
            for title, source in tracks.items()
        }
        self.clap()
        self.essentia()  # the keys and tempos the files hold
        return self._ids

    def groups(self, *args: str) -> list[list[str]]:
        self.io.getoutput()
        self.run_command("clapdupes", "--json", *args)
        rows = json.loads(self.io.getoutput())
        return [sorted(track["title"] for track in group) for group in rows]

    def test_the_same_audio_in_two_formats_is_one_recording(self):
        assert self.groups() == [["a-flac", "a-mp3"]]
        assert self.logged()[-1] == "1 group of one recording, among 5 tracks"

    def test_different_songs_of_one_sound_stay_apart(self):
        # The tiny random model hears them nearly alike; Essentia's keys
        # disagree (Am against C), and that keeps them apart.
        a, other = (self.item(self._ids[t]) for t in ("a-flac", "other-melody"))
        assert a["essentia_key"] != other["essentia_key"]
        assert ["a-flac", "other-melody"] not in self.groups(
            "--threshold", "0.5"
        )

    def test_a_cut_is_not_merged_without_other_evidence(self):
        assert ["cut", "long"] not in self.groups("--threshold", "0.5")
        # one MusicBrainz recording id on both says they are one
        for title in ("long", "cut"):
            item = self.item(self._ids[title])
            item.mb_trackid = "0f3c-recording"
            item.store()
        assert ["cut", "long"] in self.groups("--threshold", "0.5")

    def test_a_query_limits_the_tracks_and_nothing_changes(self):
        before = {i.id: dict(i) for i in self.lib.items()}
        files = {
            i.id: Path(i.path.decode()).read_bytes() for i in self.lib.items()
        }
        assert self.groups("title:a-mp3") == []
        assert self.logged()[-1] == "no two of the 1 track are one recording"
        self.io.getoutput()
        self.run_command("clapdupes", "-f", "$title $format")
        lines = self.io.getoutput().splitlines()
        assert lines[0] == "group 1: 2 tracks"
        assert sorted(lines[1:]) == ["  a-flac FLAC", "  a-mp3 MP3"]
        assert {i.id: dict(i) for i in self.lib.items()} == before
        assert {
            i.id: Path(i.path.decode()).read_bytes() for i in self.lib.items()
        } == files

    def test_one_line_errors(self):
        assert self.fails("clapdupes", "--threshold", "1.5") == (
            "--threshold must be a similarity above 0 and at most 1, not 1.5"
        )


RULES = DuplicateRules(threshold=0.9, tolerance=2.0)


def test_a_chain_of_pairs_never_joins_disagreeing_tracks():
    # b is like a and like c, but a and c name two recordings
    a = Evidence(length=200, recording="one")
    b = Evidence(length=200)
    c = Evidence(length=200, recording="two")
    vectors = np.array([[1, 0], [0.99, 0.141], [0.96, 0.28]], np.float32)
    groups = duplicate_groups(vectors, [a, b, c], RULES)
    assert groups == [[0, 1]]  # the closer pair wins; c stays alone
    assert same_recording(a, b, 0.95, RULES)
    assert not same_recording(a, c, 0.99, RULES)
    assert not same_recording(b, Evidence(length=203), 0.99, RULES)
    assert not same_recording(
        Evidence(length=200, tempo=120), Evidence(length=200, tempo=100),
        0.99, RULES,
    )  # fmt: skip
    assert same_recording(
        Evidence(length=200, tempo=120), Evidence(length=200, tempo=60),
        0.99, RULES,
    )  # fmt: skip
