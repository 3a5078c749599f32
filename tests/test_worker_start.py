"""A worker that dies before its first job is a setup problem, said in
one line, never a silent end of the command (found exploring ``beet
essentia`` as another user than the one who installed Python)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from beets_audiofeatures.process_pool import WorkerPool, WorkerStartError
from beets_audiofeatures.runner import Job
from tests.pool_workers import DyingSetup, Squarer


@pytest.fixture
def unrunnable_interpreter(tmp_path: Path) -> Iterator[None]:
    """Workers are started with an interpreter that cannot be executed
    (permission denied), as for a user who cannot run the install's
    Python; the normal one is restored afterwards."""
    context = multiprocessing.get_context("spawn")
    normal = multiprocessing.spawn.get_executable()
    locked = tmp_path / "python3"
    locked.write_text("#!/bin/sh\nexit 0\n")
    locked.chmod(0o600)  # not executable
    context.set_executable(str(locked))
    try:
        yield
    finally:
        context.set_executable(normal)


def test_a_worker_dying_while_it_starts_stops_the_pool() -> None:
    with (
        pytest.raises(
            WorkerStartError,
            match=r"^a worker process ended while starting \(exit status 3\)$",
        ),
        WorkerPool(DyingSetup, 1) as pool,
    ):
        list(pool.run([Job(1, 2), Job(2, 3)]))


@pytest.mark.usefixtures("unrunnable_interpreter")
def test_a_worker_that_cannot_be_executed_stops_the_pool() -> None:
    # Not a BrokenPipeError: beets ends a command silently, with status
    # 0, on a broken pipe. (A crash in a job still fails only that job:
    # test_process_pool.)
    with (
        pytest.raises(WorkerStartError, match="ended while starting"),
        WorkerPool(Squarer, 1) as pool,
    ):
        list(pool.run([Job(1, 2), Job(2, 3)]))
