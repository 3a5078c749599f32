"""Worker handlers for the pool tests (importable by spawned workers)."""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path


class Squarer:
    """Squares numbers; fails on negatives; 13 dereferences NULL; 99
    never ends (a decoder caught in a loop)."""

    def __init__(self) -> None:
        self.pid = os.getpid()

    def __call__(self, job: int) -> tuple[int, int]:
        if job < 0:
            raise ValueError(f"negative: {job}")
        if job == 13:
            ctypes.string_at(0)  # a real segmentation fault
        while job == 99:
            pass
        return job * job, self.pid


class BrokenSetup:
    def __init__(self) -> None:
        raise RuntimeError("cannot load the model")

    def __call__(self, job: int) -> tuple[int, int]:  # never reached
        raise AssertionError("BrokenSetup never starts")


class SlowSetup(Squarer):
    """A Squarer that takes 2 s to start (a model to load)."""

    def __init__(self) -> None:
        time.sleep(2)
        super().__init__()


class Spinner:
    """Creates the file named by each task, then never ends."""

    def __call__(self, marker: str) -> None:
        Path(marker).touch()
        while True:
            pass


class DyingSetup(Squarer):
    """A Squarer whose process dies while it starts (an Essentia build
    that kills the interpreter on import: SIGILL on an older CPU)."""

    def __init__(self) -> None:
        os._exit(3)
