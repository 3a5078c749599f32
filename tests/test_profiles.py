from __future__ import annotations

from pathlib import Path

import pytest

from beets_audiofeatures.essentia.profiles import ProfileError, resolve_profile


def test_named_profiles():
    assert resolve_profile("music").extractor == "music"
    assert resolve_profile("freesound").extractor == "freesound"
    light = resolve_profile("tonal, rhythm")
    assert (light.name, light.extractor) == ("rhythm,tonal", "light")
    assert light.groups == ("rhythm", "tonal")


def test_unknown_profile_lists_the_choices():
    with pytest.raises(ProfileError, match=r"unknown profile 'fast'.*music"):
        resolve_profile("fast")


def test_every_key_profile_suits_music_and_tonal_alike():
    # KeyExtractor computes the stored key for both
    assert resolve_profile("tonal", "bgate").key_profile == "bgate"
    assert resolve_profile("music", "bgate").key_profile == "bgate"
    with pytest.raises(ProfileError, match=r"'nope' is not available.*edma"):
        resolve_profile("music", "nope")


def test_the_key_method_and_threshold_are_provenance():
    music = resolve_profile("music", "edma", min_key_strength=0.4)
    assert music.method("tonal", "2.1") == (
        "music, key KeyExtractor edma 8192/4096 or the extractor's HPCP "
        "(edma, its key over a dominant from polyphony 1.5, over a relative "
        "below it) on the tuning of peaks 100-5000 Hz from strength 0.4, "
        "essentia 2.1"
    )
    assert music.method("rhythm", "2.1") == (
        "music, tempo halved above 120 BPM on harmony every other beat (1.3) "
        "and under 1 onset per beat, essentia 2.1"
    )
    assert resolve_profile("tonal", "edma").method("tonal", "2.1") != (
        resolve_profile("tonal", "bgate").method("tonal", "2.1")
    )


def test_yaml_stats_move_to_the_constructor(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "endTime: 60\n"
        "lowlevel: {frameSize: 4096, stats: [mean, stdev], mfccStats: [mean]}\n"
        "rhythm: {method: multifeature, stats: [mean]}\n"
    )
    profile = resolve_profile(str(path))
    assert profile.name.startswith("mine@")
    assert profile.stats == {
        "lowlevelStats": ["mean", "stdev"],
        "mfccStats": ["mean"],
        "rhythmStats": ["mean"],
    }
    assert profile.options == {
        "endTime": 60,
        "lowlevel": {"frameSize": 4096},
        "rhythm": {"method": "multifeature"},
    }


def test_yaml_name_changes_with_its_content(tmp_path: Path):
    path = tmp_path / "p.yaml"
    path.write_text("endTime: 60\n")
    first = resolve_profile(str(path)).name
    path.write_text("endTime: 90\n")
    assert resolve_profile(str(path)).name != first


def test_relative_yaml_is_found_beside_the_beets_config(tmp_path: Path):
    (tmp_path / "p.yaml").write_text("endTime: 60\n")
    assert resolve_profile("p.yaml", base_dir=tmp_path).options == {
        "endTime": 60
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("analysisSampleRate: 48000\n", "analysisSampleRate must stay 44100"),
        ("a: b: c\n", "not valid YAML"),
        ("- a list\n", "must be a mapping"),
        ("highlevel: {compute: 1, svm_models: [nope.history]}\n",
         "SVM model not found"),
    ],
)  # fmt: skip
def test_bad_yaml_profiles(tmp_path: Path, content: str, message: str):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ProfileError, match=message):
        resolve_profile(str(path))


def test_missing_yaml_file():
    with pytest.raises(ProfileError, match="profile file not found"):
        resolve_profile("/nowhere/profile.yaml")


def test_svm_models_are_found_beside_the_profile_and_named(tmp_path: Path):
    models = tmp_path / "svm"
    models.mkdir()
    for name in ("mood_happy", "voice_instrumental"):
        (models / f"{name}.history").write_bytes(b"gaia")
    path = tmp_path / "classic.yaml"
    path.write_text(
        "highlevel: {compute: 1, svm_models: "
        "[svm/mood_happy.history, svm/voice_instrumental.history]}\n"
    )
    profile = resolve_profile(str(path))
    assert profile.svm_models == ["mood_happy", "voice_instrumental"]
    assert profile.options["highlevel"]["svm_models"] == [
        str(models / "mood_happy.history"),
        str(models / "voice_instrumental.history"),
    ]
    assert resolve_profile("music").svm_models == []
