"""CLAP on a cluster worker: the model loaded once per process, tracks
embedded a few at a time (their windows batched as on one machine),
and what a worker must share with the coordinator."""

from __future__ import annotations

import shutil
from typing import Any

import numpy as np

from ..runner import Failure
from ..version import plugin_version
from .audio import Track, WindowPolicy, embed_tracks
from .embedder import ClapEmbedder
from .identity import model_identity, model_tag
from .model import ModelSpec


class ClapBatch:
    """Embeds lists of tracks with one model; one per worker process."""

    def __init__(
        self, spec: ModelSpec, policy: WindowPolicy, decoders: int, clips: int
    ) -> None:
        self.embedder = ClapEmbedder(spec)
        self.embed = self.embedder.audio_embedding()
        self.policy = policy
        self.decoders = decoders
        self.clips = clips

    def __call__(
        self, tracks: list[tuple[int, Track]]
    ) -> list[tuple[int, np.ndarray | Failure]]:
        """``(job id, vector or Failure)`` for ``(job id, track)`` pairs,
        in the order they are done (a failure comes early)."""
        return list(
            embed_tracks(
                ((job_id, t.path, t.length) for job_id, t in tracks),
                self.embed,
                self.policy,
                decoders=self.decoders,
                batch_clips=self.clips,
            )
        )


def clap_report(model: str, pipeline: dict[str, Any]) -> dict[str, str]:
    """The plugin version and the model's store tag as this worker sees
    its model files (another file under the same name: another tag)."""
    return {
        "beets-audiofeatures": plugin_version(),
        "model": model_tag(model_identity(ModelSpec(model=model), pipeline)),
        "ffmpeg": "yes" if shutil.which("ffmpeg") else "missing",
    }
