"""The tuning every key-storing profile reads the key against
(``beets_audiofeatures/essentia/tuning.py``): drums and short tracks do
not pull it off pitch, a detuned recording reads as detuned, and a track
with nothing to estimate from is at 440 Hz. Real Essentia on real files
(sox), through each profile's own pipeline."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from beets_audiofeatures.essentia.extraction import AnalysisJob, Analyzer
from beets_audiofeatures.essentia.key_estimation import REFERENCE
from beets_audiofeatures.essentia.profiles import resolve_profile
from beets_audiofeatures.essentia.tuning import estimate_tuning
from tests import synth

PROFILES = ("stored", "music", "tonal")
RATE = 44100


def cents(frequency: float) -> float:
    return float(1200 * np.log2(frequency / REFERENCE))


def write_wav(target: Path, signal: np.ndarray) -> Path:
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((signal * 32767 * 0.5).astype("<i2").tobytes())
    return target


def harmonic_chord(target: Path, detuned_by: float, seconds: float) -> Path:
    """An A minor triad (A3 C4 E4) of harmonic tones, eight partials
    each, every partial ``detuned_by`` cents off the 440 Hz grid."""
    time = np.arange(int(seconds * RATE)) / RATE
    a4 = REFERENCE * 2 ** (detuned_by / 1200)
    signal = np.zeros_like(time)
    for semitones in (-12, -9, -5):  # A3, C4, E4
        root = a4 * 2 ** (semitones / 12)
        for partial in range(1, 9):
            signal += np.sin(2 * np.pi * root * partial * time) / partial
    return write_wav(target, signal / np.abs(signal).max())


def analysed(folder: Path, profile: str, path: Path) -> dict[str, Any]:
    analyzer = Analyzer(resolve_profile(profile), str(folder / profile))
    values: dict[str, Any] = analyzer(AnalysisJob(path=bytes(path))).values
    return values


@pytest.fixture(scope="module")
def tracks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An in-tune 8-second band (a kick falling from 150 to 45 Hz, noise
    hi-hats, plucked C–F–G–C: the noise seeded, so every session reads
    the same audio) and a chord 45 cents sharp."""
    folder = tmp_path_factory.mktemp("tuning")
    with synth.repeatable():
        band = synth.make_wav(folder / "band.wav", 90, "C", seconds=8)
    return {
        "band": band,
        "sharp": harmonic_chord(folder / "sharp.wav", 45, seconds=6),
    }


@pytest.fixture(scope="module")
def fields(
    tmp_path_factory: pytest.TempPathFactory, tracks: dict[str, Path]
) -> dict[tuple[str, str], dict[str, Any]]:
    folder = tmp_path_factory.mktemp("analysed")
    return {
        (profile, name): analysed(folder, profile, path)
        for profile in PROFILES
        for name, path in tracks.items()
    }


@pytest.mark.parametrize("profile", PROFILES)
def test_drums_on_a_short_track_leave_it_in_tune(fields, profile):
    tuning = fields[profile, "band"]["essentia_tuning"]
    assert cents(tuning) == pytest.approx(0, abs=3)
    assert fields[profile, "band"]["essentia_key"] == "C"


@pytest.mark.parametrize("profile", PROFILES)
def test_a_chord_45_cents_sharp_reads_45_cents_sharp(fields, profile):
    tuning = fields[profile, "sharp"]["essentia_tuning"]
    assert cents(tuning) == pytest.approx(45, abs=3)
    assert fields[profile, "sharp"]["essentia_key"] == "Am"


def test_noise_has_no_tuning_but_concert_pitch(tmp_path):
    noise = tmp_path / "noise.wav"
    subprocess.run(
        ["sox", "-R", "-n", "-r", str(RATE), "-c", "1", str(noise),
         "synth", "10", "whitenoise", "vol", "0.3"],
        check=True,
    )  # fmt: skip
    assert analysed(tmp_path, "stored", noise)["essentia_tuning"] == REFERENCE


def test_half_a_second_is_too_short_to_estimate_from():
    time = np.arange(RATE // 2) / RATE
    tone = np.sin(2 * np.pi * REFERENCE * 2 ** (30 / 1200) * time)
    assert estimate_tuning(tone.astype(np.float32)) == REFERENCE
