"""The one runner every analysis goes through: plan, execute, store.

An :class:`Analysis` says what an item needs (a falsy answer: nothing),
the task that computes it and how a result is stored on the item. The
:class:`Runner` plans a query once (what each item needs and why, which
``--pretend`` prints), hands jobs keyed by item id to the analysis's
executor, and stores each result as it comes back, matched to its job by
the id it comes with (never by its position), on the item read afresh: a track removed during the run stays removed, and a result
computed from audio the file no longer holds is discarded. One progress
bar, one summary, one way to stop (Ctrl-C, SIGTERM, SIGHUP).
"""

from __future__ import annotations

import contextlib
import logging
import shlex
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from beets import ui
from beets.util import displayable_path
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from beets_audiofeatures.errors import CommandError
from beets_audiofeatures.runner import (
    INTERNAL_ERROR,
    Executor,
    Failure,
    Job,
    Stopped,
    StopSignals,
    Tally,
    count,
    progress_bar,
)
from beetsplug.audiofeatures.library_query import (
    CHUNK,
    audio_fingerprint,
    each_item,
    item_chunks,
    item_id,
    items_by_id,
)

if TYPE_CHECKING:
    from beets.library import Item, Library
    from beets.logging import BeetsLogger

N = TypeVar("N")  # what an item needs
T = TypeVar("T")  # a job's task
R = TypeVar("R")  # a job's result


class Analysis(Protocol[N, T, R]):
    """One kind of analysis, as the runner drives it."""

    #: the summary's verb ("analysed") and its -ing form ("analysing")
    verb: str
    doing: str
    #: what a discarded result is ("its values") and who redoes it
    #: ("the next beet essentia analyses it again")
    result: str
    again: str
    #: how it works, for the import stage's line ("with profile music")
    method: str
    #: results are cheap to compute again: store a chunk in one commit
    batched: bool

    def needs(self, item: Item) -> N | None:
        """What the item needs from this run; None or falsy: nothing."""
        ...

    def describe(self, need: N) -> str:
        """The need in a few words, for ``--pretend``."""
        ...

    def task(self, item: Item, need: N) -> T:
        """The plain values a worker needs to compute it."""
        ...

    def executor(self) -> Executor[T, R]:
        """Where the tasks run (made once, on the first job)."""
        ...

    def keep(self, item: Item, need: N, result: R, tally: Tally) -> None:
        """Put a result on the live item and store it."""
        ...

    def close(self) -> None:
        """The run is over (the executor is closed already)."""
        ...


@dataclass
class Plan(Generic[N]):
    """What each matched item needs, in query order, and how many
    matched."""

    needs: dict[int, N] = field(default_factory=dict)
    matched: int = 0

    @property
    def skipped(self) -> int:
        return self.matched - len(self.needs)

    def __len__(self) -> int:
        return len(self.needs)


class Runner(Generic[N, T, R]):
    """Runs one analysis over library items; keeps its executor between
    calls (the import stage calls once per album) until :meth:`close`."""

    def __init__(
        self,
        lib: Library,
        analysis: Analysis[N, T, R],
        log: BeetsLogger,
        executor: Callable[[], Executor[T, R]] | None = None,
    ) -> None:
        self.lib = lib
        self.analysis = analysis
        self.log = log
        self.signals = StopSignals()
        #: what makes the executor (default: the analysis's own, local)
        self.make_executor = executor or analysis.executor
        self._executor: Executor[T, R] | None = None

    # -- planning -------------------------------------------------------

    def plan(self, items: Iterable[Item]) -> Plan[N]:
        """What each item needs (equal needs share one object: a plan of
        500k tracks stays small)."""
        plan: Plan[N] = Plan()
        shared: dict[Any, N] = {}
        for item in items:
            plan.matched += 1
            need = self.analysis.needs(item)
            if need and item.id is not None:
                plan.needs[item.id] = shared.setdefault(need, need)
        return plan

    def plan_ids(self, ids: Sequence[int]) -> Plan[N]:
        """The plan of a query's items, read a chunk at a time."""
        plan = self.plan(self._chunk_by_chunk(ids))
        plan.matched = len(ids)  # items removed meanwhile count as skipped
        return plan

    def _chunk_by_chunk(self, ids: Sequence[int]) -> Iterator[Item]:
        """The items, each chunk in one transaction: what planning
        stores on the way (files recorded, core fields refilled) is one
        commit per chunk, not one per track."""
        for chunk in item_chunks(self.lib, ids):
            with self.lib.transaction():
                yield from chunk

    def pretend(self, plan: Plan[N], verb: str) -> None:
        """Print what each planned item would get: ``verb: item [need]``."""
        for item in each_item(self.lib, list(plan.needs)):
            need = plan.needs[item_id(item)]
            what = self.analysis.describe(need)
            ui.print_(f"{verb}: {item}" + (f" [{what}]" if what else ""))

    # -- running --------------------------------------------------------

    def run(self, plan: Plan[N], tally: Tally, bar: tqdm | None = None) -> None:
        """Run the plan's jobs; failures are logged and added to
        ``tally``; ``bar`` counts the tracks done."""
        if not plan.needs:
            return
        bar = bar or progress_bar(len(plan), shown=False)
        ids = list(plan.needs)
        try:
            with logging_redirect_tqdm([logging.getLogger("beets")]):
                for start in range(0, len(ids), CHUNK):
                    self._run_chunk(
                        ids[start : start + CHUNK], plan, tally, bar
                    )
        except BaseException:
            self.close(wait=False)
            raise

    def _run_chunk(
        self, chunk: list[int], plan: Plan[N], tally: Tally, bar: tqdm
    ) -> None:
        loaded = items_by_id(self.lib, chunk)
        jobs = [  # in the plan's order; items removed meanwhile are gone
            Job(n, self.analysis.task(loaded[n], plan.needs[n]))
            for n in chunk
            if n in loaded
        ]
        # An analysis whose results are cheap commits once per chunk.
        batched = self.analysis.batched
        waiting = {job.id for job in jobs}
        with self.lib.transaction() if batched else contextlib.nullcontext():
            for job_id, result in self.executor().run(jobs):
                if job_id not in waiting:  # unknown, or answered already
                    self._unexpected(job_id, loaded, tally)
                    continue
                waiting.discard(job_id)
                self._land(loaded[job_id], plan.needs[job_id], result, tally)
                bar.update()
        for job_id in sorted(waiting):  # the executor ended without them
            missing = Failure(INTERNAL_ERROR + "no result came back for it")
            self._land(loaded[job_id], plan.needs[job_id], missing, tally)
            bar.update()

    def _unexpected(
        self, job_id: int, loaded: dict[int, Item], tally: Tally
    ) -> None:
        """A result the executor should not have given: it is not stored,
        and the run ends with an error."""
        if job_id in loaded:
            shown = displayable_path(loaded[job_id].path)
            reason = INTERNAL_ERROR + "a second result came back for it"
        else:
            shown = f"item {job_id}"
            reason = (
                INTERNAL_ERROR + "a result came back for a track not asked for"
            )
        tally.failed.append((shown, reason + "; it is not stored"))
        self.log.error("{}: {}; it is not stored", shown, reason)

    def executor(self) -> Executor[T, R]:
        if self._executor is None:
            self._executor = self.make_executor()
        return self._executor

    def _land(
        self, loaded: Item, need: N, result: R | Failure, tally: Tally
    ) -> None:
        """Store one result, unless it failed or its item changed."""
        shown = displayable_path(loaded.path)
        if isinstance(result, Failure):
            tally.failed.append((shown, result.reason))
            self.log.error("{}: {}", shown, result.reason)
            return
        lost = f"{self.analysis.result} discarded"
        item = self.lib.get_item(item_id(loaded))
        if item is None:
            self.log.warning(
                "{}: removed from the library during the run; {}", shown, lost
            )
        elif audio_fingerprint(item) != audio_fingerprint(loaded):
            # beet update read new audio at this path meanwhile
            self.log.warning(
                "{}: its audio changed during the run; {} and {}",
                shown, lost, self.analysis.again,
            )  # fmt: skip
            item = None
        if item is None:
            tally.note("discarded")
            return
        with self.signals.storing():
            self.analysis.keep(item, need, result, tally)
        tally.done += 1

    def close(self, wait: bool = True) -> None:
        if self._executor is not None:
            self._executor.close(wait=wait)
            self._executor = None
        self.analysis.close()

    # -- the skeleton of a command ----------------------------------------

    def run_all(self, plan: Plan[N], tally: Tally) -> None:
        """Run a command's whole plan with a progress bar; a stop signal
        ends it with one line and the shell's exit code."""
        try:
            with self.signals, progress_bar(len(plan)) as bar:
                self.run(plan, tally, bar)
        except Stopped as stop:
            ui.print_(tally.stopped(stop, self.analysis.verb))
            raise SystemExit(stop.exit_code) from None
        finally:
            self.close()

    def run_import(self, items: Sequence[Item]) -> None:
        """An import stage: the album's tracks, with a line before and
        the summary after."""
        plan = self.plan(items)
        if not plan:
            return
        album = items[0].get("album") or items[0].get("title") or "tracks"
        self.log.info(
            "{} {} of {} {}",
            self.analysis.doing, count(len(plan), "track"), album,
            self.analysis.method,
        )  # fmt: skip
        tally = Tally(skipped=plan.skipped)
        self.run(plan, tally)
        self.log.info("{}", tally.summary(self.analysis.verb))


def check_failures(tally: Tally, planned: int, verb: str) -> None:
    """End a command with one line when some tracks failed."""
    if tally.failed:
        raise CommandError(
            f"{len(tally.failed)} of {count(planned, 'track')} could not "
            f"be {verb}; the reasons are above"
        )


def nothing_matched(ids: Sequence[int], args: Sequence[str]) -> str | None:
    """Why a query has nothing to work on, if it matched nothing."""
    if ids:
        return None
    if args:
        return f"no tracks match {shlex.join(args)}"
    return "the library has no tracks"
