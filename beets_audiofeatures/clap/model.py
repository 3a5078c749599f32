"""The CLAP model setting: what it names, how it runs, and its error.

One setting names the model, in any of three forms (see ``sources``):
a hub id (``laion/larger_clap_music``), a folder in ``save_pretrained``
layout, or an original LAION-CLAP ``.pt`` checkpoint. ``embedder``
loads it; ``identity`` names the vectors it makes.

Nothing in this package imports beets; torch and transformers are
imported when a model is loaded, so commands that find everything
cached never pay for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SetupError

SAMPLE_RATE = 48_000
CLIP_SECONDS = 10
CLIP_SAMPLES = SAMPLE_RATE * CLIP_SECONDS
#: how the audio tower runs (``onnx_route``), and at which precision
ROUTES = ("torch", "onnx")
PRECISIONS = ("fp32", "int8")


class ModelError(SetupError):
    """The model cannot be found or loaded; the message says how to fix it."""

    section = "clap"


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load and how to run it."""

    model: str = "laion/larger_clap_music"
    tokenizer: str = "roberta-base"  # for .pt checkpoints only
    amodel: str = "auto"  # HTSAT-tiny | HTSAT-base, checked for .pt
    fusion: bool | None = None  # None: as the checkpoint says
    trust_checkpoint: bool = False
    device: str = "auto"
    threads: int = 0  # 0: one per core
    interop_threads: int = 1
    route: str = "torch"  # torch | onnx (``onnx_route``)
    precision: str = "fp32"  # fp32 | int8, for the onnx route
    export_dir: str = ""  # where onnx exports are cached ("": default)


def first_line(exc: BaseException) -> str:
    """An exception's message as a clause of a one-line ModelError."""
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return line.rstrip(".")
