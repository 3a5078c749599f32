"""Real music with a known tempo and key, synthesised with sox and ffmpeg.

A kick on every beat, a hi-hat on the off-beats and plucked-string
chords, one per bar (Am–Dm–E–Am or C–F–G–C), at any tempo and length;
encoded to any format ffmpeg writes. Used by the tests, the demo and
the benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

RATE = 44100
BEET = Path(sys.executable).with_name("beet")

PROGRESSIONS = {
    "Am": (
        ("A2", "A3", "C4", "E4"),
        ("D3", "D4", "F4", "A4"),
        ("E2", "E3", "G#3", "B3"),
        ("A2", "A3", "C4", "E4"),
    ),
    "C": (
        ("C3", "C4", "E4", "G4"),
        ("F2", "F3", "A3", "C4"),
        ("G2", "G3", "B3", "D4"),
        ("C3", "C4", "E4", "G4"),
    ),
}

#: ffmpeg arguments per output extension.
ENCODERS = {
    ".wav": ["-c:a", "pcm_s16le"],
    ".flac": ["-c:a", "flac"],
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
    ".ogg": ["-c:a", "libvorbis", "-q:a", "5"],
    ".m4a": ["-c:a", "aac", "-b:a", "192k"],
    ".opus": ["-c:a", "libopus", "-b:a", "128k"],
    ".aac": ["-c:a", "aac", "-b:a", "192k", "-f", "adts"],
}


def _run(*command: str | Path) -> None:
    subprocess.run([str(c) for c in command], check=True, capture_output=True)


def _sox(*args: str | Path) -> None:
    _run("sox", "-V1", *args)


def make_wav(
    target: Path, bpm: float = 120, key: str = "Am", seconds: float = 15
) -> Path:
    """A 44.1 kHz 16-bit stereo WAV of drums and chords."""
    beat = 60.0 / bpm
    bar = 4 * beat
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        synth = ["-n", "-r", str(RATE), "-c", "2"]
        _sox(
            *synth,
            d / "kick.wav",
            "synth",
            "0.12",
            "sine",
            "150-45",
            "fade",
            "q",
            "0.002",
            "0.12",
            "0.1",
            "pad",
            "0",
            f"{beat - 0.12}",
        )
        _sox(
            *synth,
            d / "hat.wav",
            "synth",
            "0.03",
            "whitenoise",
            "vol",
            "0.3",
            "highpass",
            "6000",
            "fade",
            "q",
            "0.001",
            "0.03",
            "0.025",
            "pad",
            f"{beat / 2}",
            f"{beat / 2 - 0.03}",
        )
        _sox("-m", d / "kick.wav", d / "hat.wav", d / "beat.wav")
        beats = int(seconds / beat) + 1
        _sox(d / "beat.wav", d / "beats.wav", "repeat", str(beats - 1))
        chords = []
        for n, notes in enumerate(PROGRESSIONS[key]):
            chord = d / f"chord{n}.wav"
            plucks = [p for note in notes for p in ("pluck", note)]
            _sox(
                *synth,
                chord,
                "synth",
                f"{bar}",
                *plucks,
                "fade",
                "0.01",
                f"{bar}",
                "0.05",
            )
            chords.append(chord)
        _sox(*chords, d / "prog.wav")
        repeats = int(seconds / (4 * bar))
        _sox(d / "prog.wav", d / "progs.wav", "repeat", str(repeats))
        _sox(
            "-m",
            "-v",
            "0.9",
            d / "beats.wav",
            "-v",
            "0.6",
            d / "progs.wav",
            "-b",
            "16",
            target,
            "trim",
            "0",
            f"{seconds}",
            "norm",
            "-1",
        )
    return target  # fmt: skip


def encode(source: Path, target: Path, channels: int | None = None) -> Path:
    """``source`` re-encoded by ffmpeg in the format ``target`` names."""
    extra = ["-ac", str(channels)] if channels else []
    _run(
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", source,
        *extra, *ENCODERS[target.suffix], target,
    )  # fmt: skip
    return target


def make_track(
    target: Path,
    bpm: float = 120,
    key: str = "Am",
    seconds: float = 15,
    channels: int | None = None,
) -> Path:
    """A synthesised track in the format of ``target``'s extension."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".wav" and not channels:
        return make_wav(target, bpm, key, seconds)
    with tempfile.TemporaryDirectory() as tmp:
        wav = make_wav(Path(tmp) / "src.wav", bpm, key, seconds)
        return encode(wav, target, channels)


def make_silence(target: Path, seconds: float = 10) -> Path:
    _sox("-n", "-r", str(RATE), "-c", "2", "-b", "16", target,
         "trim", "0", f"{seconds}")  # fmt: skip
    return target


def truncate(source: Path, target: Path, keep: float) -> Path:
    """The first ``keep`` fraction of ``source``'s bytes."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def have_tools() -> bool:
    return bool(shutil.which("sox") and shutil.which("ffmpeg"))


def library_config(
    root: Path, extra_config: str = ""
) -> tuple[dict[str, str], Path]:
    """A beets configuration under ``root`` with the plugin on, and an
    empty library; the environment that selects it, and the database."""
    config = root / "config"
    config.mkdir()
    db = root / "library.db"
    (config / "config.yaml").write_text(
        f"directory: {root / 'music'}\nlibrary: {db}\n"
        "plugins: audiofeatures\nimport: {copy: yes, write: no}\n"
        + extra_config
    )
    return {**os.environ, "BEETSDIR": str(config)}, db


def import_library(
    root: Path, incoming: Path, extra_config: str = ""
) -> tuple[dict[str, str], Path]:
    """A beets library under ``root`` with the plugin on and the files of
    ``incoming`` imported as-is by the real ``beet``; returns the
    environment that selects it, and the database path."""
    env, db = library_config(root, extra_config)
    subprocess.run(
        [BEET, "import", "-A", "-q", str(incoming)], env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    return env, db


def library_of_copies(
    root: Path, source: Path, count: int, plugin_config: str
) -> tuple[dict[str, str], Path]:
    """A library of ``count`` FLAC copies of ``source``, imported by the
    real ``beet`` with ``plugin_config`` as the ``audiofeatures`` section;
    offline (the tests' models are local)."""
    incoming = root / "incoming"
    incoming.mkdir()
    for n in range(count):
        encode(source, incoming / f"{n}.flac")
    env, db = import_library(
        root, incoming, f"audiofeatures: {plugin_config}\n"
    )
    env["HF_HUB_OFFLINE"] = "1"
    return env, db


def group_has_exited(pgid: int, seconds: float) -> bool:
    """Whether every process of group ``pgid`` is gone within ``seconds``
    (workers, decoders: nothing of a stopped run may keep running)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def repeatable() -> Iterator[None]:
    """Meanwhile sox seeds its noise (the hi-hat) with a fixed number, so
    the same call makes the same bytes: a file's encoding, and whatever a
    decoder does with it, is the same in every test session."""
    before = os.environ.get("SOX_OPTS")
    os.environ["SOX_OPTS"] = "-R"
    try:
        yield
    finally:
        if before is None:
            del os.environ["SOX_OPTS"]
        else:
            os.environ["SOX_OPTS"] = before


def convert(
    source: Path,
    target: Path,
    codec: Sequence[str],
    *,
    rate: int | None = None,
    channels: int | None = None,
) -> Path:
    """``source`` resampled to ``rate`` Hz and mixed to ``channels``, then
    encoded by ffmpeg with the ``codec`` arguments (an encoder that cannot
    write ``rate`` gets the nearest rate it can, as ffmpeg chooses)."""
    extra = [
        *(["-af", f"aresample={rate}"] if rate else []),
        *(["-ac", str(channels)] if channels else []),
    ]
    _run(
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", source,
        *extra, *codec, target,
    )  # fmt: skip
    return target


def overwrite(
    source: Path, target: Path, start: float, size: int, fill: bytes
) -> Path:
    """``source`` with ``size`` bytes from ``start`` (a fraction of its
    length) replaced by ``fill``, repeated as needed."""
    data = bytearray(source.read_bytes())
    offset = int(len(data) * start)
    size = min(size, len(data) - offset)
    data[offset : offset + size] = (fill * (size // len(fill) + 1))[:size]
    target.write_bytes(bytes(data))
    return target
