"""The ``stored`` profile, the default: the fields ``music`` stores, with
``music``'s values, at a fraction of its cost; a library analysed with
``music`` stays current under it. Real Essentia on real files."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from beets_audiofeatures.essentia.extraction import (
    AnalysisJob,
    AnalysisResult,
    Analyzer,
    import_essentia,
)
from beets_audiofeatures.essentia.loudness import ebu_r128
from beets_audiofeatures.essentia.profiles import resolve_profile
from beetsplug.audiofeatures.settings.essentia import DEFAULTS
from tests.conftest import Audio
from tests.helpers import AudioFeaturesHelper


@pytest.fixture(scope="module")
def both(
    tmp_path_factory: pytest.TempPathFactory, audio: Audio
) -> dict[str, dict[str, AnalysisResult]]:
    """``music`` and ``stored`` on the same files (Am at 120 BPM as FLAC,
    C at 90 BPM as MP3)."""
    folder = tmp_path_factory.mktemp("stored")
    results: dict[str, dict[str, AnalysisResult]] = {}
    for profile in ("music", "stored"):
        analyzer = Analyzer(resolve_profile(profile), str(folder))
        results[profile] = {
            path.name: analyzer(AnalysisJob(path=bytes(path)))
            for path in (audio.a120_flac, audio.c90_mp3)
        }
    return results


def values(
    both: dict[str, dict[str, AnalysisResult]], profile: str, name: str
) -> dict[str, Any]:
    return both[profile][name].values


FILES = ("a120.flac", "c90.mp3")


def test_the_default_profile_is_stored():
    assert DEFAULTS["profile"] == "stored"


@pytest.mark.parametrize("name", FILES)
def test_stored_fills_every_field_music_fills(both, name):
    assert set(values(both, "stored", name)) == set(values(both, "music", name))


@pytest.mark.parametrize("name", FILES)
def test_tempo_beats_key_and_tuning_are_musics(both, name):
    music, stored = values(both, "music", name), values(both, "stored", name)
    assert stored["essentia_bpm"] == pytest.approx(
        music["essentia_bpm"], abs=0.01
    )
    assert stored["essentia_beats_count"] == music["essentia_beats_count"]
    assert stored["essentia_bpm_confidence"] == pytest.approx(
        music["essentia_bpm_confidence"], abs=0.01
    )
    assert stored["essentia_key"] == music["essentia_key"]
    assert stored["essentia_key_strength"] == pytest.approx(
        music["essentia_key_strength"], abs=0.01
    )
    assert stored["essentia_tuning"] == pytest.approx(
        music["essentia_tuning"], abs=0.5
    )


@pytest.mark.parametrize("name", FILES)
def test_loudness_is_within_a_tenth_of_a_lu_of_musics(both, name):
    music, stored = values(both, "music", name), values(both, "stored", name)
    for field in ("essentia_loudness", "essentia_loudness_range"):
        assert stored[field] == pytest.approx(music[field], abs=0.1), field


@pytest.mark.parametrize("name", FILES)
def test_onsets_danceability_dynamics_and_brightness_are_musics(both, name):
    music, stored = values(both, "music", name), values(both, "stored", name)
    for field, tolerance in (
        ("essentia_onset_rate", 0.02),
        ("essentia_danceability", 0.01),
        ("essentia_dynamic_complexity", 0.05),
        ("essentia_spectral_centroid", 0.02),
    ):
        assert stored[field] == pytest.approx(music[field], rel=tolerance), (
            field
        )


@pytest.mark.parametrize("name", FILES)
def test_the_light_profiles_give_each_field_the_same_meaning(
    both, audio, tmp_path, name
):
    """The light profiles' fields on the scale of ``stored``'s (their key
    strength and spectral centroid come from other algorithms: see the
    fields table; their tuning is the same estimator's on frames 4096
    samples apart, not 2048)."""
    path = {"a120.flac": audio.a120_flac, "c90.mp3": audio.c90_mp3}[name]
    analyzer = Analyzer(resolve_profile("rhythm,tonal,lowlevel"), str(tmp_path))
    light = analyzer(AnalysisJob(path=bytes(path))).values
    stored = values(both, "stored", name)
    assert light["essentia_key"] == stored["essentia_key"]
    assert (
        abs(light["essentia_beats_count"] - stored["essentia_beats_count"]) <= 1
    )
    for field, tolerance in (
        ("essentia_bpm", 0.5),
        ("essentia_bpm_confidence", 0.05),
        ("essentia_loudness", 0.1),
        ("essentia_loudness_range", 0.1),
    ):
        assert light[field] == pytest.approx(stored[field], abs=tolerance), (
            field
        )
    for field, share in (
        ("essentia_onset_rate", 0.02),
        ("essentia_danceability", 0.01),
        ("essentia_dynamic_complexity", 0.1),
    ):
        assert light[field] == pytest.approx(stored[field], rel=share), field


def test_loudness_of_noise_is_essentias_and_rises_by_its_gain():
    """The numpy EBU R128 on a signal it was not checked on (white noise),
    and on the same noise 6 dB louder."""
    es = import_essentia()
    rng = np.random.default_rng(3)
    stereo = (0.05 * rng.standard_normal((44100 * 20, 2))).astype(np.float32)
    found = []
    for gain in (1.0, 2.0):
        signal = stereo * np.float32(gain)
        _m, _s, integrated, loudness_range = es.LoudnessEBUR128(
            sampleRate=44100
        )(signal)
        found.append(ebu_r128(signal, 44100))
        assert found[-1].integrated == pytest.approx(integrated, abs=0.1)
        assert found[-1].loudness_range == pytest.approx(
            loudness_range, abs=0.1
        )
    assert found[1].integrated - found[0].integrated == pytest.approx(
        20 * np.log10(2), abs=0.01
    )


class TestMusicStaysCurrent(AudioFeaturesHelper):
    def test_a_library_analysed_with_music_is_not_planned_again(self):
        self.add_track(self.audio.a120_flac, title="one")
        self.essentia("--profile", "music")

        out = self.run_with_output("essentia", "-p")

        assert "nothing to analyse" in out
        assert "stored (values of music count as current)" in out

    def test_a_new_track_beside_them_is_analysed_with_stored(self):
        self.add_track(self.audio.a120_flac, title="one")
        self.essentia("--profile", "music")
        self.add_track(self.audio.c90_mp3, title="two")

        out = self.run_with_output("essentia", "-p")

        assert "would analyse 1 of 2 tracks" in out
        planned = out.split("\n", 1)[1]
        assert "two" in planned
        assert "one" not in planned
