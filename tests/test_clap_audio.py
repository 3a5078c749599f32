"""Decoding windows with ffmpeg and embedding tracks in batches."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from beetsplug.audiofeatures.batch import Failure
from beetsplug.audiofeatures.clap_audio import (
    CLIP_SAMPLES,
    WindowPolicy,
    decode_clips,
    embed_tracks,
)
from beetsplug.audiofeatures.clap_model import ClapEmbedder, ModelSpec
from tests import synth
from tests.conftest import Audio, ClapAssets


@pytest.fixture(scope="module")
def long_track(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.make_track(
        tmp_path_factory.mktemp("long") / "long.mp3", 100, "Am", seconds=45
    )


def test_windows_are_decoded_at_48k_mono_and_quantised(long_track: Path):
    clips = decode_clips(str(long_track), 45.0, WindowPolicy(count=3))
    assert clips.shape == (3, CLIP_SAMPLES)
    assert clips.dtype == np.float32
    # 16-bit steps, as LAION trained
    np.testing.assert_allclose(
        clips * 32767, np.round(clips * 32767), atol=1e-3
    )
    again = decode_clips(str(long_track), 45.0, WindowPolicy(count=3))
    np.testing.assert_array_equal(clips, again)


def test_a_short_file_is_repeated_then_padded(tmp_path: Path):
    short = synth.make_track(tmp_path / "short.wav", seconds=4)
    (clip,) = decode_clips(str(short), 4.0, WindowPolicy())
    four = 4 * 48_000  # LAION's "repeatpad": 4 s + 4 s + 2 s of zeros
    assert clip[:four].any()
    np.testing.assert_array_equal(clip[:four], clip[four : 2 * four])
    assert not clip[2 * four :].any()


def test_odd_file_names_reach_ffmpeg_literally(
    long_track: Path, tmp_path: Path
):
    odd = tmp_path / "-$(touch pwned) 'quoted' name: with colon.mp3"
    shutil.copy(long_track, odd)
    clips = decode_clips(str(odd), 45.0, WindowPolicy(count=1))
    assert clips.shape == (1, CLIP_SAMPLES)
    assert not (tmp_path / "pwned").exists()
    assert not Path("pwned").exists()


def test_batches_hold_whole_tracks_and_do_not_change_vectors(
    long_track: Path, audio: Audio, clap: ClapAssets
):
    embedder = ClapEmbedder(ModelSpec(model=str(clap.model_dir)))
    sizes: list[int] = []

    def embed(clips: np.ndarray) -> np.ndarray:
        sizes.append(len(clips))
        return embedder.embed_clips(clips)

    tracks = [(n, str(long_track), 45.0) for n in range(4)]
    tracks.insert(2, (99, str(audio.text), 15.0))  # not audio
    policy = WindowPolicy(count=3)
    batched = dict(embed_tracks(tracks, embed, policy, batch_clips=9))
    assert sizes == [9, 3]  # three tracks of three windows, then one
    assert isinstance(batched.pop(99), Failure)
    single = dict(
        embed_tracks(tracks[:1], embedder.embed_clips, policy, batch_clips=1)
    )
    for vector in batched.values():
        assert isinstance(vector, np.ndarray)
        np.testing.assert_allclose(vector, single[0], atol=1e-5)
        assert np.linalg.norm(vector) == pytest.approx(1, abs=1e-5)
