"""A loaded CLAP model that embeds 10-s clips and text prompts.

Backed by Hugging Face transformers' ``ClapModel``, loaded from whichever
source the setting names (``sources``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..vectors import unit_rows
from .digests import WeightDigests, default_digest_cache
from .hub import quiet_transformers
from .mel import clip_features
from .model import SAMPLE_RATE, ModelError, ModelSpec
from .onnx_route import (
    OnnxAudioTower,
    check_route,
    load_audio_tower,
    require_onnxruntime,
)
from .sources import ModelSource, model_source

#: roberta-base has 50265 tokens; transformers answers a missing
#: tokenizer, offline, with a 5-token placeholder that embeds every prompt
#: to the same vector.
MIN_VOCABULARY = 100


def _resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ModelError(
            "audiofeatures.clap.device is cuda, but torch sees no CUDA GPU"
        )
    return name


class ClapEmbedder:
    """A loaded CLAP model that turns 10-s clips and prompts into unit
    vectors."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        check_route(spec.route, spec.precision)
        if spec.route == "onnx":  # before the model: a missing package
            require_onnxruntime()  # is told in a second
        self._import()
        import torch

        threads = spec.threads or os.cpu_count() or 1
        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # once per process only
            torch.set_num_interop_threads(max(1, spec.interop_threads))
        # The onnx route is the CPU's: its text tower stays there too.
        self.device = (
            "cpu" if spec.route == "onnx" else _resolve_device(spec.device)
        )
        source: ModelSource = model_source(spec)
        self.model, self.tokenizer, self.features = source.load()
        self._check_tokenizer()
        self._source = source
        self._threads = threads
        #: the audio tower on the onnx route, made by ``audio_embedding``
        #: (a command that embeds only prompts never exports); None on
        #: the torch route
        self.onnx: OnnxAudioTower | None = None
        self.model.eval().to(self.device)
        self.fused = bool(self.model.config.audio_config.enable_fusion)
        self.dim = int(self.model.config.projection_dim)

    @staticmethod
    def _import() -> None:
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as exc:
            raise ModelError(
                f"CLAP needs torch and transformers ({exc.name} is missing): "
                "pip install 'beets-audiofeatures[clap]'"
            ) from exc
        quiet_transformers()

    def _check_tokenizer(self) -> None:
        size = len(self.tokenizer)
        if size < MIN_VOCABULARY:
            raise ModelError(
                f"the tokenizer for {self.spec.model} has only {size} tokens: "
                "its vocabulary files are missing (transformers substitutes "
                "a placeholder when offline); install them as for the model"
            )
        vocabulary = self.model.config.text_config.vocab_size
        if size > vocabulary:
            raise ModelError(
                f"the tokenizer has {size} tokens but the model only "
                f"{vocabulary}: they do not belong together"
            )

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale_a.detach().exp())

    def audio_embedding(self) -> Callable[[np.ndarray], np.ndarray]:
        """``embed_clips``, ready to run: on the onnx route the audio
        tower is exported (once per model, then read from the cache) and
        opened here, so a failure is one ``RouteError`` before any track
        rather than a failure per batch."""
        if self.spec.route == "onnx" and self.onnx is None:
            known = WeightDigests(default_digest_cache())
            weights = self._source.identity(known)
            known.save()
            self.onnx = load_audio_tower(
                self.model, self.spec, weights, self._threads
            )
        return self.embed_clips

    def embed_clips(self, clips: np.ndarray) -> np.ndarray:
        """Unit vectors, one per row of ``clips`` (N x 480000 @ 48 kHz)."""
        if self.spec.route == "onnx" and self.onnx is None:
            self.audio_embedding()
        features = clip_features(self.features, clips, SAMPLE_RATE)
        if self.onnx is not None:
            return unit_rows(self.onnx(features))
        import torch

        # Every clip is exactly 10 s: the fusion branch is not needed, and
        # the extractor's random "longer" flag (a training trick) is
        # overridden so the result is deterministic.
        longer = torch.zeros((len(clips), 1), dtype=torch.bool)
        with torch.inference_mode():
            out = self.model.get_audio_features(
                input_features=torch.from_numpy(features).to(self.device),
                is_longer=longer.to(self.device),
            )
        return _unit_rows(out)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        tokens = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=77,
            return_tensors="pt",
        )
        with torch.inference_mode():
            out = self.model.get_text_features(
                input_ids=tokens["input_ids"].to(self.device),
                attention_mask=tokens["attention_mask"].to(self.device),
            )
        return _unit_rows(out)


def _unit_rows(out: Any) -> np.ndarray:
    # transformers 5 wraps the embedding; 4.x returned the tensor itself.
    tensor = getattr(out, "pooler_output", out)
    return unit_rows(tensor.float().cpu().numpy())
