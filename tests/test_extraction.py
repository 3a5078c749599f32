"""Real Essentia on real files, without beets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from beets_audiofeatures.essentia.extraction import (
    AnalysisJob,
    Analyzer,
)
from beets_audiofeatures.essentia.pipelines import AnalysisError
from beets_audiofeatures.essentia.profiles import resolve_profile
from tests.conftest import Audio


def analyse(tmp_path: Path, path: Path, profile: str = "music", **job):
    analyzer = Analyzer(resolve_profile(profile), str(tmp_path))
    return analyzer(AnalysisJob(path=bytes(path), **job))


def test_music_profile_finds_tempo_key_and_loudness(tmp_path, audio: Audio):
    result = analyse(tmp_path, audio.a120_flac)
    values = result.values
    assert values["essentia_bpm"] == pytest.approx(120, abs=1)
    assert values["essentia_key"] == "Am"
    assert -30 < values["essentia_loudness"] < 0
    assert values["essentia_beats_count"] >= 25
    assert 0 < values["essentia_danceability"] < 4
    assert result.length == pytest.approx(15, abs=0.1)
    assert not result.transcoded


@pytest.mark.parametrize("profile", ["music", "rhythm,tonal,lowlevel"])
def test_a_reused_analyzer_gives_the_same_values(tmp_path, audio, profile):
    analyzer = Analyzer(resolve_profile(profile), str(tmp_path))
    job = AnalysisJob(path=bytes(audio.c90_mp3))
    first = analyzer(job).values
    analyzer(AnalysisJob(path=bytes(audio.a120_flac)))
    assert analyzer(job).values == first


def test_light_rhythm_profile_fills_only_rhythm(tmp_path, audio: Audio):
    values = analyse(tmp_path, audio.c90_mp3, "rhythm").values
    assert values["essentia_bpm"] == pytest.approx(90, abs=1)
    assert {k.split("_")[1] for k in values} <= {
        "bpm", "beats", "onset", "danceability",
    }  # fmt: skip


def test_light_and_full_pipelines_agree(tmp_path, audio: Audio):
    full = analyse(tmp_path, audio.c90_mp3).values
    light = analyse(tmp_path, audio.c90_mp3, "rhythm,tonal,lowlevel").values
    assert set(light) == set(full)
    assert light["essentia_bpm"] == pytest.approx(full["essentia_bpm"], abs=1)
    assert light["essentia_key"] == full["essentia_key"] == "C"
    assert light["essentia_loudness"] == pytest.approx(
        full["essentia_loudness"], abs=0.1
    )
    assert light["essentia_spectral_centroid"] == pytest.approx(
        full["essentia_spectral_centroid"], rel=0.05
    )


def test_freesound_profile(tmp_path, audio: Audio):
    values = analyse(tmp_path, audio.a120_wav, "freesound").values
    assert values["essentia_bpm"] == pytest.approx(120, abs=1)
    assert values["essentia_key"] == "Am"


@pytest.mark.parametrize("name", ["opus", "raw_aac", "six_channels"])
def test_formats_essentia_cannot_read_go_through_ffmpeg(
    tmp_path, audio: Audio, name: str
):
    result = analyse(tmp_path, getattr(audio, name), "rhythm")
    assert result.transcoded
    assert result.values["essentia_bpm"] == pytest.approx(120, abs=1)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("silence", "silent"),
        ("truncated_wav", "truncated: the audio stops at 4.5 s of the 15.0 s"),
        ("text", "ffmpeg"),
        ("empty", "file is empty"),
    ],
)
@pytest.mark.parametrize("profile", ["music", "rhythm"])
def test_bad_files_fail_with_a_reason(
    tmp_path, audio: Audio, name: str, reason: str, profile: str
):
    path = getattr(audio, name)
    with pytest.raises(AnalysisError, match=reason):
        analyse(tmp_path, path, profile, expected_length=15.0)


def test_missing_file(tmp_path):
    with pytest.raises(AnalysisError, match="file not found"):
        analyse(tmp_path, tmp_path / "gone.flac")


def test_dump_writes_the_full_output(tmp_path, audio: Audio):
    dump = tmp_path / "dumps" / "a" / "a120.flac.json"
    analyse(tmp_path, audio.a120_flac, dump=bytes(dump))
    output = json.loads(dump.read_text())
    assert output["rhythm"]["bpm"] == pytest.approx(120, abs=1)
    assert "mfcc" in output["lowlevel"]
    assert [p.name for p in dump.parent.iterdir()] == [dump.name]


def test_yaml_profile_with_stats_runs(tmp_path, audio: Audio):
    profile = tmp_path / "short.yaml"
    profile.write_text("endTime: 8\nlowlevel: {stats: [mean]}\n")
    result = analyse(tmp_path, audio.a120_wav, str(profile))
    assert result.values["essentia_bpm"] == pytest.approx(120, abs=2)


def test_a_profile_essentia_rejects_fails_at_start(tmp_path):
    profile = tmp_path / "bad.yaml"
    profile.write_text("rhythm: {method: nonexistent_method}\n")
    with pytest.raises(ValueError, match="nonexistent_method"):
        Analyzer(resolve_profile(str(profile)), str(tmp_path))
