"""The tempo at the felt beat: a hymn whose chords move on the beat and
whose repeated eighth notes lead the beat tracker to twice its tempo is
stored at the beat people tap; music with drums, or whose chords move
once a bar, keeps the tracker's tempo."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from beets_audiofeatures.essentia.felt_tempo import (
    HALVE_ABOVE,
    felt_ticks,
    harmonic_change,
    pitch_classes,
)
from beetsplug.audiofeatures.library_query import item_id
from tests import synth
from tests.helpers import AudioFeaturesHelper

RATE = 44100
#: A chord per beat, C F G C …, as MIDI notes (bass an octave down).
CHORDS = [[60, 64, 67], [57, 60, 64], [53, 57, 60], [55, 59, 62],
          [60, 64, 67], [52, 55, 60], [53, 57, 62], [55, 59, 62]]  # fmt: skip


def note(midi: float) -> float:
    return float(440 * 2 ** ((midi - 69) / 12))


def tone(freqs: list[float], seconds: float, amp: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.exp(-0.4 * t) * np.minimum(1, t / 0.005)
    envelope *= np.minimum(1, (seconds - t) / 0.02)
    return sum(
        (
            amp
            * envelope
            * (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t))
            for f in freqs
        ),
        np.zeros_like(t),
    )


def hymn(target: Path, bpm: float = 66) -> Path:
    """Chords on every beat, and above them a melody note struck twice a
    beat (the same note: the harmony moves on the beat only)."""
    beat = 60 / bpm
    beats = []
    for _bar in range(6):
        for chord in CHORDS:
            segment = tone(
                [note(m) for m in (*chord, chord[0] - 12)], beat, 0.2
            )
            top = tone([note(chord[-1] + 12)], beat / 2, 0.5)
            segment[: len(top)] += top
            half = int(beat / 2 * RATE)
            segment[half : half + len(top)] += top[: len(segment) - half]
            beats.append(segment)
    signal = np.concatenate(beats)
    signal /= np.abs(signal).max() * 1.1
    samples = (np.stack([signal, signal], axis=1) * 32767).astype("<i2")
    with wave.open(str(target), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())
    return target


class TestTheRule:
    frame = 0.05  # seconds per chroma frame

    def grid(
        self, bpm: float, change_every: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ticks at ``bpm`` and chroma whose pitch class moves every
        ``change_every`` ticks."""
        ticks = np.arange(40) * 60 / bpm + 0.5
        frames = int(ticks[-1] / self.frame) + 20
        chroma = np.zeros((frames, 12))
        for n, tick in enumerate(ticks):
            start = round(tick / self.frame)
            chroma[start:, :] = 0
            chroma[start:, (n // change_every) % 12] = 1
        return ticks, chroma

    def test_harmony_every_other_tick_and_few_onsets_halves(self):
        ticks, chroma = self.grid(140, 2)
        kept = felt_ticks(140, ticks, 20, chroma, self.frame)
        assert len(kept) == 20
        assert np.allclose(np.diff(kept), 2 * 60 / 140)

    @pytest.mark.parametrize(
        ("bpm", "change_every", "onsets"),
        [
            (140, 1, 20),  # the harmony moves on every tick
            (140, 4, 20),  # a chord per bar
            (140, 2, 40),  # an onset on every tick: drums
            (HALVE_ABOVE, 2, 20),  # not a fast pulse
        ],
    )
    def test_otherwise_the_ticks_stay(self, bpm, change_every, onsets):
        ticks, chroma = self.grid(bpm, change_every)
        assert len(felt_ticks(bpm, ticks, onsets, chroma, self.frame)) == 40

    def test_too_little_to_tell_keeps_the_ticks(self):
        ticks = np.arange(5) * 0.4
        assert len(felt_ticks(150, ticks, 1, np.zeros((0, 12)), 0.05)) == 5
        assert len(harmonic_change(np.ones((6, 12)))) == 6

    def test_the_hpcp_bins_fold_onto_their_notes(self):
        frame = np.zeros((1, 36))
        frame[0, [35, 0, 1]] = 1  # the bins around A
        assert pitch_classes(frame)[0].tolist() == [3] + [0] * 11
        assert pitch_classes(np.zeros((3, 12))).shape == (0, 12)


class TestStoredTempo(AudioFeaturesHelper):
    @pytest.mark.parametrize("profile", ["stored", "music"])
    def test_a_hymn_is_stored_at_its_beat(self, profile, tmp_path):
        number = item_id(self.add_track(hymn(tmp_path / "hymn.wav")))
        self.essentia("--profile", profile)
        item = self.item(number)
        assert item["essentia_bpm"] == pytest.approx(66, abs=1)
        assert item["essentia_beats_count"] == pytest.approx(47, abs=2)

    def test_a_fast_band_with_drums_keeps_its_tempo(self, tmp_path):
        track = synth.make_track(tmp_path / "fast.wav", 140, "Am", seconds=15)
        number = item_id(self.add_track(track))
        self.essentia()
        assert self.item(number)["essentia_bpm"] == pytest.approx(140, abs=2)
