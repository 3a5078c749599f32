"""The one result contract: every executor hands back ``(job id,
result)`` pairs, and results are matched to their jobs by that id only.
A batch whose results do not name each of its jobs exactly once stores
nothing and says so."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from beets import logging as beets_logging
from beets.library import Item

from beets_audiofeatures.runner import (
    Failure,
    Job,
    Tally,
    results_by_id,
)
from beetsplug.audiofeatures.analysis.runner import Runner
from beetsplug.audiofeatures.library_query import item_id
from tests.helpers import AudioFeaturesHelper

# -- a batch's results, as the Dask executor takes them ------------------


def test_results_in_any_order_go_to_the_jobs_they_name() -> None:
    pairs = [(3, "c"), (1, "a"), (2, Failure("broken"))]
    assert results_by_id([1, 2, 3], pairs) == pairs


@pytest.mark.parametrize(
    ("pairs", "problem"),
    [
        ([(1, "a"), (3, "c")], "the worker returned 2 results for 3 tracks"),
        ([(1, "a"), (2, "b"), (3, "c"), (3, "c")],
         "the worker returned 4 results for 3 tracks"),
        ([(1, "a"), (2, "b"), (4, "d")],
         "the worker returned a result for a track it was not given"),
        ([(1, "a"), (2, "b"), (2, "b")],
         "the worker returned two results for one of 3 tracks"),
        (["a", "b", "c"],
         "the worker returned something other than (track, result) pairs"),
        (None, "the worker returned something other than (track, result) pairs"),
        ([([1], "a"), (2, "b"), (3, "c")],
         "the worker returned something other than (track, result) pairs"),
    ],
)  # fmt: skip
def test_a_batch_that_breaks_the_contract_stores_nothing(
    pairs: Any, problem: str
) -> None:
    failure = Failure(f"internal error: {problem}")
    assert results_by_id([1, 2, 3], pairs) == [
        (1, failure), (2, failure), (3, failure)
    ]  # fmt: skip


# -- the runner, whatever its executor hands back -------------------------


class Misbehaving:
    """An executor that answers with the pairs it is told to, for the
    jobs it is given: the runner must not trust it."""

    def __init__(self, answer: list[tuple[int, str]]) -> None:
        self.answer = answer
        self.asked: list[int] = []

    def run(self, jobs: Iterable[Job[str]]) -> Iterator[tuple[int, str]]:
        self.asked = [job.id for job in jobs]
        yield from self.answer

    def close(self, wait: bool = True) -> None:
        pass


class Stamping:
    """An analysis that stores its result in ``stamp``."""

    verb = "stamped"
    doing = "stamping"
    result = "its stamp"
    again = "the next run stamps it again"
    method = "by hand"
    batched = False

    def needs(self, item: Item) -> bool:
        return True

    def describe(self, need: bool) -> str:
        return ""

    def task(self, item: Item, need: bool) -> str:
        return str(item.title)

    def executor(self) -> Misbehaving:
        raise AssertionError("the test gives the executor")

    def keep(self, item: Item, need: bool, result: str, tally: Tally) -> None:
        item["stamp"] = result
        item.store()

    def close(self) -> None:
        pass


class TestTheRunnerMatchesByIdOnly(AudioFeaturesHelper):
    def run_with(
        self, answer: Callable[[list[int]], list[tuple[int, str]]]
    ) -> tuple[Tally, list[int]]:
        """Run the runner over three tracks with an executor that gives
        ``answer(their ids)``."""
        self.ids = [
            item_id(self.add_track(self.audio.a120_flac, title=f"t{n}"))
            for n in range(3)
        ]
        executor = Misbehaving(answer(self.ids))
        runner = Runner(
            self.lib,
            Stamping(),
            beets_logging.getLogger("beets.audiofeatures"),
            executor=lambda: executor,
        )
        tally = Tally()
        runner.run(runner.plan_ids(self.ids), tally)
        runner.close()
        return tally, executor.asked

    def stamps(self) -> list[str | None]:
        return [self.item(n).get("stamp") for n in self.ids]

    def test_results_in_another_order_go_to_their_own_tracks(self):
        tally, asked = self.run_with(
            lambda ids: [(ids[2], "t2"), (ids[0], "t0"), (ids[1], "t1")]
        )
        assert asked == self.ids
        assert self.stamps() == ["t0", "t1", "t2"]
        assert tally.done == 3
        assert not tally.failed

    def test_a_track_without_a_result_fails_with_an_internal_error(
        self, caplog
    ):
        with caplog.at_level(logging.ERROR):
            tally, _ = self.run_with(
                lambda ids: [(ids[0], "t0"), (ids[2], "t2")]
            )
        assert self.stamps() == ["t0", None, "t2"]
        missing = self.item(self.ids[1])
        assert tally.failed == [
            (
                str(missing.filepath),
                "internal error: no result came back for it",
            )
        ]

    def test_a_second_result_for_a_track_is_not_stored(self, caplog):
        with caplog.at_level(logging.ERROR):
            tally, _ = self.run_with(
                lambda ids: [
                    (ids[0], "t0"), (ids[1], "t1"), (ids[0], "t1"),
                    (ids[2], "t2"),
                ]
            )  # fmt: skip
        assert self.stamps() == ["t0", "t1", "t2"]
        first = self.item(self.ids[0])
        assert tally.failed == [
            (
                str(first.filepath),
                (
                    "internal error: a second result came back for it; it "
                    "is not stored"
                ),
            )
        ]

    def test_a_result_for_a_track_not_asked_for_is_not_stored(self, caplog):
        with caplog.at_level(logging.ERROR):
            tally, _ = self.run_with(
                lambda ids: (
                    [(n, f"t{i}") for i, n in enumerate(ids)] + [(999, "stray")]
                )
            )
        assert self.stamps() == ["t0", "t1", "t2"]
        assert self.lib.get_item(999) is None
        assert tally.failed == [
            (
                "item 999",
                (
                    "internal error: a result came back for a track not "
                    "asked for; it is not stored"
                ),
            )
        ]


class LosesTheLast:
    """A batched handler (run by cluster workers) that answers every
    batch but its last task."""

    def __call__(self, pairs: list[tuple[int, str]]) -> list[tuple[int, str]]:
        return [(job_id, task.upper()) for job_id, task in pairs[:-1]]
