"""The log-mel features of whole 10-s clips, as the model's own
``ClapFeatureExtractor`` computes them, in one vectorised pass.

transformers' extractor runs one FFT per frame in a Python loop, then
one product with the filter bank, which numpy splits over every core:
0.29 CPU-s a track of three clips on two busy cores (a sixth of its CLAP
time on the torch route, a quarter on onnx int8), most of it BLAS
threads waiting for each other and then spinning beside the model's own.
Here the product runs on one thread. Every clip the plugin embeds is exactly the
extractor's ``max_length``, so only its plain path (no crop, no padding)
is needed: frames cut by striding, one batched real FFT, the
extractor's own window and filter bank, the same complex64 rounding, and
``power_to_db`` as it calls it. The features agree with the extractor's
to float32 rounding (a test holds them to it). Any other extractor or clip
length goes through the extractor itself.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np

#: Frames of the sliding STFT computed in one block: bounds the float64
#: scratch memory (about 8 MB a block) whatever the batch.
_FRAMES_PER_BLOCK = 1024


def clip_features(extractor: Any, clips: np.ndarray, rate: int) -> np.ndarray:
    """float32 ``input_features`` of ``clips`` (N x samples), shaped
    (N, 1 or 4, frames, mel bins) as the extractor answers."""
    if not _plain_path(extractor, clips, rate):
        out = extractor(list(clips), sampling_rate=rate, return_tensors="np")
        return np.asarray(out["input_features"], np.float32)
    fused = extractor.truncation == "fusion"
    filters = extractor.mel_filters if fused else extractor.mel_filters_slaney
    with _one_blas_thread():
        mels = np.stack([_log_mel(extractor, clip, filters) for clip in clips])
    copies = 4 if fused else 1  # the fusion input is the mel four times
    return np.repeat(mels[:, None], copies, axis=1)


def _plain_path(extractor: Any, clips: np.ndarray, rate: int) -> bool:
    """Whether ``extractor`` would compute one whole-clip mel per clip:
    a CLAP extractor, clips exactly its length at its rate."""
    from transformers import ClapFeatureExtractor

    return (
        type(extractor) is ClapFeatureExtractor
        and clips.ndim == 2
        and clips.shape[1] == extractor.nb_max_samples
        and rate == extractor.sampling_rate
        and extractor.truncation in ("fusion", "rand_trunc")
    )


def _log_mel(
    extractor: Any, clip: np.ndarray, filters: np.ndarray
) -> np.ndarray:
    """One clip's log-mel, frames by bins: transformers' ``spectrogram``
    (centred, reflect-padded, periodic Hann, power 2, dB) without its
    per-frame loop."""
    from transformers.audio_utils import power_to_db, window_function

    length = extractor.fft_window_size
    hop = extractor.hop_length
    window = window_function(length, "hann").astype(np.float64)
    padded = np.pad(clip, length // 2, mode="reflect").astype(np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(padded, length)[::hop]
    power = np.empty((len(frames), length // 2 + 1))
    for start in range(0, len(frames), _FRAMES_PER_BLOCK):
        block = frames[start : start + _FRAMES_PER_BLOCK] * window
        # The extractor keeps each frame's spectrum as complex64.
        spectrum = np.fft.rfft(block, axis=-1).astype(np.complex64)
        power[start : start + len(block)] = (
            np.abs(spectrum, dtype=np.float64) ** 2
        )
    mel = np.maximum(1e-10, filters.T @ power.T)
    decibels = power_to_db(mel, 1.0, 1e-10, None)
    return np.asarray(decibels, np.float32).T


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """numpy's products on one thread meanwhile (a no-op without
    threadpoolctl): the filter bank's product is small, and a second
    thread only waits, then spins beside the model's threads."""
    controller = _blas_controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


@functools.cache
def _blas_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()
