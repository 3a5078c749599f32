"""An Analyzer that dies like a segfaulting decoder on chosen files
(importable by the spawned workers)."""

from __future__ import annotations

import os
import signal

from beets_audiofeatures.essentia.extraction import (
    AnalysisJob,
    AnalysisResult,
    Analyzer,
)


class CrashingAnalyzer(Analyzer):
    """Kills its own process (SIGSEGV) on any file named ``crash*``."""

    def __call__(self, job: AnalysisJob) -> AnalysisResult:
        if os.path.basename(job.path).startswith(b"crash"):
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().__call__(job)
