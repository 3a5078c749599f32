"""Decoding help from ffmpeg for files Essentia's bundled decoders refuse.

Essentia's wheel carries an FFmpeg 2.8 with a fixed list of decoders (no
Opus, Speex, DTS or CAF) and rejects more than two channels. Such files
are converted to a temporary 44.1 kHz stereo WAV first.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .audio_files import MissingToolError, decode_timeout, require_ffmpeg
from .errors import TrackError

#: Extensions whose usual codecs Essentia decodes itself. Anything else
#: goes through ffmpeg straight away; a file here that still fails (an
#: Opus stream in .ogg, six channels in .m4a) is retried through ffmpeg.
NATIVE_EXTENSIONS = frozenset(
    {
        ".aif", ".aiff", ".ape", ".flac", ".m4a", ".m4b", ".mp2", ".mp3",
        ".mp4", ".mpc", ".oga", ".ogg", ".tta", ".wav", ".wma", ".wv",
    }
)  # fmt: skip


class TranscodeError(TrackError):
    """ffmpeg could not produce a WAV; the message says why."""


def needs_transcode(path: bytes | str) -> bool:
    return Path(os.fsdecode(path)).suffix.lower() not in NATIVE_EXTENSIONS


def transcode_to_wav(
    source: bytes | str,
    target: Path,
    seconds: float = 0,
    expected_seconds: float = 0,
) -> None:
    """Decode ``source`` (its first ``seconds``, if given) into a 44.1 kHz,
    16-bit stereo WAV at ``target``. The ``file:`` prefix keeps any file
    name literal; no shell is involved. The decode is given up after a
    time that grows with the audio expected (``expected_seconds``)."""
    try:
        ffmpeg = require_ffmpeg("it is needed to read this format")
    except MissingToolError as exc:
        raise TranscodeError(str(exc)) from exc
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        *(["-t", f"{seconds:.3f}"] if seconds > 0 else []),
        "-i", "file:" + os.fsdecode(source), "-map", "0:a:0", "-vn",
        "-ac", "2", "-ar", "44100", "-c:a", "pcm_s16le", "-f", "wav",
        str(target),
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            command, capture_output=True, check=False,
            timeout=decode_timeout(seconds or expected_seconds),
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        target.unlink(missing_ok=True)
        raise TranscodeError(
            f"ffmpeg was still decoding after {exc.timeout:.0f} s"
        ) from None
    if proc.returncode != 0 or not target.exists():
        target.unlink(missing_ok=True)
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise TranscodeError(lines[-1] if lines else "ffmpeg failed")


def transcode_for_browser(
    source: bytes | str, target: Path, lossless: bool, expected_seconds: float
) -> None:
    """Re-encode ``source`` into a file every browser plays: FLAC from a
    lossless source (ALAC, APE, WavPack: nothing is lost), else MP3 at
    256 kbit/s. The format follows ``target``'s name (``.flac`` or
    ``.mp3``). Written beside ``target`` and renamed over it when whole;
    no shell is involved."""
    try:
        ffmpeg = require_ffmpeg("it is needed to play this format in a browser")
    except MissingToolError as exc:
        raise TranscodeError(str(exc)) from exc
    codec = (
        ["-c:a", "flac", "-f", "flac"]
        if lossless
        else ["-c:a", "libmp3lame", "-b:a", "256k", "-f", "mp3"]
    )
    partial = target.with_name(f".{target.name}.part")
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-i", "file:" + os.fsdecode(source), "-map", "0:a:0", "-vn",
        *codec, str(partial),
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            command, capture_output=True, check=False,
            timeout=decode_timeout(expected_seconds),
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        partial.unlink(missing_ok=True)
        raise TranscodeError(
            f"ffmpeg was still transcoding after {exc.timeout:.0f} s"
        ) from None
    if proc.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise TranscodeError(lines[-1] if lines else "ffmpeg failed")
    os.replace(partial, target)
