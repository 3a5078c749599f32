"""The matrix: one real file for each row of a covering design over the
formats, lengths, channel counts and sample rates a beets library holds,
and damaged copies of one file per format.

Not the full product (10 x 4 x 2 x 4 = 320 files): every pair of values
of any two factors meets in at least one row (``uncovered_pairs`` says
which would not). The rows are the 40 pairs of format and length; the
rate is a Latin square over them (each format meets every rate, each
length every rate) and the channel count alternates so that it meets
every format, length and rate. The order of ``FORMATS`` puts the 96 kHz
four-minute rows on lossy codecs, which keeps the files small.

The music is ``synth.make_wav``'s, with a known tempo and key, made once
per length and tune and then resampled, mixed and encoded per row.
"""

from __future__ import annotations

import itertools
import random
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests import synth


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    codec: tuple[str, ...]  # ffmpeg's arguments
    #: the rates the codec writes; None: any
    rates: frozenset[int] | None = None

    def file_rate(self, rate: int) -> int:
        """The rate of a file made from ``rate`` Hz audio: the nearest one
        the codec writes (MP3 has no 96 kHz, Opus is always 48 kHz)."""
        if self.rates is None or rate in self.rates:
            return rate
        return min(self.rates, key=lambda r: (abs(r - rate), r))


MP3_RATES = frozenset({22050, 44100, 48000})

FORMATS = (
    Format("vorbis", ".ogg", ("-c:a", "libvorbis", "-q:a", "5")),
    Format("flac", ".flac", ("-c:a", "flac")),
    Format("wav", ".wav", ("-c:a", "pcm_s16le")),
    Format("aiff", ".aiff", ("-c:a", "pcm_s16be")),
    Format("aac", ".m4a", ("-c:a", "aac", "-b:a", "160k")),
    Format("mp3-cbr", ".mp3", ("-c:a", "libmp3lame", "-b:a", "128k"), MP3_RATES),
    Format("alac", ".m4a", ("-c:a", "alac")),
    Format("wavpack", ".wv", ("-c:a", "wavpack")),
    Format("opus", ".opus", ("-c:a", "libopus", "-b:a", "96k"), frozenset({48000})),
    Format("mp3-vbr", ".mp3", ("-c:a", "libmp3lame", "-q:a", "2"), MP3_RATES),
)  # fmt: skip
LENGTHS = (5.0, 14.5, 45.0, 240.0)
CHANNELS = (1, 2)
RATES = (22050, 44100, 48000, 96000)
#: Two tunes (tempo, key); a row's tune alternates with its format, so
#: that values handed to the wrong file would show.
TUNES = ((120.0, "Am"), (90.0, "C"))


@dataclass(frozen=True)
class Row:
    """One file of the matrix, as designed (no file yet)."""

    format: Format
    seconds: float
    channels: int
    rate: int  # of the audio given to the encoder
    bpm: float
    key: str

    @property
    def name(self) -> str:
        """Unique, readable, and a test id."""
        layout = "mono" if self.channels == 1 else "stereo"
        return f"{self.format.name}-{self.seconds:g}s-{layout}-{self.rate}"

    @property
    def file_rate(self) -> int:
        return self.format.file_rate(self.rate)

    @property
    def filename(self) -> str:
        return self.name + self.format.suffix


def design() -> list[Row]:
    """The rows: each format at each length; the rate and channel count
    as the module docstring says."""
    rows = []
    for f, codec in enumerate(FORMATS):
        bpm, key = TUNES[f % len(TUNES)]
        for n, seconds in enumerate(LENGTHS):
            rate = RATES[(n + f) % len(RATES)]
            channels = CHANNELS[(n + f // 2) % len(CHANNELS)]
            rows.append(Row(codec, seconds, channels, rate, bpm, key))
    return rows


#: The factors of the design and each row's value of them.
FACTORS = {
    "format": (tuple(f.name for f in FORMATS), lambda r: r.format.name),
    "length": (LENGTHS, lambda r: r.seconds),
    "channels": (CHANNELS, lambda r: r.channels),
    "rate": (RATES, lambda r: r.rate),
}


def uncovered_pairs(
    rows: Sequence[Row],
) -> list[tuple[str, object, str, object]]:
    """Each pair of values of two factors that no row holds."""
    missing = []
    for (a, (a_values, a_of)), (b, (b_values, b_of)) in itertools.combinations(
        FACTORS.items(), 2
    ):
        met = {(a_of(row), b_of(row)) for row in rows}
        missing += [
            (a, x, b, y)
            for x, y in itertools.product(a_values, b_values)
            if (x, y) not in met
        ]
    return missing


DESIGN = design()

#: The kinds of damage done to the 14.5-s file of each format, each a
#: function of the healthy file and the damaged file to write.
DAMAGES = {
    # cut at 30 % of its bytes, as an interrupted copy leaves it
    "truncated": lambda src, dst: synth.truncate(src, dst, 0.3),
    # its middle third overwritten with noise
    "garbled": lambda src, dst: synth.overwrite(
        src,
        dst,
        1 / 3,
        src.stat().st_size // 3,
        random.Random(24).randbytes(4096),
    ),
    # its first 4 KiB (the container's header) zeroed
    "headless": lambda src, dst: synth.overwrite(src, dst, 0.0, 4096, b"\0"),
}
#: Any bytes are PCM audio: noise in a WAV or AIFF file is not damage a
#: decoder could notice.
PCM = frozenset({"wav", "aiff"})
#: The length of the rows that are damaged.
DAMAGED_LENGTH = 14.5


@dataclass(frozen=True)
class Damaged:
    """A damaged copy of ``row``'s file."""

    row: Row
    damage: str

    @property
    def name(self) -> str:
        return f"{self.row.format.name}-{self.damage}"

    @property
    def filename(self) -> str:
        return self.name + self.row.format.suffix


DAMAGED = [
    Damaged(row, damage)
    for row in DESIGN
    if row.seconds == DAMAGED_LENGTH
    for damage in DAMAGES
    if not (damage == "garbled" and row.format.name in PCM)
]


class Matrix:
    """The design's files and their damaged copies, under ``root``."""

    def __init__(self, root: Path, workers: int = 2) -> None:
        self.root = root
        tunes = root / "tunes"
        tunes.mkdir(parents=True)
        with synth.repeatable(), ThreadPoolExecutor(workers) as pool:
            sources = {
                (seconds, bpm, key): pool.submit(
                    synth.make_wav,
                    tunes / f"{bpm:g}-{key}-{seconds:g}s.wav",
                    bpm,
                    key,
                    seconds,
                )
                for seconds in LENGTHS
                for bpm, key in TUNES
            }
            # the long ones first: they take longest
            rows = sorted(DESIGN, key=lambda row: -row.seconds)
            made = [
                pool.submit(
                    self._encode,
                    row,
                    sources[row.seconds, row.bpm, row.key].result(),
                )
                for row in rows
            ]
            for future in made:
                future.result()
        for damaged in DAMAGED:
            DAMAGES[damaged.damage](self.path(damaged.row), self.path(damaged))
        # the tunes are encoded: 170 MB less in the temporary folder
        shutil.rmtree(tunes)

    def _encode(self, row: Row, source: Path) -> Path:
        return synth.convert(
            source,
            self.path(row),
            row.format.codec,
            rate=row.rate,
            channels=row.channels,
        )

    def path(self, file: Row | Damaged) -> Path:
        return self.root / file.filename
