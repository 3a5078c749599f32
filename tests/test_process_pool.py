from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from beets_audiofeatures.process_pool import WorkerPool, WorkerStartError
from beets_audiofeatures.runner import Failure, Job
from tests import synth
from tests.pool_workers import BrokenSetup, SlowSetup, Squarer


def results(pool: WorkerPool[int, Any], tasks: list[int]) -> dict[int, Any]:
    """Each job's result by its task (jobs are numbered 100, 101, …)."""
    jobs = {100 + n: Job(100 + n, task) for n, task in enumerate(tasks)}
    out: dict[int, Any] = {}
    for job_id, result in pool.run(list(jobs.values())):
        out[jobs.pop(job_id).task] = result  # each id once, no other
    assert not jobs  # and every id
    return out


def test_results_come_back_for_every_job() -> None:
    with WorkerPool(Squarer, 2) as pool:
        found = results(pool, list(range(6)))
    assert {job: r[0] for job, r in found.items()} == {
        n: n * n for n in range(6)
    }
    assert len({pid for _, pid in found.values()}) == 2  # two processes


def ok(result: tuple[int, int] | Failure) -> tuple[int, int]:
    """A job's ``(square, worker pid)``; fails the test on a Failure."""
    assert not isinstance(result, Failure), result
    return result


def test_jobs_come_back_with_their_ids() -> None:
    with WorkerPool(Squarer, 2) as pool:
        done = {job_id: ok(result)[0] for job_id, result in pool.run(
            [Job(7, 3), Job(9, 4)]
        )}  # fmt: skip
    assert done == {7: 9, 9: 16}


def test_an_exception_fails_only_its_job() -> None:
    with WorkerPool(Squarer, 1) as pool:
        found = results(pool, [1, -2, 3])
    assert found[-2] == Failure("ValueError: negative: -2")
    assert found[1][0] == 1
    assert found[3][0] == 9


def test_a_segfault_costs_one_job_and_the_worker_is_replaced() -> None:
    with WorkerPool(Squarer, 1) as pool:
        found = results(pool, [2, 13, 4])
    assert found[13] == Failure(
        "the worker process crashed (killed by SIGSEGV)"
    )
    assert found[2][0] == 4
    assert found[4][0] == 16
    assert found[2][1] != found[4][1]  # a new process took over


def test_a_crashed_job_can_be_retried_in_a_new_worker() -> None:
    with WorkerPool(
        Squarer, 2, retry_after_crash=lambda task: 14 if task == 13 else None
    ) as pool:
        done = dict(pool.run([Job(1, 13), Job(2, 5)]))
    assert ok(done[1])[0] == 196  # the retried task, under its item's id
    assert ok(done[2])[0] == 25


def test_a_worker_that_cannot_start_stops_the_pool() -> None:
    with (
        pytest.raises(WorkerStartError, match="cannot load the model"),
        WorkerPool(BrokenSetup, 2) as pool,
    ):
        results(pool, [1, 2])


def test_the_pool_is_reusable_between_batches() -> None:
    with WorkerPool(Squarer, 1) as pool:
        first = results(pool, [1])
        second = results(pool, [2, 3])
    assert first[1][1] == second[2][1] == second[3][1]  # same process


def test_a_job_out_of_time_fails_alone_and_its_worker_is_replaced() -> None:
    started = time.monotonic()
    with WorkerPool(Squarer, 1, time_limit=lambda task: 1.0) as pool:
        found = results(pool, [2, 99, 4])
    assert found[99] == Failure("it did not finish within 1 s")
    assert found[2][0] == 4
    assert found[4][0] == 16
    assert found[2][1] != found[4][1]  # a new process took over
    assert time.monotonic() - started < 20


def test_a_job_within_its_time_limit_is_not_stopped() -> None:
    # the clock starts once the worker is ready: its 2-s start is not
    # the job's time
    with WorkerPool(SlowSetup, 1, time_limit=lambda task: 1.0) as pool:
        found = results(pool, [3, 5])
    assert found[3][0] == 9
    assert found[5][0] == 25
    assert found[3][1] == found[5][1]  # the same worker did both


def test_a_job_past_its_time_limit_can_be_retried_in_a_new_worker() -> None:
    with WorkerPool(
        Squarer, 1,
        time_limit=lambda task: 1.0,
        retry_after_crash=lambda task: 5 if task == 99 else None,
    ) as pool:  # fmt: skip
        done = dict(pool.run([Job(1, 99), Job(2, 3)]))
    assert ok(done[1])[0] == 25
    assert ok(done[2])[0] == 9


def test_a_failed_retry_names_the_time_limit_and_the_retry_reason() -> None:
    with WorkerPool(
        Squarer, 1,
        time_limit=lambda task: 1.0,
        retry_after_crash=lambda task: -99 if task == 99 else None,
    ) as pool:  # fmt: skip
        done = dict(pool.run([Job(1, 99)]))
    assert done[1] == Failure(
        "it did not finish within 1 s; retried: ValueError: negative: -99"
    )


SPIN_UNTIL_KILLED = """
import sys
from beets_audiofeatures.process_pool import WorkerPool
from beets_audiofeatures.runner import Job
from tests.pool_workers import Spinner
with WorkerPool(Spinner, 2) as pool:
    list(pool.run([Job(1, sys.argv[1] + "/1"), Job(2, sys.argv[1] + "/2")]))
"""


def test_busy_workers_end_with_their_killed_parent(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", SPIN_UNTIL_KILLED, str(tmp_path)],
        cwd=Path(__file__).parent.parent, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.iterdir())) < 2:  # both workers spin
            assert time.monotonic() < deadline, "the workers never started"
            assert parent.poll() is None, "the pool's process ended"
            time.sleep(0.05)
        parent.kill()
        parent.wait()
        assert synth.group_has_exited(parent.pid, 5), "workers outlived it"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
