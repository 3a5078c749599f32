"""Worker handlers for the pool tests (importable by spawned workers)."""

from __future__ import annotations

import ctypes
import os


class Squarer:
    """Squares numbers; fails on negatives; 13 dereferences NULL."""

    def __init__(self) -> None:
        self.pid = os.getpid()

    def __call__(self, job: int) -> tuple[int, int]:
        if job < 0:
            raise ValueError(f"negative: {job}")
        if job == 13:
            ctypes.string_at(0)  # a real segmentation fault
        return job * job, self.pid


class BrokenSetup:
    def __init__(self) -> None:
        raise RuntimeError("cannot load the model")

    def __call__(self, job: int) -> tuple[int, int]:  # never reached
        raise AssertionError("BrokenSetup never starts")
