"""CLAP's log-mel features, vectorised: the model's own extractor's
numbers, from real decoded clips."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info
from transformers import ClapFeatureExtractor

from beets_audiofeatures.clap import mel
from beets_audiofeatures.clap.audio import WindowPolicy, decode_clips
from beets_audiofeatures.clap.mel import clip_features
from beets_audiofeatures.clap.model import CLIP_SAMPLES, SAMPLE_RATE
from tests.conftest import Audio


def extractor(truncation: str) -> ClapFeatureExtractor:
    """As a LAION checkpoint is read (``sources``): fused models crop by
    fusion, the others by random truncation."""
    return ClapFeatureExtractor(
        frequency_min=50,
        frequency_max=14_000,
        truncation=truncation,
        padding="repeatpad",
    )


@pytest.fixture(scope="module")
def clips(audio: Audio) -> np.ndarray:
    """Two clips of decoded music, and one of near-silence, where the
    filter bank's floor decides the decibels."""
    music = decode_clips(str(audio.a120_mp3), 10.0, WindowPolicy(count=2))
    quiet = np.zeros(CLIP_SAMPLES, np.float32)
    quiet[::997] = 1 / 32767
    return np.vstack([music, quiet[None]])


@pytest.mark.parametrize("truncation", ["rand_trunc", "fusion"])
def test_features_are_the_extractors_own(clips: np.ndarray, truncation: str):
    features = extractor(truncation)
    theirs = features(
        list(clips), sampling_rate=SAMPLE_RATE, return_tensors="np"
    )
    ours = clip_features(features, clips, SAMPLE_RATE)
    assert ours.dtype == np.float32
    assert ours.shape == theirs["input_features"].shape
    np.testing.assert_allclose(
        ours, theirs["input_features"], rtol=0, atol=1e-4
    )


def test_clips_of_another_length_go_through_the_extractor(clips: np.ndarray):
    features = extractor("rand_trunc")
    short = np.ascontiguousarray(clips[:, : CLIP_SAMPLES // 2])
    theirs = features(
        list(short), sampling_rate=SAMPLE_RATE, return_tensors="np"
    )
    ours = clip_features(features, short, SAMPLE_RATE)
    np.testing.assert_array_equal(ours, theirs["input_features"])


def test_the_product_runs_on_one_blas_thread_and_restores_it():
    def blas_threads() -> set[int]:
        return {
            p["num_threads"]
            for p in threadpool_info()
            if p["user_api"] == "blas"
        }

    before = blas_threads()
    with mel._one_blas_thread():
        assert blas_threads() == {1}
    assert blas_threads() == before
