"""The local executor: per-file work in spawned worker processes.

:class:`WorkerPool` hands one job at a time to each of N worker
processes and yields ``(job id, result)`` pairs as they finish; each
task goes out with its job's id and its result comes back with it. A job that
raises yields a :class:`Failure` with the reason; a job whose worker dies
(a segfault in a decoder, the OOM killer) yields a :class:`Failure` too,
and the worker is replaced, so one bad file never stops a batch. A job
may have a time limit: a worker still busy with it then is killed and
replaced, and the job fails alone. A worker ends with its parent, even
in the middle of a job (a killed ``beet`` leaves nothing computing).
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
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar

from .errors import SetupError
from .runner import INTERNAL_ERROR, Failure, Job

T = TypeVar("T")
R = TypeVar("R")


class WorkerStartError(SetupError):
    """A worker could not set itself up (bad profile, missing library)."""


# What a worker sends back: _Ready or _CannotStart once, then one _Done
# or _Failed per job (with the id of the job it was given).
@dataclass(frozen=True)
class _Ready:
    pass


@dataclass(frozen=True)
class _Done:
    job_id: int
    value: Any
    output: str


@dataclass(frozen=True)
class _Failed:
    job_id: int
    reason: str
    output: str


@dataclass(frozen=True)
class _CannotStart:
    reason: str


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


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _end_with_parent() -> None:
    """Make this process end when its parent does, even while a job
    runs: a SIGKILLed parent cannot stop its workers itself."""
    parent = os.getppid()
    # The signal comes when the thread that started this worker ends:
    # the pool starts its workers in the thread that runs it, and that
    # thread outlives them (``run`` and ``close`` are called from it).
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took
        os._exit(1)

    # Elsewhere (and as a second guard): a thread that watches for the
    # process being handed to another parent.
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _serve(
    conn: Connection,
    factory: Callable[[], Callable[[Any], Any]],
    expected: tuple[type[Exception], ...],
) -> None:
    """A worker's life: build the handler once, then answer tasks."""
    # Ctrl-C reaches the whole process group; the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _end_with_parent()
    try:
        with captured_output():  # the libraries' start-up chatter
            handler = factory()
    except Exception as exc:  # reported to the parent as one line
        conn.send(_CannotStart(str(exc) or type(exc).__name__))
        return
    try:
        conn.send(_Ready())
    except OSError:  # the parent is gone
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if message is None:
            return
        job_id, task = message
        failed: str | None = None
        with captured_output() as output:
            try:
                value = handler(task)
            except expected as exc:
                failed = str(exc) or type(exc).__name__
            except Exception as exc:
                failed = f"{type(exc).__name__}: {exc}"
        reply: _Done | _Failed = (
            _Done(job_id, value, output.text)
            if failed is None
            else _Failed(job_id, failed, output.text)
        )
        try:
            conn.send(reply)
        except OSError:  # the parent is gone
            return


@dataclass
class _Worker(Generic[T]):
    process: BaseProcess
    conn: Connection
    job: Job[T] | None = None
    #: whether it has built its handler (its job's clock runs)
    ready: bool = False
    #: when the job's time is up (``time.monotonic()``), or None
    deadline: float | None = None
    limit: float | None = None


class WorkerPool(Generic[T, R]):
    """Crash-tolerant process pool, an :class:`~.runner.Executor`; use as
    a context manager.

    ``factory`` must be picklable (a class or a ``functools.partial``);
    each worker calls it once and then calls its result with each job's
    task. ``retry_after_crash`` may return a changed task to try once
    more in a fresh worker when a task killed its worker or ran out of
    time. ``time_limit`` gives a task's limit in seconds (None: none);
    ``timeout_reason`` words the failure of a task that ran out of time,
    and ``retried_reason`` that of its retry if the retry fails too (the
    time-out is worth knowing; a crash says little the retry does not).
    """

    def __init__(
        self,
        factory: Callable[[], Callable[[T], R]],
        processes: int,
        *,
        expected: tuple[type[Exception], ...] = (),
        retry_after_crash: Callable[[T], T | None] = lambda task: None,
        on_output: Callable[[Job[T], str], None] = lambda job, text: None,
        time_limit: Callable[[T], float | None] = lambda task: None,
        timeout_reason: Callable[[float], str] = (
            lambda limit: f"it did not finish within {limit:.0f} s"
        ),
        retried_reason: Callable[[str, str], str] = (
            lambda first, then: f"{first}; retried: {then}"
        ),
    ) -> None:
        self.factory = factory
        self.processes = max(1, processes)
        self.expected = expected
        self.retry_after_crash = retry_after_crash
        #: what a job printed (native libraries' own logging)
        self.on_output = on_output
        self.time_limit = time_limit
        self.timeout_reason = timeout_reason
        self.retried_reason = retried_reason
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker[T]] = []

    def __enter__(self) -> WorkerPool[T, R]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(wait=exc_info[0] is None)

    def _start_worker(self) -> _Worker[T]:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(child, self.factory, self.expected),
            daemon=True,
            name="audiofeatures-worker",
        )
        process.start()
        child.close()
        worker: _Worker[T] = _Worker(process, parent)
        self._workers.append(worker)
        return worker

    def _retire(self, worker: _Worker[T]) -> None:
        self._workers.remove(worker)
        worker.conn.close()
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()

    def run(self, jobs: Iterable[Job[T]]) -> Iterator[tuple[int, R | Failure]]:
        """Yield each job's id with its result or :class:`Failure`, as
        done."""
        todo: deque[Job[T]] = deque(jobs)
        #: why a job now retried ran out of time, by its id
        timed_out: dict[int, str] = {}
        idle = [w for w in self._workers if w.job is None]
        while len(self._workers) < min(self.processes, len(todo)):
            idle.append(self._start_worker())

        def assign(worker: _Worker[T]) -> None:
            worker.job = todo.popleft()
            worker.limit = self.time_limit(worker.job.task)
            if worker.ready:
                start_clock(worker)
            # A worker that already died (its interpreter could not even
            # start) closed its end: its sentinel tells the loop below,
            # which reports it, where a broken pipe would end the command
            # without a word (beets takes EPIPE for ``| head``).
            with contextlib.suppress(OSError):
                worker.conn.send((worker.job.id, worker.job.task))

        def start_clock(worker: _Worker[T]) -> None:
            # A fresh worker's own start (importing Essentia, loading
            # models) is not its first job's time.
            if worker.limit is not None:
                worker.deadline = time.monotonic() + worker.limit

        for worker in idle:
            if todo:
                assign(worker)
        while busy := [w for w in self._workers if w.job is not None]:
            deadlines = [w.deadline for w in busy if w.deadline is not None]
            ready = wait(
                [w.conn for w in busy] + [w.process.sentinel for w in busy],
                timeout=(
                    max(0.0, min(deadlines) - time.monotonic())
                    if deadlines
                    else None
                ),
            )
            now = time.monotonic()
            for worker in busy:
                if (
                    worker.conn not in ready
                    and worker.deadline is not None
                    and worker.deadline <= now
                ):
                    job = worker.job
                    assert job is not None
                    assert worker.limit is not None
                    reason = self.timeout_reason(worker.limit)
                    if job.id in timed_out:  # the retry ran out too
                        reason = self.retried_reason(
                            timed_out.pop(job.id), reason
                        )
                    retried = yield from self._replaced(
                        worker, job, todo, assign, reason
                    )
                    if retried:
                        timed_out[job.id] = reason
                    continue
                if (
                    worker.conn not in ready
                    and worker.process.sentinel not in ready
                ):
                    continue
                job = worker.job
                assert job is not None
                try:
                    reply = worker.conn.recv()
                except (EOFError, OSError):
                    reason = self._crash_reason(worker)
                    if job.id in timed_out:
                        reason = self.retried_reason(
                            timed_out.pop(job.id), reason
                        )
                    yield from self._replaced(worker, job, todo, assign, reason)
                    continue
                if isinstance(reply, _CannotStart):
                    self.close(wait=False)
                    raise WorkerStartError(reply.reason)
                if isinstance(reply, _Ready):
                    worker.ready = True
                    start_clock(worker)
                    continue
                worker.job = worker.deadline = worker.limit = None
                if todo:  # keep the worker busy while the caller stores
                    assign(worker)
                if reply.output:
                    self.on_output(job, reply.output)
                yield job.id, self._outcome(job, reply, timed_out)

    def _crash_reason(self, worker: _Worker[T]) -> str:
        """Why a worker's job failed when its process ended; one that
        ended before its first job (an interpreter that cannot run, a
        library that kills it on import) stops the pool."""
        worker.process.join()
        code = _describe_exit(worker.process.exitcode)
        if not worker.ready:
            self.close(wait=False)
            raise WorkerStartError(
                f"a worker process ended while starting ({code})"
            )
        return f"the worker process crashed ({code})"

    def _outcome(
        self, job: Job[T], reply: _Done | _Failed, timed_out: dict[int, str]
    ) -> R | Failure:
        """A finished job's result, or why it failed (with the first
        reason too when it was a retry after running out of time)."""
        if reply.job_id != job.id:  # never stored as this job's
            return Failure(
                f"{INTERNAL_ERROR}the worker answered for another track"
            )
        if isinstance(reply, _Done):
            timed_out.pop(job.id, None)
            value: R = reply.value
            return value
        if job.id in timed_out:
            first = timed_out.pop(job.id)
            return Failure(self.retried_reason(first, reply.reason))
        return Failure(reply.reason)

    def _replaced(
        self,
        worker: _Worker[T],
        job: Job[T],
        todo: deque[Job[T]],
        assign: Callable[[_Worker[T]], None],
        reason: str,
    ) -> Generator[tuple[int, Failure], None, bool]:
        """A worker died on ``job`` or ran out of time (it is killed):
        retry the job once if asked to, else fail it for ``reason``; a
        fresh worker takes the next job. Whether the job is retried."""
        self._retire(worker)
        retry = self.retry_after_crash(job.task)
        if retry is not None:
            todo.appendleft(Job(job.id, retry))
        else:
            yield job.id, Failure(reason)
        if todo and len(self._workers) < self.processes:
            assign(self._start_worker())
        return retry is not None

    def close(self, wait: bool = True) -> None:
        """Stop the workers: politely when idle, at once otherwise."""
        for worker in list(self._workers):
            if wait and worker.job is None:
                with contextlib.suppress(OSError):  # already gone
                    worker.conn.send(None)
                worker.process.join(timeout=5)
            self._retire(worker)
