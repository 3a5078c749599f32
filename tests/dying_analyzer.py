"""An Analyzer killed outright (SIGKILL) while its transcoded WAV of a
file named ``crash*`` lies in its scratch folder (importable by the
cluster's workers)."""

from __future__ import annotations

import os
import signal

from beets_audiofeatures.essentia.extraction import (
    AnalysisJob,
    AnalysisResult,
    Analyzer,
)


class DyingAfterTranscode(Analyzer):
    def _analyse(
        self, path: str, job: AnalysisJob, transcoded: bool
    ) -> AnalysisResult:
        if transcoded and os.path.basename(job.path).startswith(b"crash"):
            os.kill(os.getpid(), signal.SIGKILL)
        return super()._analyse(path, job, transcoded)
