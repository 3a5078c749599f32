"""The executor interface every analysis runs through, and what a run
counts.

A run is a plan (what each library item needs), jobs keyed by item id
(:class:`Job`: the id and the plain values a worker needs, never a beets
object), an :class:`Executor` that computes them somewhere and yields
``(job id, result or Failure)`` pairs, as each finishes, and a store
step that puts each result on its item at once (the beets side,
``beetsplug.audiofeatures.analysis.runner``). Executors: the crash-tolerant local
process pool (``process_pool``) for Essentia, the decode-threads and
model loop (``clap.audio``) for CLAP, the zero-shot tagger
(``clap.zero_shot``) and Dask (``cluster``).

The one result contract: a result travels with its job's id, and is
matched to its job by that id only, never by its position among the
results. A batch whose results do not name its jobs exactly once each
(:func:`results_by_id`) is an internal error: nothing of it is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

from tqdm import tqdm

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
T_contra = TypeVar("T_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)


@dataclass(frozen=True)
class Failure:
    """Why a job gave no result (one line, without the file's name)."""

    reason: str


@dataclass(frozen=True)
class Job(Generic[T_co]):
    """One item's work: its id in the library, and what a worker needs
    to compute it (plain values: paths, lengths, flags)."""

    id: int
    task: T_co


class Executor(Protocol[T_contra, R_co]):
    """Computes jobs somewhere and yields ``(job id, result)`` for each,
    in the order they finish; a job that fails yields a :class:`Failure`,
    and the others go on. Kept between calls (an import calls it once per
    album) until :meth:`close`."""

    def run(
        self, jobs: Iterable[Job[T_contra]]
    ) -> Iterator[tuple[int, R_co | Failure]]: ...

    def close(self, wait: bool = True) -> None:
        """Stop its workers: politely with ``wait``, at once otherwise."""
        ...


@dataclass(frozen=True)
class RemoteWork(Generic[T, R_co]):
    """An analysis as workers run it; everything here is pickled.

    ``factory`` builds the handler once per worker process; with
    ``batched`` it takes a list of ``(job id, task)`` pairs and returns
    ``(job id, result)`` pairs, in any order (the CLAP model embeds
    windows of several tracks at once), otherwise one task at a time.
    ``identity`` is what every worker's ``report`` must match.
    ``retry_after_crash`` runs on the coordinator: a task that killed its
    workers gets one more try, changed (Essentia's through ffmpeg)."""

    name: str  # for messages: "essentia (profile music)"
    factory: Callable[[], Callable[[Any], Any]]
    identity: dict[str, str]
    report: Callable[[], dict[str, str]]
    batch: int = 1
    batched: bool = False
    resources: dict[str, float] = field(default_factory=dict)
    retry_after_crash: Callable[[T], T | None] | None = None

    @property
    def resource(self) -> str:
        """The resource a worker gets when it passes the checks."""
        digest = hashlib.sha256(repr(sorted(self.identity.items())).encode())
        return f"audiofeatures-{digest.hexdigest()[:12]}"


#: How a result that breaks the contract is reported, per track.
INTERNAL_ERROR = "internal error: "


def results_by_id(
    ids: Sequence[int], pairs: object, source: str = "the worker"
) -> list[tuple[int, Any]]:
    """A batch's ``(job id, result)`` pairs when they name each of its
    jobs (``ids``) exactly once, in any order; otherwise one
    :class:`Failure` per job, saying what ``source`` got wrong, so that
    nothing of the batch is stored."""
    problem = _contract_broken(ids, pairs, source)
    if problem is None:
        return list(cast("Sequence[tuple[int, Any]]", pairs))
    failure = Failure(INTERNAL_ERROR + problem)
    return [(job_id, failure) for job_id in ids]


def _contract_broken(
    ids: Sequence[int], pairs: object, source: str
) -> str | None:
    if not isinstance(pairs, list | tuple) or not all(
        isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], int)
        for pair in pairs
    ):
        return f"{source} returned something other than (track, result) pairs"
    tracks = count(len(ids), "track")
    if len(pairs) != len(ids):
        return f"{source} returned {len(pairs)} results for {tracks}"
    wanted = set(ids)
    seen: set[object] = set()
    for job_id, _ in pairs:
        if job_id in seen:
            return f"{source} returned two results for one of {tracks}"
        if job_id not in wanted:
            return f"{source} returned a result for a track it was not given"
        seen.add(job_id)
    return None


def progress_bar(total: int, shown: bool = True) -> tqdm:
    """A progress bar on stderr, shown only on a terminal."""
    return tqdm(
        total=total,
        unit="track",
        disable=None if shown else True,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=False,
    )


class Stopped(BaseException):  # like KeyboardInterrupt
    """Ctrl-C, SIGTERM or SIGHUP stopped a run; ``exit_code`` is the
    shell's convention (130, 143, 129)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Turns Ctrl-C, SIGTERM and SIGHUP into :class:`Stopped` while a run
    is on, so each one cleans up (workers, scratch files) the same way;
    never inside :meth:`storing`, so a track is stored whole or not."""

    def __init__(self) -> None:
        self._storing = False
        self._pending: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: object) -> None:
        if self._storing:
            self._pending = signum
        else:
            raise Stopped(signum)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @contextlib.contextmanager
    def storing(self) -> Iterator[None]:
        self._storing = True
        try:
            yield
        finally:
            self._storing = False
        if self._pending is not None:
            signum, self._pending = self._pending, None
            raise Stopped(signum)


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``1 track``, ``2 tracks``."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


@dataclass
class Tally:
    """What a batch did, for the closing summary line."""

    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    #: further counts for the summary ("core fields filled": 3)
    notes: Counter[str] = field(default_factory=Counter)

    def stopped(self, stop: Stopped, verb: str) -> str:
        """The one line a stopped run ends with."""
        by = "Ctrl-C" if stop.signum == signal.SIGINT else stop.args[0]
        return (
            f"stopped by {by}: {count(self.done, 'track')} {verb} and "
            "stored; run the command again to resume"
        )

    def note(self, what: str, number: int = 1) -> None:
        self.notes[what] += number

    def summary(self, verb: str) -> str:
        elapsed = time.monotonic() - self.started
        line = (
            f"{verb} {self.done}, skipped {self.skipped}, "
            f"failed {len(self.failed)} in {elapsed:.1f} s"
        )
        if self.done and elapsed > 0:
            rate = self.done / elapsed * 60
            line += f" ({rate:.1f} {'track' if rate == 1 else 'tracks'}/min)"
        for what, number in self.notes.items():
            line += f"; {what}: {number}"
        return line
