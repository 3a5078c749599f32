"""Which of the two key estimates is stored: the HPCP's key over
``KeyExtractor``'s reading of its dominant on harmony (not on a solo
melody), and over its reading of the relative key on a solo melody (not
on harmony); otherwise the more confident."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from beets_audiofeatures.essentia.key_estimation import (
    HARMONY,
    KeyEstimate,
    key_of,
    polyphony,
)

#: 36-bin chroma frames: one pitch class, and a C major triad.
MELODY = np.zeros((40, 36))
MELODY[np.arange(40), 3 * (np.arange(40) % 7)] = 1.0
TRIADS = np.zeros((40, 36))
TRIADS[:, [0, 12, 21]] = [1.0, 0.8, 0.9]


def extractor(key: str, scale: str = "major", strength: float = 0.93):
    return KeyEstimate(key, scale, strength, "keyextractor")


def hpcp(key: str, scale: str = "major", strength: float = 0.70):
    return KeyEstimate(key, scale, strength, "hpcp")


class TestPolyphony:
    def test_a_melody_sounds_one_pitch_class_a_triad_three(self):
        assert polyphony(MELODY) == 1.0
        assert polyphony(TRIADS) == 3.0

    def test_silent_frames_do_not_count(self):
        frames = np.vstack([TRIADS, np.zeros((40, 36))])
        assert polyphony(frames) == 3.0

    def test_no_frames_is_no_harmony(self):
        assert polyphony(np.zeros((0, 36))) == 0.0
        assert polyphony([]) == 0.0

    def test_real_chords_and_a_real_melody_fall_either_side(
        self, tmp_path: Path
    ):
        """Essentia's HPCP of sox tones: a tune one note at a time, then
        chords of the same notes (sines: a pluck's own partials would
        count as pitch classes of their own here, without the tonal
        frames' weighting)."""
        es = pytest.importorskip("essentia.standard")
        notes = ["C4", "E4", "G4", "F4", "A4", "D4", "G4", "B3"]
        melody, chords = tmp_path / "melody.wav", tmp_path / "chords.wav"
        tone = ["synth", "0.5", "sine"]
        parts = [f"|sox -n -p {' '.join(tone)} {n} gain -6" for n in notes]
        triads = [
            f"|sox -n -p synth 0.5 sine {a} sine {b} sine {c} remix - gain -6"
            for a, b, c in [("C4", "E4", "G4"), ("F4", "A4", "C5"),
                            ("G4", "B4", "D5"), ("C4", "E4", "G4")] * 2
        ]  # fmt: skip
        for target, sources in ((melody, parts), (chords, triads)):
            subprocess.run(
                ["sox", *sources, "-r", "44100", str(target)], check=True
            )

        def chroma(path: Path) -> np.ndarray:
            audio = es.MonoLoader(filename=str(path), sampleRate=44100)()
            window = es.Windowing(type="blackmanharris62", size=4096)
            spectrum, peaks = es.Spectrum(size=4096), es.SpectralPeaks(
                maxPeaks=60, magnitudeThreshold=1e-5, minFrequency=20,
                maxFrequency=3500, orderBy="magnitude",
            )  # fmt: skip
            hpcp36 = es.HPCP(size=36, maxFrequency=3500, weightType="cosine")
            return np.array([
                hpcp36(*peaks(spectrum(window(frame))))
                for frame in es.FrameGenerator(audio, frameSize=4096, hopSize=2048)
            ])  # fmt: skip

        assert polyphony(chroma(melody)) < HARMONY <= polyphony(chroma(chords))


class TestKeyOf:
    def test_the_hpcp_key_when_the_extractor_reads_its_dominant_on_harmony(
        self,
    ):
        assert key_of(extractor("G"), hpcp("C"), TRIADS) == hpcp("C")
        assert key_of(
            extractor("E", "minor"), hpcp("A", "minor"), TRIADS
        ) == hpcp("A", "minor")

    def test_on_a_melody_the_more_confident(self):
        assert key_of(extractor("G"), hpcp("C"), MELODY) == extractor("G")

    def test_other_disagreements_go_to_the_more_confident(self):
        # the subdominant, the relative minor, another mode
        assert key_of(extractor("F"), hpcp("C"), TRIADS) == extractor("F")
        assert key_of(extractor("A", "minor"), hpcp("C"), TRIADS) == extractor(
            "A", "minor"
        )
        assert key_of(extractor("G", "minor"), hpcp("C"), TRIADS) == extractor(
            "G", "minor"
        )

    def test_the_hpcp_key_when_the_extractor_reads_its_relative_on_a_melody(
        self,
    ):
        assert key_of(extractor("G#", "minor"), hpcp("B"), MELODY) == hpcp("B")
        assert key_of(extractor("C"), hpcp("A", "minor"), MELODY) == hpcp(
            "A", "minor"
        )

    def test_on_a_melody_other_disagreements_go_to_the_more_confident(self):
        # the parallel key, the subdominant, a relative a tone away
        for key, scale in (("C", "minor"), ("F", "major"), ("B", "minor")):
            assert key_of(
                extractor(key, scale), hpcp("C"), MELODY
            ) == extractor(key, scale)

    def test_a_confident_hpcp_wins_as_before(self):
        strong = hpcp("D", strength=0.9)
        assert key_of(extractor("F", strength=0.7), strong, MELODY) == strong

    def test_without_an_hpcp_estimate_the_extractor(self):
        assert key_of(extractor("G"), None, TRIADS) == extractor("G")
