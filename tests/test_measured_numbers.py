"""The measured numbers as a user edits and queries them (found exploring
``beet essentia`` as a new user): ``beet modify`` refuses a value that
is no number with one line, where beets stored it as empty and lost the
measurement; an emptied value is no number in any range, where beets'
numeric query raised ``TypeError`` on it."""

from __future__ import annotations

import pytest

from tests.helpers import AudioFeaturesHelper

#: What ``beet modify`` prints before a refused value stops it.
MODIFY_COUNTS = ("", "Modifying 1 items.\n", "Modifying 1 albums.\n")


class TestMeasuredNumbers(AudioFeaturesHelper):
    @pytest.fixture(autouse=True)
    def _library(self, _audio: None) -> None:
        for title, bpm in (("slow", 45.0), ("fast", 128.9)):
            self.add_track(
                self.audio.c90_mp3,
                title=title,
                essentia_bpm=bpm,
                essentia_loudness=-14.3,
                essentia_beats_count=64,
            )

    def titles(self, *query: str) -> set[str]:
        return set(self.run_with_output("ls", "-f", "$title", *query).split())

    def stored(self, title: str, field: str) -> object:
        (item,) = self.lib.items(f"title:{title}")
        return item.get(field, with_album=False)

    @pytest.mark.parametrize(
        ("field", "query"),
        [
            ("essentia_bpm", "essentia_bpm:..50"),
            ("essentia_bpm", "essentia_bpm:..50~"),
            ("essentia_loudness", "essentia_loudness:..-12"),
            ("essentia_beats_count", "essentia_beats_count:10.."),
        ],
    )
    def test_an_emptied_value_is_in_no_range(
        self, field: str, query: str
    ) -> None:
        self.run_command("modify", "-y", "title:fast", f"{field}=")
        assert self.stored("fast", field) is None
        assert "fast" not in self.titles(query)

    def test_the_other_tracks_are_still_found(self) -> None:
        self.run_command("modify", "-y", "title:fast", "essentia_bpm=")
        assert self.titles("essentia_bpm:..50") == {"slow"}

    @pytest.mark.parametrize(
        ("assignment", "line"),
        [
            ("essentia_bpm=abc", "essentia_bpm: 'abc' is not a number"),
            ("essentia_loudness=-x", "essentia_loudness: '-x' is not a number"),
            (
                "essentia_beats_count=1.5",
                "essentia_beats_count: '1.5' is not a whole number",
            ),
        ],
    )
    def test_a_value_that_is_no_number_is_refused_with_one_line(
        self, assignment: str, line: str
    ) -> None:
        field = assignment.split("=")[0]
        before = self.stored("fast", field)
        error = self.fails(
            "modify", "-y", "title:fast", assignment, printed=MODIFY_COUNTS
        )
        assert error == line
        assert self.stored("fast", field) == before

    def test_a_number_is_stored(self) -> None:
        self.run_command("modify", "-y", "title:fast", "essentia_bpm=128.5")
        assert self.stored("fast", "essentia_bpm") == 128.5
        assert self.titles("essentia_bpm:120..130") == {"fast"}


class TestEmptiedTempo(AudioFeaturesHelper):
    def test_an_emptied_tempo_fills_no_core_bpm_and_stops_nothing(
        self,
    ) -> None:
        self.config["audiofeatures"]["essentia"]["profile"] = "rhythm"
        item = self.add_track(self.audio.a120_flac, title="song")
        self.essentia()
        self.run_command("modify", "-y", "title:song", "bpm=0", "essentia_bpm=")
        self.io.getoutput()
        self.essentia("-p")
        assert "refill" not in self.io.getoutput()
        self.essentia()
        item.load()
        assert item.bpm == 0
        assert item.get("essentia_bpm", with_album=False) is None
