"""The key on the track's own tuning: a recording played off pitch (a
tape or a record at another speed, a band that tuned by ear) keeps its
key in every profile that stores one, and ``essentia_tuning`` says how
far off it is."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from beets_audiofeatures.essentia.key_estimation import (
    REFERENCE,
    nearest_tuning,
    semitones_off,
)
from beetsplug.audiofeatures.library_query import item_id
from tests.helpers import AudioFeaturesHelper


def cents(frequency: float) -> float:
    return float(1200 * np.log2(frequency / REFERENCE))


def off_pitch(source: Path, target: Path, by: int) -> Path:
    """``source`` played ``by`` cents higher, its tempo kept (sox)."""
    subprocess.run(
        ["sox", str(source), str(target), "pitch", str(by)], check=True
    )
    return target


class TestFolding:
    @pytest.mark.parametrize(
        ("estimate", "folded"),
        [(0, 0), (45, 45), (-45, -45), (59, -41), (-62, 38), (50, -50)],
    )
    def test_an_estimate_is_folded_into_a_quarter_tone(self, estimate, folded):
        frequency = REFERENCE * 2 ** (estimate / 1200)
        assert cents(nearest_tuning(frequency)) == pytest.approx(folded)

    def test_a_chroma_on_the_unfolded_tuning_is_a_semitone_off(self):
        assert semitones_off(REFERENCE * 2 ** (59 / 1200)) == 1
        assert semitones_off(REFERENCE * 2 ** (-62 / 1200)) == -1
        assert semitones_off(REFERENCE * 2 ** (30 / 1200)) == 0

    def test_the_chroma_is_raised_to_the_tracks_tuning(self):
        # an extractor's chroma on +59 cents, the track's tuning -41
        assert semitones_off(REFERENCE * 2 ** (59 / 1200), REFERENCE) == 1
        assert (
            semitones_off(
                REFERENCE * 2 ** (47 / 1200), REFERENCE * 2 ** (-49 / 1200)
            )
            == 1
        )
        assert semitones_off(REFERENCE * 2 ** (20 / 1200), REFERENCE) == 0

    def test_no_estimate_is_concert_pitch(self):
        assert nearest_tuning(0.0) == REFERENCE
        assert semitones_off(0.0, REFERENCE) == 0


class TestOffPitchRecordings(AudioFeaturesHelper):
    @pytest.mark.parametrize("profile", ["stored", "music", "tonal"])
    def test_the_key_holds_off_pitch(self, profile, tmp_path):
        source = self.audio.a120_wav  # A minor
        tracks = {
            by: item_id(
                self.add_track(
                    off_pitch(source, tmp_path / f"{by}.wav", by),
                    title=f"t{by}",
                )
            )
            for by in (0, -45, 45)
        }
        self.essentia("--profile", profile)
        for by, number in tracks.items():
            item = self.item(number)
            assert item["essentia_key"] == "Am", by
            assert cents(item["essentia_tuning"]) == pytest.approx(by, abs=6)
