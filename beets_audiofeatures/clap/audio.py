"""Audio for CLAP: which 10-s windows of a track to hear, decoding just
those with ffmpeg, and turning tracks into vectors in batches.

CLAP hears 10 s at a time. A track's vector is the re-normalised mean of
the vectors of a few evenly spaced windows, chosen from the track's
length alone, so the same file always gives the same vector. Decoding
(ffmpeg processes, in threads) runs ahead while the model works on the
previous batch; :class:`EmbeddingLoop` is that, as the runner's
executor.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from ..audio_files import (
    HEADER_PROMISES,
    LIBRARY_EXPECTS,
    TRUNCATION_SLACK,
    AudioFileError,
    check_audio_file,
    decode_timeout,
    require_ffmpeg,
    truncation_reason,
)
from ..errors import TrackError
from ..runner import Failure, Job
from ..vectors import unit
from .model import CLIP_SAMPLES, CLIP_SECONDS, SAMPLE_RATE

T = TypeVar("T")
#: -70 dBFS: quieter than any music, louder than dither.
SILENCE_RMS = 10 ** (-70 / 20)


#: What the missing-ffmpeg line says needs it.
CLAP_NEEDS = "CLAP decodes audio with it"


class DecodeError(TrackError):
    """ffmpeg could not give us audio for a file."""


@dataclass(frozen=True)
class WindowPolicy:
    """How many 10-s windows per track, and how far from the ends."""

    count: int = 3
    #: Skip this share of the track at each end (intros, fade-outs).
    margin: float = 0.1

    def starts(self, duration: float) -> list[float]:
        """Start times (s) of the windows for a track of ``duration`` s."""
        if duration <= CLIP_SECONDS or self.count < 1:
            return [0.0]
        lead = duration * self.margin
        span = max(0.0, duration - 2 * lead - CLIP_SECONDS)
        count = min(self.count, max(1, int(duration // CLIP_SECONDS)))
        if count == 1:
            return [round(lead + span / 2, 3)]
        return [round(lead + span * i / (count - 1), 3) for i in range(count)]

    def describe(self) -> dict[str, float]:
        return {"windows": self.count, "margin": self.margin}


def probe_duration(path: str) -> float:
    """Length in seconds as ffprobe reports it (for items whose length
    beets does not know)."""
    ffprobe = shutil.which("ffprobe") or "ffprobe"
    try:
        out = subprocess.run(
            [
                ffprobe,
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "default=nw=1:nk=1",
                "file:" + path,
            ],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        return float(out.strip() or 0)
    except (subprocess.SubprocessError, ValueError, OSError):
        return 0.0


def decode_window(
    path: str, start: float, ffmpeg: str = "ffmpeg"
) -> np.ndarray:
    """Up to 10 s of the track from ``start`` (``decode_windows``)."""
    return decode_windows(path, [start], ffmpeg)[0]


def decode_windows(
    path: str, starts: Sequence[float], ffmpeg: str = "ffmpeg"
) -> list[np.ndarray]:
    """Up to 10 s of mono 48 kHz float audio from each start, as LAION
    trained: clipped and quantised to 16 bits. One ffmpeg for them all
    (starting ffmpeg costs about as much as decoding a window): each
    window is an input of its own, seeked as one ffmpeg per window
    would, and an output to its own pipe, read while ffmpeg writes. No
    shell is involved, and the ``file:`` prefix keeps names with colons
    or dashes literal."""
    command = [ffmpeg, "-nostdin", "-v", "error"]
    for start in starts:
        command += [
            "-ss", f"{start:.3f}", "-t", str(CLIP_SECONDS),
            "-i", "file:" + path,
        ]  # fmt: skip
    pipes = [os.pipe() for _ in starts]
    for n, (_, write) in enumerate(pipes):
        command += [
            "-map", f"{n}:a:0", "-ac", "1", "-ar", str(SAMPLE_RATE),
            "-f", "s16le", f"pipe:{write}",
        ]  # fmt: skip
    # Seeking can mean reading up to a start: the limit grows with it.
    timeout = decode_timeout(max(starts) + CLIP_SECONDS * len(starts))
    with ThreadPoolExecutor(len(pipes)) as readers:
        try:
            run = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, pass_fds=[w for _, w in pipes],
            )  # fmt: skip
        except BaseException:
            for read, _ in pipes:
                os.close(read)
            raise
        finally:
            for _, write in pipes:
                os.close(write)
        outputs = [readers.submit(_read_all, read) for read, _ in pipes]
        with run:  # whatever happens, ffmpeg ends with this call
            try:
                _, stderr = run.communicate(timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                run.kill()
                raise DecodeError(
                    f"ffmpeg gave no audio within {timeout:.0f} s for the "
                    f"{len(starts) * CLIP_SECONDS} s from {min(starts):.1f} s"
                ) from exc
            except BaseException:  # a stop (Ctrl-C) while it decodes
                run.kill()
                raise
        decoded = [output.result() for output in outputs]
    if run.returncode != 0:
        raise DecodeError(
            f"ffmpeg could not decode it: {_reason(stderr, path)}"
        )
    return [
        np.frombuffer(data[: len(data) // 2 * 2], "<i2")[:CLIP_SAMPLES].astype(
            np.float32
        )
        / 32767.0
        for data in decoded
    ]


def _read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as pipe:
        return pipe.read()


#: Where the audio ends is counted at this rate, 8-bit mono: cheap to
#: pipe, and a sample is 0.125 ms.
_COUNT_RATE = 8000

#: A window from the middle of a file may come back this much short (s)
#: and still be padded: ffmpeg 5.1 returns mid-file Vorbis windows up to
#: about 6 ms short after a seek, 40 times less; a gap this long changes
#: 2.5 % of a window at most, while the damage that matters (a garbled
#: stretch, where decoding stops or skips ahead) loses seconds.
GAP_TOLERANCE = 0.25


def audio_end(
    path: str,
    start: float,
    expected: float,
    ffmpeg: str = "ffmpeg",
) -> float:
    """Where the audio really ends (s), found by decoding it from
    ``start`` (where it is known to reach) to its end and counting the
    samples. ``expected`` (the length the file should have) sets the time
    limit. A damaged tail ends the count: ffmpeg's complaints are not
    read."""
    command = [
        ffmpeg, "-nostdin", "-v", "quiet", "-ss", f"{start:.3f}",
        "-i", "file:" + path, "-map", "0:a:0", "-ac", "1",
        "-ar", str(_COUNT_RATE), "-f", "u8", "-",
    ]  # fmt: skip
    timeout = decode_timeout(max(expected, CLIP_SECONDS))
    decoded = 0
    timed_out = threading.Event()
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as process:
        assert process.stdout is not None

        def give_up() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(timeout, give_up)
        timer.start()
        try:
            while chunk := process.stdout.read(1 << 16):
                decoded += len(chunk)
        finally:
            timer.cancel()
    if timed_out.is_set():
        raise DecodeError(
            f"ffmpeg could not find where the audio ends within {timeout:.0f} s"
        )
    return start + decoded / _COUNT_RATE


def audio_reaches(path: str, point: float, timeout: float) -> bool:
    """Whether the file holds audio at ``point`` s, by the timestamps of
    the frames ffprobe reads after seeking there (a seek past the end of
    a cut file lands on its last frames, whose timestamps say so)."""
    ffprobe = shutil.which("ffprobe") or "ffprobe"
    command = [
        # A seek can land a little early, and the interval counts from
        # there: read from half a second early for two seconds.
        ffprobe, "-v", "quiet",
        "-read_intervals", f"{max(0.0, point - 0.5):.3f}%+2",
        "-select_streams", "a:0",
        "-show_entries", "frame=pts_time:format=start_time",
        "-of", "json", "file:" + path,
    ]  # fmt: skip
    try:
        run = subprocess.run(command, capture_output=True, timeout=timeout)
        found = json.loads(run.stdout or b"{}")
        start = float(found.get("format", {}).get("start_time") or 0)
        times = [
            float(frame["pts_time"])
            for frame in found.get("frames", [])
            if "pts_time" in frame
        ]
    except (subprocess.SubprocessError, OSError, ValueError, TypeError):
        return False  # not known: the audio is counted instead
    return bool(times) and max(times) - start >= point


def _truncation(
    path: str, known: float, expected: float, expected_by: str, ffmpeg: str
) -> str | None:
    """Why the file is truncated, judged by where its audio really ends
    (it reaches ``known`` s at least), or None. Whether there is audio a
    second before ``expected`` is asked first: a healthy file has it, and
    nothing more is decoded; otherwise the audio is counted to its end."""
    tail = max(known, expected - TRUNCATION_SLACK)
    if audio_reaches(path, tail, decode_timeout(TRUNCATION_SLACK)):
        return None
    end = audio_end(path, known, expected, ffmpeg)
    return truncation_reason(end, expected, expected_by)


def gap_reason(broken_at: float, goes_on_to: float) -> str:
    """Why a file whose audio stops at ``broken_at`` s, although the file
    holds audio up to ``goes_on_to`` s, is refused: a gap, not a cut."""
    return (
        f"damaged: the audio breaks off at {max(0.0, broken_at):.1f} s "
        f"and the file goes on to {goes_on_to:.1f} s"
    )


def _reason(stderr: bytes, path: str) -> str:
    """ffmpeg's first complaint, without its ``[demuxer @ 0x...]`` tag or
    the file name (our message names the file already)."""
    for line in stderr.decode(errors="replace").splitlines():
        line = re.sub(
            r"^\[[^]]*\] ", "", line.replace("file:" + path, "")
        ).strip(": ")
        if line:
            return line
    return "no reason given"


def fill_clip(samples: np.ndarray) -> np.ndarray:
    """Exactly 10 s: a shorter recording is repeated, then zero-padded
    (LAION's "repeatpad")."""
    if not len(samples):
        raise DecodeError("no audio could be decoded")
    if len(samples) >= CLIP_SAMPLES:
        return samples[:CLIP_SAMPLES]
    repeats = CLIP_SAMPLES // len(samples)
    clip = np.zeros(CLIP_SAMPLES, np.float32)
    tiled = np.tile(samples, repeats)
    clip[: len(tiled)] = tiled
    return clip


def decode_clips(
    path: str, duration: float, policy: WindowPolicy, ffmpeg: str = "ffmpeg"
) -> np.ndarray:
    """The track's windows as a (windows x 480000) array. ``duration`` is
    the length beets recorded; 0 asks ffprobe."""
    try:
        check_audio_file(path)
    except AudioFileError as exc:
        raise DecodeError(str(exc)) from exc
    expected_by = LIBRARY_EXPECTS
    if duration <= 0:
        duration = probe_duration(path)
        expected_by = HEADER_PROMISES
    clips = []
    whole = False  # the audio is known to reach (about) its length
    starts = policy.starts(duration)
    for start, samples in zip(
        starts, decode_windows(path, starts, ffmpeg), strict=True
    ):
        wanted = SAMPLE_RATE * min(CLIP_SECONDS, duration - start)
        window_end = start + len(samples) / SAMPLE_RATE
        # A window short of the end by little is padded. Further from
        # the end, a short window only raises suspicion: where the audio
        # really ends decides whether the file is truncated. One that is
        # not had audio to fill the window, so a window short by more than
        # a seek's few ms (Vorbis) lost it to damage on the way.
        if len(samples) < wanted and truncation_reason(
            window_end, duration, expected_by
        ):
            if not whole:
                known = window_end if len(samples) else 0.0
                if reason := _truncation(
                    path, known, duration, expected_by, ffmpeg
                ):
                    raise DecodeError(reason)
                whole = True
            if wanted - len(samples) > GAP_TOLERANCE * SAMPLE_RATE:
                raise DecodeError(gap_reason(window_end, duration))
        clips.append(fill_clip(samples))
    if not clips:
        raise DecodeError("no audio could be decoded")
    if max(float(np.sqrt(np.mean(clip**2))) for clip in clips) < SILENCE_RMS:
        raise DecodeError("the audio is silent")
    return np.stack(clips)


@dataclass
class _Pending(Generic[T]):
    key: T
    clips: Future[np.ndarray]
    windows: int  # expected; a truncated file may give fewer


def embed_tracks(
    tracks: Iterable[tuple[T, str, float]],
    embed: Callable[[np.ndarray], np.ndarray],
    policy: WindowPolicy,
    *,
    decoders: int = 2,
    batch_clips: int = 8,
) -> Iterator[tuple[T, np.ndarray | Failure]]:
    """Yield ``(key, unit vector or Failure)`` for ``(key, path, length)``
    tracks: a failure as soon as it is known, ahead of tracks still
    waiting for the model, so only the keys say which result is whose.
    ``decoders`` threads run ffmpeg ahead of the model; ``embed`` gets up
    to ``batch_clips`` clips at a time."""
    ffmpeg = require_ffmpeg(CLAP_NEEDS)
    queue = iter(tracks)
    pending: deque[_Pending[T]] = deque()
    ahead = max(2 * decoders, batch_clips)
    with ThreadPoolExecutor(max(1, decoders), "clap-decode") as pool:

        def refill() -> None:
            while len(pending) < ahead:
                try:
                    key, path, length = next(queue)
                except StopIteration:
                    return
                future = pool.submit(decode_clips, path, length, policy, ffmpeg)
                windows = len(policy.starts(length)) if length > 0 else 1
                pending.append(_Pending(key, future, windows))

        refill()
        try:
            while pending:
                batch: list[tuple[T, np.ndarray]] = []
                size = 0
                while pending and (
                    not batch or size + pending[0].windows <= batch_clips
                ):
                    job = pending.popleft()
                    try:
                        clips = job.clips.result()
                    except DecodeError as exc:
                        yield job.key, Failure(str(exc))
                        refill()
                        continue
                    batch.append((job.key, clips))
                    size += len(clips)
                    refill()
                if batch:
                    yield from _embed_batch(batch, embed)
        finally:
            for job in pending:
                job.clips.cancel()


def _embed_batch(
    batch: list[tuple[T, np.ndarray]], embed: Callable[[np.ndarray], np.ndarray]
) -> Iterator[tuple[T, np.ndarray | Failure]]:
    try:
        vectors = embed(np.concatenate([clips for _, clips in batch]))
    except Exception as exc:  # a model failure costs this batch only
        reason = f"the model failed: {type(exc).__name__}: {exc}"
        for key, _ in batch:
            yield key, Failure(reason)
        return
    row = 0
    for key, clips in batch:
        mean = vectors[row : row + len(clips)].mean(axis=0)
        row += len(clips)
        yield (
            key,
            unit(mean),
        )


@dataclass(frozen=True)
class Track:
    """What embedding one track needs: its file, and its length as beets
    recorded it (0: ask ffprobe)."""

    path: str
    length: float


class EmbeddingLoop:
    """The CLAP executor: ``decoders`` threads run ffmpeg ahead of one
    model, which gets up to ``batch_clips`` windows at a time. ``load``
    gives the model's audio embedding function (called once, on the
    first run that has work)."""

    def __init__(
        self,
        load: Callable[[], Callable[[np.ndarray], np.ndarray]],
        policy: WindowPolicy,
        *,
        decoders: int = 2,
        batch_clips: int = 8,
    ) -> None:
        self.load = load
        self.policy = policy
        self.decoders = decoders
        self.batch_clips = batch_clips

    def run(
        self, jobs: Iterable[Job[Track]]
    ) -> Iterator[tuple[int, np.ndarray | Failure]]:
        jobs = list(jobs)
        if not jobs:
            return
        yield from embed_tracks(
            ((job.id, job.task.path, job.task.length) for job in jobs),
            self.load(),
            self.policy,
            decoders=self.decoders,
            batch_clips=self.batch_clips,
        )

    def close(self, wait: bool = True) -> None:
        """Nothing outlives a run: the decoder threads end with it."""
