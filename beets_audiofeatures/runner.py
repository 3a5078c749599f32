"""Running per-file work in worker processes, and counting what happened.

:class:`WorkerPool` hands one job at a time to each of N spawned worker
processes and yields ``(job, result)`` pairs as they finish. A job that
raises yields a :class:`Failure` with the reason; a job whose worker dies
(a segfault in a decoder, the OOM killer) yields a :class:`Failure` too,
and the worker is replaced, so one bad file never stops a batch.
Workers never see the beets database: jobs and results are plain values.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar

from tqdm import tqdm

from .errors import SetupError

J = TypeVar("J")
R = TypeVar("R")


@dataclass(frozen=True)
class Failure:
    reason: str


class WorkerStartError(SetupError):
    """A worker could not set itself up (bad profile, missing library)."""


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


@dataclass
class _Output:
    text: str = ""


@contextlib.contextmanager
def captured_output() -> Iterator[_Output]:
    """What native libraries print on file descriptors 1 and 2 (Essentia's
    ``[ WARNING ]`` lines, FFmpeg's ``[wav @ 0x…]``) while the block runs,
    instead of the user's terminal."""
    output = _Output()
    with tempfile.TemporaryFile() as sink:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield output
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            output.text = sink.read().decode(errors="replace").strip()


def _serve(
    conn: Connection,
    factory: Callable[[], Callable[[Any], Any]],
    expected: tuple[type[Exception], ...],
) -> None:
    """A worker's life: build the handler once, then answer jobs."""
    # Ctrl-C reaches the whole process group; the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with captured_output():  # the libraries' start-up chatter
            handler = factory()
    except Exception as exc:  # reported to the parent as one line
        conn.send(("fatal", str(exc) or type(exc).__name__, ""))
        return
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if job is None:
            return
        with captured_output() as output:
            try:
                reply = ("ok", handler(job))
            except expected as exc:
                reply = ("error", str(exc) or type(exc).__name__)
            except Exception as exc:
                reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send((*reply, output.text))
        except OSError:  # the parent is gone
            return


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    job: Any = None


class WorkerPool(Generic[J, R]):
    """Crash-tolerant process pool; use as a context manager.

    ``factory`` must be picklable (a class or a ``functools.partial``);
    each worker calls it once and then calls its result with each job.
    ``retry_after_crash`` may return a changed job to try once more in a
    fresh worker when a job killed its worker.
    """

    def __init__(
        self,
        factory: Callable[[], Callable[[J], R]],
        processes: int,
        *,
        expected: tuple[type[Exception], ...] = (),
        retry_after_crash: Callable[[J], J | None] = lambda job: None,
        on_output: Callable[[J, str], None] = lambda job, text: None,
    ) -> None:
        self.factory = factory
        self.processes = max(1, processes)
        self.expected = expected
        self.retry_after_crash = retry_after_crash
        #: what a job printed (native libraries' own logging)
        self.on_output = on_output
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []

    def __enter__(self) -> WorkerPool[J, R]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(wait=exc_info[0] is None)

    def _start_worker(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(child, self.factory, self.expected),
            daemon=True,
            name="audiofeatures-worker",
        )
        process.start()
        child.close()
        worker = _Worker(process, parent)
        self._workers.append(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        self._workers.remove(worker)
        worker.conn.close()
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()

    def imap_unordered(
        self, jobs: Iterable[J]
    ) -> Iterator[tuple[J, R | Failure]]:
        """Yield each job with its result or :class:`Failure`, as done."""
        todo: deque[J] = deque(jobs)
        idle = [w for w in self._workers if w.job is None]
        while len(self._workers) < min(self.processes, len(todo)):
            idle.append(self._start_worker())

        def assign(worker: _Worker) -> None:
            worker.job = todo.popleft()
            worker.conn.send(worker.job)

        for worker in idle:
            if todo:
                assign(worker)
        while busy := [w for w in self._workers if w.job is not None]:
            ready = wait(
                [w.conn for w in busy] + [w.process.sentinel for w in busy]
            )
            for worker in busy:
                if (
                    worker.conn not in ready
                    and worker.process.sentinel not in ready
                ):
                    continue
                job = worker.job
                try:
                    kind, payload, output = worker.conn.recv()
                except (EOFError, OSError):
                    worker.process.join()
                    code = worker.process.exitcode
                    self._retire(worker)
                    retry = self.retry_after_crash(job)
                    if retry is not None:
                        todo.appendleft(retry)
                    else:
                        reason = f"the worker process crashed ({_describe_exit(code)})"
                        yield job, Failure(reason)
                    if todo and len(self._workers) < self.processes:
                        assign(self._start_worker())
                    continue
                if kind == "fatal":
                    self.close(wait=False)
                    raise WorkerStartError(payload)
                worker.job = None
                if todo:  # keep the worker busy while the caller stores
                    assign(worker)
                if output:
                    self.on_output(job, output)
                yield job, (payload if kind == "ok" else Failure(payload))

    def close(self, wait: bool = True) -> None:
        """Stop the workers: politely when idle, at once otherwise."""
        for worker in list(self._workers):
            if wait and worker.job is None:
                with contextlib.suppress(OSError):  # already gone
                    worker.conn.send(None)
                worker.process.join(timeout=5)
            self._retire(worker)


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
