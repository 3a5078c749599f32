from __future__ import annotations

import pytest

from beets_audiofeatures.runner import Failure, WorkerPool, WorkerStartError
from tests.pool_workers import BrokenSetup, Squarer


def ok(result: tuple[int, int] | Failure) -> tuple[int, int]:
    """The (square, pid) of a job that did not fail."""
    assert not isinstance(result, Failure), result
    return result


def test_results_come_back_for_every_job():
    with WorkerPool(Squarer, 2) as pool:
        results = dict(pool.imap_unordered(range(6)))
    assert {job: ok(r)[0] for job, r in results.items()} == {
        n: n * n for n in range(6)
    }
    assert len({ok(r)[1] for r in results.values()}) == 2  # two processes


def test_an_exception_fails_only_its_job():
    with WorkerPool(Squarer, 1) as pool:
        results = dict(pool.imap_unordered([1, -2, 3]))
    assert results[-2] == Failure("ValueError: negative: -2")
    assert ok(results[1])[0] == 1
    assert ok(results[3])[0] == 9


def test_a_segfault_costs_one_job_and_the_worker_is_replaced():
    with WorkerPool(Squarer, 1) as pool:
        results = dict(pool.imap_unordered([2, 13, 4]))
    assert results[13] == Failure(
        "the worker process crashed (killed by SIGSEGV)"
    )
    assert ok(results[2])[0] == 4
    assert ok(results[4])[0] == 16
    assert ok(results[2])[1] != ok(results[4])[1]  # a new process took over


def test_a_crashed_job_can_be_retried_in_a_new_worker():
    with WorkerPool(
        Squarer, 2, retry_after_crash=lambda job: 14 if job == 13 else None
    ) as pool:
        results = dict(pool.imap_unordered([13, 5]))
    assert ok(results[14])[0] == 196
    assert ok(results[5])[0] == 25


def test_a_worker_that_cannot_start_stops_the_pool():
    with (
        pytest.raises(WorkerStartError, match="cannot load the model"),
        WorkerPool(BrokenSetup, 2) as pool,
    ):
        list(pool.imap_unordered([1, 2]))


def test_the_pool_is_reusable_between_batches():
    with WorkerPool(Squarer, 1) as pool:
        first = dict(pool.imap_unordered([1]))
        second = dict(pool.imap_unordered([2, 3]))
    # the same process
    assert ok(first[1])[1] == ok(second[2])[1] == ok(second[3])[1]
