"""The cluster executor: an analysis's jobs on Dask workers.

The ``beet`` process is the coordinator: it submits jobs (a few per
worker thread at a time, never the whole library), gets each result back
as it completes and stores it; it is the only writer of the library and
the embedding store. Workers (``dask worker``, or a ``LocalCluster``)
receive plain tasks (a path, a length, flags) and build the analyser or
model once per process.

Before work starts, a worker plugin checks every worker, also those that
join or restart later: its plugin version and the analysis's identity
(the Essentia version, or the CLAP model's tag as the store names it),
and whether it can read a file of the run. A worker that passes gets a
resource named after the run's identity, and the tasks need that
resource, so a mismatched worker never computes a value; it is named in
one line.

Dask runs the tasks: a worker that dies mid-task (a segfault, the OOM
killer, ``kill -9``) costs nothing, the scheduler gives the task to
another worker; a file that kills every worker that touches it comes
back as a ``KilledWorker`` after Dask's ``allowed-failures`` attempts
and fails alone. No beets here; ``distributed`` is the ``[dask]`` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import itertools
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import cloudpickle
import dask.config
from distributed import Client, Future, LocalCluster, as_completed
from distributed.client import FutureCancelledError
from distributed.comm.core import CommClosedError
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.scheduler import KilledWorker
from distributed.security import Security

from .audio_files import CopyIdentity, copy_identity
from .errors import SetupError, TrackError
from .runner import Failure, Job, RemoteWork, results_by_id
from .scratch import remove_scratch, scratch_folder

T = TypeVar("T")
R = TypeVar("R")

#: The in-flight window: this many tasks per worker thread.
PER_THREAD = 2
#: How often a run asks the scheduler to place tasks that found no worker.
NUDGE_SECONDS = 2.0


class ClusterError(SetupError):
    """The cluster cannot run the analysis; the message says why."""

    section = "cluster"


class SchedulerGoneError(ClusterError):
    """The scheduler went away during a run."""


# -- paths --------------------------------------------------------------


@dataclass(frozen=True)
class PathMap:
    """Where the workers see the coordinator's files: the longest
    matching prefix, whole folder names only, is replaced."""

    prefixes: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, mapping: Mapping[str, str]) -> PathMap:
        pairs = [
            (k.rstrip("/") or "/", v.rstrip("/") or "/")
            for k, v in mapping.items()
        ]
        return cls(tuple(sorted(pairs, key=lambda p: -len(p[0]))))

    def __call__(self, path: str | bytes) -> str | bytes:
        text = os.fsdecode(path)
        for here, there in self.prefixes:
            if text == here or text.startswith(here.rstrip("/") + "/"):
                text = there + text[len(here) :]
                break
        return os.fsencode(text) if isinstance(path, bytes) else text


def map_task(task: T, paths: PathMap) -> T:
    """The task with its ``path`` as the workers see it."""
    path = getattr(task, "path", None)
    if path is None or not paths.prefixes:
        return task
    return dataclasses.replace(task, path=paths(path))  # type: ignore[type-var]


# -- what the workers run -------------------------------------------------


_HANDLERS: dict[str, Any] = {}
_HANDLER_LOCK = threading.Lock()


def _handler(key: str, factory: Callable[[], Any]) -> Any:
    with _HANDLER_LOCK:
        if key not in _HANDLERS:
            _HANDLERS[key] = factory()
        return _HANDLERS[key]


#: What a task carries to a worker: its job's id, the task (its path as
#: the workers see it) and, for a path-mapped file, the identity of the
#: coordinator's copy.
Entry = tuple[int, Any, CopyIdentity | None]


def run_tasks(
    key: str, factory: Callable[[], Any], batched: bool, entries: list[Entry]
) -> list[tuple[int, Any]]:
    """On a worker: ``(job id, result)`` for each entry, a
    :class:`Failure` for a task that fails (and, without computing, for
    a file whose copy here is not the coordinator's). A
    :class:`SetupError` (the analyser cannot be built) fails the whole
    run."""
    results: list[tuple[int, Any]] = []
    runnable: list[tuple[int, Any]] = []
    for job_id, task, expected in entries:
        if why := copy_differs(task, expected):
            results.append((job_id, Failure(why)))
        else:
            runnable.append((job_id, task))
    handler = _handler(key, factory)
    with _HANDLER_LOCK:  # the analysers are not thread-safe
        if batched:
            if runnable:
                results.extend(handler(runnable))
            return results
        for job_id, task in runnable:
            try:
                results.append((job_id, handler(task)))
            except SetupError:
                raise
            except TrackError as exc:
                results.append(
                    (job_id, Failure(str(exc) or type(exc).__name__))
                )
            except Exception as exc:
                results.append(
                    (job_id, Failure(f"{type(exc).__name__}: {exc}"))
                )
        return results


def copy_differs(task: Any, expected: CopyIdentity | None) -> str | None:
    """On a worker: why its copy of the task's file is not the
    coordinator's (``expected``), or None. A copy it cannot read passes:
    the analyser says why it cannot read it."""
    path = getattr(task, "path", None)
    if expected is None or path is None:
        return None
    try:
        found = copy_identity(path)
    except OSError:
        return None
    difference = expected.difference(found)
    return (
        f"the worker's copy is not this file: {difference}"
        if difference
        else None
    )


def coordinator_identity(here: Any, there: Any) -> CopyIdentity | None:
    """The identity of the coordinator's copy of a task's file when the
    workers see it at another path (``there``), to be checked there;
    None when they see this very path, or when only they can read it."""
    path = getattr(here, "path", None)
    if path is None or path == getattr(there, "path", None):
        return None
    try:
        return copy_identity(path)
    except OSError:
        return None


_REPORTS: dict[str, list[str]] = {}


def readable(path: str | bytes) -> str | None:
    """Why the file cannot be read here, or None."""
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        return f"cannot read {os.fsdecode(path)} ({exc.strerror or exc})"
    return None


def problems_of(
    expected: Mapping[str, str], found: Mapping[str, str], probe: Any
) -> list[str]:
    """What keeps a worker from this run, in a few words each."""
    problems = [
        f"{name} {found.get(name) or 'missing'}, not {value}"
        for name, value in expected.items()
        if found.get(name) != value
    ]
    if probe is not None and (why := readable(probe)):
        problems.append(why)
    return problems


class Readiness(WorkerPlugin):
    """Checks each worker (also later ones) and marks those that pass."""

    def __init__(self, work: RemoteWork[Any, Any], probe: Any) -> None:
        self.name = work.resource
        self.resource = work.resource
        self.expected = work.identity
        self.report = work.report
        self.probe = probe

    async def setup(self, worker: Any) -> None:
        loop = asyncio.get_running_loop()
        try:
            found = await loop.run_in_executor(None, self.report)
        except Exception as exc:  # a worker without Essentia, say
            found = {"error": f"{type(exc).__name__}: {exc}"}
        problems = problems_of(self.expected, found, self.probe)
        if "error" in found:
            problems.insert(0, found["error"])
        _REPORTS[self.resource] = problems
        # Zero takes back what an earlier run with this identity gave.
        share = 0.0 if problems else float(worker.state.nthreads)
        await worker.set_resources(**{self.resource: share})


def _report_of(resource: str) -> list[str] | None:
    return _REPORTS.get(resource)


# -- the coordinator --------------------------------------------------------


def connect(
    address: str,
    tls: Mapping[str, str] | None,
    log: Callable[[str], None],
) -> tuple[Client, LocalCluster | None]:
    """A client of the scheduler at ``address``, or of a new
    ``LocalCluster`` for ``local:N`` (N worker processes here). ``tls``:
    the CA file and this client's certificate and key (``ca_file``,
    ``cert``, ``key``), for a scheduler that requires TLS."""
    security = (
        Security(
            tls_ca_file=tls["ca_file"],
            tls_client_cert=tls["cert"],
            tls_client_key=tls["key"],
            require_encryption=True,
        )
        if tls
        else None
    )
    # Dask's own log lines (reconnect attempts, tracebacks of a lost
    # scheduler) are not for the user: each problem is one line of ours.
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("distributed", "tornado", "bokeh"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    if address.startswith("local:"):
        count = address.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise ClusterError(
                f"--cluster {address}: give local:N with N worker processes"
            )
        # The scheduler's and workers' directories go in a scratch folder
        # of this run (Dask would leave its dask-scratch-space and lock
        # files in the temp folder).
        scratch = scratch_folder("dask")
        with dask.config.set({"temporary-directory": str(scratch)}):
            cluster = LocalCluster(
                n_workers=int(count),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # the workers' own Dask lines too: a worker's heartbeat
                # racing the scheduler's close printed a traceback
                silence_logs=logging.CRITICAL,
                local_directory=str(scratch),
            )
        _LOCAL_SCRATCH[cluster] = weakref.finalize(
            cluster, remove_scratch, scratch
        )
        return Client(cluster), cluster
    if address.startswith("tls://") and security is None:
        raise ClusterError(
            f"the Dask scheduler at {address} speaks TLS: set tls "
            "(ca_file, cert, key) to the CA and this machine's PEM files"
        )
    try:
        client = Client(address, security=security, timeout=20)
    except (OSError, TimeoutError, TypeError, ValueError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address}: {exc}"
        ) from exc
    log(f"connected to the Dask scheduler at {address}")
    return client, None


#: Removes a ``local:N`` cluster's scratch folder once it is closed.
_LOCAL_SCRATCH: weakref.WeakKeyDictionary[LocalCluster, Callable[[], Any]] = (
    weakref.WeakKeyDictionary()
)


class DaskExecutor(Generic[T, R]):
    """Runs jobs on a Dask cluster; an :class:`~.runner.Executor`."""

    def __init__(
        self,
        client: Client,
        work: RemoteWork[T, R],
        paths: PathMap,
        log: Callable[[str], None],
        cluster: LocalCluster | None = None,
    ) -> None:
        self.client = client
        self.work = work
        self.paths = paths
        self.log = log
        self.cluster = cluster
        self.address = client.scheduler.address if client.scheduler else "?"
        self._ready = False
        self._futures: dict[Future[Any], list[Job[T]]] = {}
        #: names the handler a worker builds from the factory (another
        #: factory, another handler, even for the same identity)
        self.key = hashlib.sha256(cloudpickle.dumps(work.factory)).hexdigest()

    def _start(self, probe: Any) -> int:
        """Check the workers; how many threads can take tasks."""
        work = self.work
        try:
            self.client.wait_for_workers(1, timeout=60)
        except TimeoutError as exc:
            raise ClusterError("the Dask cluster has no workers") from exc
        try:
            self.client.register_plugin(
                Readiness(work, probe), name=work.resource
            )
        except Exception as exc:  # a worker could not unpickle or run it
            raise ClusterError(
                f"a worker cannot run beets-audiofeatures ({exc}): install "
                "the same version on every worker"
            ) from exc
        reports = self.client.run(_report_of, work.resource)
        info = self.client.scheduler_info()["workers"]
        threads = 0
        refused = []
        for address, problems in sorted(reports.items()):
            name = info.get(address, {}).get("name", address)
            if problems:
                refused.append(f"{name}: {'; '.join(problems)}")
            elif problems is not None:
                has = info.get(address, {}).get("resources", {})
                if all(has.get(k, 0) >= v for k, v in work.resources.items()):
                    threads += int(info.get(address, {}).get("nthreads", 1))
                elif work.resources:
                    wanted = ", ".join(
                        f"{k}={v:g}" for k, v in work.resources.items()
                    )
                    refused.append(f"{name}: it has no resources {wanted}")
        if not threads:
            unread = any("cannot read" in line for line in refused)
            raise ClusterError(
                f"no worker of the cluster can run {work.name}: "
                + " / ".join(refused or ["none answered"])
                + (
                    " (do they see the music there, or elsewhere?)"
                    if unread
                    else ""
                )
            )
        for line in refused:
            self.log(f"worker {line.replace(': ', ' is left out: ', 1)}")
        self._ready = True
        return threads

    def _submit(self, batches: list[list[Job[T]]], ac: as_completed) -> None:
        """Send batches of jobs, one task each, in one message."""
        if not batches:
            return
        tasks = [[self._entry(job) for job in b] for b in batches]
        count = len(batches)
        futures = self.client.map(
            run_tasks,
            [self.key] * count,
            [self.work.factory] * count,
            [self.work.batched] * count,
            tasks,
            resources={self.work.resource: 1, **self.work.resources},
            pure=False,
        )
        for future, jobs in zip(futures, batches, strict=True):
            self._futures[future] = jobs
        ac.update(futures)

    def _entry(self, job: Job[T]) -> Entry:
        there = map_task(job.task, self.paths)
        return job.id, there, coordinator_identity(job.task, there)

    def run(self, jobs: Iterable[Job[T]]) -> Iterator[tuple[int, R | Failure]]:
        todo = list(jobs)
        if not todo:
            return
        threads = (
            self._start(getattr(map_task(todo[0].task, self.paths), "path", None))
            if not self._ready
            else max(1, sum(
                w.get("nthreads", 1)
                for w in self.client.scheduler_info()["workers"].values()
            ))
        )  # fmt: skip
        size = self.work.batch
        batches = [todo[i : i + size] for i in range(0, len(todo), size)]
        waiting = iter(batches)
        # Results come with the futures (gathered in the background), and
        # a failed task's exception in place of its result.
        ac = as_completed(with_results=True, raise_errors=False)
        self._submit(list(itertools.islice(waiting, PER_THREAD * threads)), ac)
        retried: set[int] = set()
        with self._nudging():
            # Whatever is done is handled together; as many new tasks go
            # out, in one message.
            for done in ac.batches():
                for future, outcome in done:
                    batch = self._futures.pop(future)
                    if future.status != "finished":  # the error, not its type
                        try:
                            future.result()
                        except BaseException as exc:
                            outcome = exc
                    yield from self._results(outcome, batch, ac, retried)
                self._submit(list(itertools.islice(waiting, len(done))), ac)

    @contextlib.contextmanager
    def _nudging(self) -> Iterator[None]:
        """While a run is on, have the scheduler look again at tasks that
        found no worker: a worker that restarts (after a crash) gets the
        run's resource from the plugin only after it joined, and Dask
        looks for workers for such tasks only when a worker joins."""
        stop = threading.Event()

        def schedule_waiting(dask_scheduler: Any) -> int:
            # Defined here so that it travels by value: the scheduler
            # need not import this package.
            recommendations: dict[Any, str] = {}
            for worker in dask_scheduler.workers.values():
                recommendations.update(
                    dask_scheduler.bulk_schedule_unrunnable_after_adding_worker(
                        worker
                    )
                )
            if recommendations:
                dask_scheduler.transitions(
                    recommendations, stimulus_id="audiofeatures-nudge"
                )
            return len(recommendations)

        def nudge() -> None:
            while not stop.wait(NUDGE_SECONDS):
                with contextlib.suppress(Exception):  # best effort
                    self.client.run_on_scheduler(schedule_waiting)

        thread = threading.Thread(target=nudge, name="dask-nudge", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    def _results(
        self,
        outcome: Any,
        batch: list[Job[T]],
        ac: as_completed,
        retried: set[int],
    ) -> Iterator[tuple[int, R | Failure]]:
        """``(job id, result)`` for a batch's jobs, matched by id: a batch
        whose results do not name each of its jobs once stores nothing."""
        try:
            if isinstance(outcome, BaseException):
                raise outcome
            results = outcome
        except KilledWorker:
            retry = self.work.retry_after_crash
            again = [
                Job(job.id, changed)
                for job in batch
                if retry is not None
                and job.id not in retried
                and (changed := retry(job.task)) is not None
            ]
            if len(again) == len(batch):
                retried.update(job.id for job in again)
                self._submit([again], ac)
                return
            reason = (
                "every worker that read it died (a crash or the OOM killer)"
            )
            for job in batch:
                yield job.id, Failure(reason)
            return
        except SetupError:
            raise
        except (CommClosedError, FutureCancelledError, OSError) as exc:
            raise SchedulerGoneError(
                f"the Dask scheduler at {self.address} went away; what was "
                "done is stored: run the command again to resume"
            ) from exc
        except Exception as exc:  # the task itself failed on the worker
            reason = f"{type(exc).__name__}: {exc}"
            for job in batch:
                yield job.id, Failure(reason)
            return
        jobs = {job.id: job for job in batch}
        for job_id, result in results_by_id(list(jobs), results):
            if isinstance(result, Failure):
                task = jobs[job_id].task
                there = getattr(map_task(task, self.paths), "path", None)
                if there is not None and there != getattr(task, "path", None):
                    result = Failure(
                        f"{result.reason} (at {os.fsdecode(there)} on the worker)"
                    )
            yield job_id, result

    def close(self, wait: bool = True) -> None:
        """Cancel what is still out; the cluster of ``local:N`` stops."""
        futures = list(self._futures)
        self._futures.clear()
        if futures:
            self.client.cancel(futures)
        if self._ready:
            # The scheduler may be gone already: nothing to undo then.
            with contextlib.suppress(Exception):
                self.client.unregister_worker_plugin(self.work.resource)
            self._ready = False
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
            if remove := _LOCAL_SCRATCH.pop(self.cluster, None):
                remove()
