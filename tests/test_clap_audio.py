"""Decoding windows with ffmpeg and embedding tracks in batches."""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from beets_audiofeatures import audio_files
from beets_audiofeatures.audio_files import (
    AudioFileError,
    check_audio_file,
    decode_timeout,
    truncation_reason,
)
from beets_audiofeatures.clap.audio import (
    DecodeError,
    WindowPolicy,
    decode_clips,
    decode_window,
    embed_tracks,
)
from beets_audiofeatures.clap.embedder import ClapEmbedder
from beets_audiofeatures.clap.model import CLIP_SAMPLES, ModelSpec
from beets_audiofeatures.runner import Failure
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
    alone = single[0]
    assert isinstance(alone, np.ndarray), alone
    for vector in batched.values():
        assert isinstance(vector, np.ndarray)
        np.testing.assert_allclose(vector, alone, atol=1e-5)
        assert np.linalg.norm(vector) == pytest.approx(1, abs=1e-5)


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe.flac")
    return folder / "pipe.flac"


def _zero_link(folder: Path) -> Path:
    (folder / "zero.flac").symlink_to("/dev/zero")
    return folder / "zero.flac"


def _socket(folder: Path) -> Path:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(folder / "sock.flac"))
    listener.close()  # the socket file stays
    return folder / "sock.flac"


def _directory(folder: Path) -> Path:
    (folder / "dir.flac").mkdir()
    return folder / "dir.flac"


def _broken_link(folder: Path) -> Path:
    (folder / "gone.flac").symlink_to(folder / "nowhere.flac")
    return folder / "gone.flac"


def _empty(folder: Path) -> Path:
    (folder / "empty.flac").write_bytes(b"")
    return folder / "empty.flac"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_fifo, "not a regular file: a FIFO"),
        (_zero_link, "not a regular file: a character device (a link to /dev/zero)"),
        (_socket, "not a regular file: a socket"),
        (_directory, "not a regular file: a directory"),
        (_broken_link, "file not found (a broken symlink)"),
        (lambda folder: folder / "missing.flac", "file not found"),
        (_empty, "file is empty"),
    ],
)  # fmt: skip
def test_paths_that_cannot_hold_audio_fail_at_once_with_the_reason(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
):
    path = make(tmp_path)
    with pytest.raises(AudioFileError) as failure:
        check_audio_file(path)
    assert str(failure.value) == reason
    started = time.monotonic()
    with pytest.raises(DecodeError, match="^" + re.escape(reason)):
        decode_clips(str(path), 200.0, WindowPolicy())
    assert time.monotonic() - started < 2  # a FIFO used to stall 300 s


def test_a_regular_file_and_a_link_to_one_pass(audio: Audio, tmp_path: Path):
    check_audio_file(audio.a120_flac)
    (tmp_path / "link.flac").symlink_to(audio.a120_flac)
    check_audio_file(tmp_path / "link.flac")
    check_audio_file(os.fsencode(tmp_path / "link.flac"))


def test_a_decoder_that_never_finishes_is_given_up(
    long_track: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(audio_files, "DECODE_TIMEOUT_BASE", 1.0)
    monkeypatch.setattr(audio_files, "DECODE_TIMEOUT_PER_SECOND", 0.01)
    stuck = tmp_path / "ffmpeg"  # a decoder that hangs, like one on a FIFO
    stuck.write_text("#!/bin/sh\nexec sleep 60\n")
    stuck.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(DecodeError, match=r"ffmpeg gave no audio within 1 s"):
        decode_window(str(long_track), 0.0, str(stuck))
    assert time.monotonic() - started < 10


def test_one_ffmpeg_decodes_every_window_of_a_track(
    long_track: Path, tmp_path: Path
):
    """Starting ffmpeg costs about what decoding a window does: one
    process for a track's windows, each as its own ffmpeg would give it."""
    calls = tmp_path / "calls"
    counting = tmp_path / "ffmpeg"
    real = shutil.which("ffmpeg")
    counting.write_text(f'#!/bin/sh\necho x >> "{calls}"\nexec {real} "$@"\n')
    counting.chmod(0o755)
    policy = WindowPolicy(count=3)
    clips = decode_clips(str(long_track), 45.0, policy, str(counting))
    assert calls.read_text() == "x\n"
    alone = [decode_window(str(long_track), s) for s in policy.starts(45.0)]
    assert np.array_equal(clips, np.stack(alone))


def test_the_decode_time_limit_grows_with_the_audio_asked_for():
    assert decode_timeout(10) < decode_timeout(600) < decode_timeout(7200)
    assert decode_timeout(7200) >= 7200 / 10  # ten times real time at least
    assert decode_timeout(0) == audio_files.DECODE_TIMEOUT_BASE


@pytest.mark.parametrize(
    ("decoded", "expected", "reason"),
    [
        (3.0, 90.0, "truncated: the audio stops at 3.0 s of the 90.0 s the library expects"),
        (81.5, 90.0, None),  # within 10 %
        (13.0, 15.0, "truncated: the audio stops at 13.0 s of the 15.0 s the library expects"),
        (13.6, 15.0, None),  # within 10 %, and at least a second
        (0.0, 0.0, None),  # nothing expected
    ],
)  # fmt: skip
def test_truncation_is_judged_and_worded_once(decoded, expected, reason):
    assert truncation_reason(decoded, expected) == reason


def test_a_truncated_file_says_where_the_expected_length_came_from(
    audio: Audio, tmp_path: Path
):
    cut = synth.truncate(audio.a120_mp3, tmp_path / "cut.mp3", 0.3)
    with pytest.raises(DecodeError) as from_library:
        decode_clips(str(cut), 15.0, WindowPolicy())
    assert str(from_library.value).startswith(
        "truncated: the audio stops at 4."
    )
    assert str(from_library.value).endswith("of the 15.0 s the library expects")
    # beets knows no length: ffprobe reads the one in the mp3's header
    with pytest.raises(DecodeError, match=r"s the file header promises$"):
        decode_clips(str(cut), 0.0, WindowPolicy())


@pytest.fixture(scope="module")
def music_47s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The same bytes every session: whether a Vorbis window comes back
    # short depends on the noise of the hi-hat.
    with synth.repeatable():
        return synth.make_wav(
            tmp_path_factory.mktemp("music") / "music.wav", 100, "Am",
            seconds=47,
        )  # fmt: skip


def _vorbis(
    source: Path, target: Path, seconds: float, rate: int, channels: int
) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source),
         "-t", str(seconds), "-ar", str(rate), "-ac", str(channels),
         *synth.ENCODERS[".ogg"], str(target)],
        check=True,
    )  # fmt: skip
    return target


# Lengths, rates and channels whose mid-file windows ffmpeg 5.1 decodes a
# few ms short (479,737 to 479,950 of 480,000 samples); each was refused
# as truncated before.
@pytest.mark.parametrize(
    ("seconds", "rate", "channels"),
    [(45, 44100, 2), (45, 44100, 1), (47, 44100, 2), (47, 48000, 2)],
)
def test_a_healthy_vorbis_file_whose_window_comes_back_short_is_embedded(
    music_47s: Path, tmp_path: Path, seconds: float, rate: int, channels: int
):
    ogg = _vorbis(music_47s, tmp_path / "healthy.ogg", seconds, rate, channels)
    policy = WindowPolicy(count=3)
    decoded = [len(decode_window(str(ogg), s)) for s in policy.starts(seconds)]
    assert min(decoded) < CLIP_SAMPLES  # the case itself: a short window
    clips = decode_clips(str(ogg), float(seconds), policy)
    assert clips.shape == (3, CLIP_SAMPLES)
    # the missing few ms are padded with silence, the rest is the window
    short = decoded.index(min(decoded))
    assert not clips[short, min(decoded) :].any()
    assert clips[short, : min(decoded)].any()


def test_the_demos_vorbis_track_is_embedded(tmp_path: Path):
    # examples/demo.py's "03 Backbeat.ogg", refused before
    ogg = synth.make_track(tmp_path / "03 Backbeat.ogg", 100, "C", 20)
    policy = WindowPolicy(count=3)
    decoded = [len(decode_window(str(ogg), s)) for s in policy.starts(20)]
    assert min(decoded) < CLIP_SAMPLES
    assert decode_clips(str(ogg), 20.0, policy).shape == (2, CLIP_SAMPLES)


@pytest.mark.parametrize("suffix", [".ogg", ".mp3", ".flac"])
def test_a_really_truncated_file_still_fails_with_where_its_audio_ends(
    music_47s: Path, tmp_path: Path, suffix: str
):
    whole = synth.encode(music_47s, tmp_path / f"whole{suffix}")
    cut = synth.truncate(whole, tmp_path / f"cut{suffix}", 0.3)
    with pytest.raises(DecodeError) as failure:
        decode_clips(str(cut), 47.0, WindowPolicy(count=3))
    match = re.fullmatch(
        r"truncated: the audio stops at ([\d.]+) s of the 47\.0 s "
        r"the library expects",
        str(failure.value),
    )
    assert match, str(failure.value)
    # where the audio really ends (about 30 % in), not a window's end
    assert 10 < float(match[1]) < 18


def _garbled(source: Path, target: Path, seconds: float) -> Path:
    """The first ``seconds`` of ``source`` in ``target``'s format, its
    middle third of bytes overwritten with noise (as the matrix's
    "garbled" files): the audio stops there, the file goes on."""
    whole = target.with_name("whole" + target.suffix)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source),
         "-t", str(seconds), *synth.ENCODERS[target.suffix], str(whole)],
        check=True,
    )  # fmt: skip
    size = whole.stat().st_size
    noise = random.Random(24).randbytes(4096)
    return synth.overwrite(whole, target, 1 / 3, size // 3, noise)


# A 14.5-s file has one window, from 2.25 s: it decodes up to the garbage
# (2 to 5 s of audio), and that was repeated to fill the window.
@pytest.mark.parametrize("suffix", [".ogg", ".flac"])
def test_a_file_whose_audio_breaks_off_mid_file_fails_as_damaged(
    music_47s: Path, tmp_path: Path, suffix: str
):
    garbled = _garbled(music_47s, tmp_path / f"garbled{suffix}", 14.5)
    with pytest.raises(DecodeError) as failure:
        decode_clips(str(garbled), 14.5, WindowPolicy(count=3))
    match = re.fullmatch(
        r"damaged: the audio breaks off at ([\d.]+) s "
        r"and the file goes on to 14\.5 s",
        str(failure.value),
    )
    assert match, str(failure.value)
    assert 2.25 < float(match[1]) < 12.25  # inside the window, not its end
