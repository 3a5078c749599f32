"""Running Essentia's trained classifiers: mood, genre, voice,
danceability, ... Two routes run the heads (``heads``), with the same
results in the same fields:

* ``tensorflow``: the ``essentia-tensorflow`` wheel's own algorithms on
  the ``.pb`` files;
* ``onnx``: ``onnxruntime`` on the ``.onnx`` files, fed with the
  mel-spectrogram patches that Essentia's ``TensorflowInputMusiCNN``
  computes, cut as Essentia's TensorFlow algorithms cut them.

Per track, the head's per-second predictions are averaged; the fields
are ``essentia_<task>`` (the most likely class) and
``essentia_<task>_<class>`` (each probability). No beets here.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..version import installed_version
from .heads import EXTRACTORS, ClassifierError, Extractor, Head, ModelFiles

SAMPLE_RATE = 16_000


# -- running the models -------------------------------------------------


def pad_to_patch(audio: np.ndarray, frames: int) -> np.ndarray:
    """At least one patch of audio: short tracks are zero-padded (the
    models drop an incomplete last patch)."""
    needed = (frames + 1) * 256
    if len(audio) >= needed:
        return audio
    return np.concatenate([audio, np.zeros(needed - len(audio), np.float32)])


class TensorflowRoute:
    """The ``.pb`` models through essentia-tensorflow's algorithms."""

    extension = ".pb"
    #: the distribution it needs, and how to install it
    needs = (
        "essentia-tensorflow",
        "pip uninstall essentia; pip install 'beets-audiofeatures[tensorflow]'",
    )

    @staticmethod
    def extractor_stem(name: str, known: Extractor) -> str:
        return name

    def __init__(self, es: ModuleType, files: ModelFiles, heads: list[Head]):
        if not hasattr(es, "TensorflowPredict2D"):
            raise ClassifierError(
                "the tensorflow route needs essentia-tensorflow in place of "
                "essentia (pip uninstall essentia; pip install "
                "'beets-audiofeatures[tensorflow]'), "
                "or set audiofeatures.essentia.model_route: onnx"
            )
        self.extractors = {}
        for name in {h.extractor for h in heads}:
            known = _extractor(name)
            graph = _existing(files.folder / f"{name}.pb")
            self.extractors[name] = (
                getattr(es, known.algorithm)(
                    graphFilename=graph, output=known.embeddings
                ),
                known.patch[0],
            )
        self.heads = [
            (
                head,
                es.TensorflowPredict2D(
                    graphFilename=_existing(files.folder / f"{head.name}.pb"),
                    input=head.input,
                    output=head.output,
                ),
            )
            for head in heads
        ]

    def __call__(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        embeddings = {
            name: np.asarray(model(pad_to_patch(audio, frames)))
            for name, (model, frames) in self.extractors.items()
        }
        return {
            head.name: np.asarray(model(embeddings[head.extractor])).mean(
                axis=0
            )
            for head, model in self.heads
        }


class OnnxRoute:
    """The ``.onnx`` models through onnxruntime; the input features from
    Essentia's own front end, so the numbers match the TensorFlow route.
    Tensor names come from the ONNX files (they differ from the names
    in the metadata JSON, which describe the ``.pb``)."""

    extension = ".onnx"
    needs = ("onnxruntime", "pip install 'beets-audiofeatures[onnx]'")

    @staticmethod
    def extractor_stem(name: str, known: Extractor) -> str:
        return known.onnx_name

    def __init__(self, es: ModuleType, files: ModelFiles, heads: list[Head]):
        try:
            import onnxruntime
        except ImportError as exc:
            raise ClassifierError(
                "the onnx route needs onnxruntime: pip install "
                "'beets-audiofeatures[onnx]'"
            ) from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one worker per core already
        options.inter_op_num_threads = 1

        def session(path: Path) -> Any:
            try:
                return onnxruntime.InferenceSession(
                    _existing(path), options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own types
                raise ClassifierError(f"{path.name}: {exc}") from exc

        self.es = es
        self.front_end = es.TensorflowInputMusiCNN()
        self.extractors = {}
        for name in {h.extractor for h in heads}:
            known = _extractor(name)
            self.extractors[name] = (
                session(files.folder / f"{known.onnx_name}.onnx"),
                known.patch,
            )
        self.heads = [
            (head, session(files.folder / f"{head.name}.onnx"))
            for head in heads
        ]

    def mel_frames(self, audio: np.ndarray) -> np.ndarray:
        frames = self.es.FrameGenerator(
            audio, frameSize=512, hopSize=256, startFromZero=False
        )
        return np.array([self.front_end(frame) for frame in frames], np.float32)

    def __call__(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        # One front-end pass per padded length: usually one for all
        # extractors (padding only changes audio shorter than a patch).
        mels: dict[int, np.ndarray] = {}
        embeddings = {}
        for name, (model, (size, hop)) in self.extractors.items():
            padded = pad_to_patch(audio, size)
            if len(padded) not in mels:
                mels[len(padded)] = self.mel_frames(padded)
            mel = mels[len(padded)]
            starts = range(0, len(mel) - size + 1, hop)
            patches = np.stack([mel[s : s + size] for s in starts])
            embeddings[name] = _run(model, patches, "embeddings")
        return {
            head.name: _run(
                model, embeddings[head.extractor], "activations"
            ).mean(axis=0)
            for head, model in self.heads
        }


def _run(session: Any, batch: np.ndarray, wanted: str) -> np.ndarray:
    """Run a session on its first input, shaped as it asks, and return
    the output called ``wanted`` (or its only output)."""
    tensor = session.get_inputs()[0]
    rank = len(tensor.shape)
    if rank == batch.ndim + 1:  # e.g. (n, 1, 128, 96) or (n, 1, 200)
        batch = batch[:, None]
    names = [o.name for o in session.get_outputs()]
    output = wanted if wanted in names else names[0]
    (result,) = session.run([output], {tensor.name: batch.astype(np.float32)})
    return np.asarray(result).reshape(len(batch), -1)


def _extractor(name: str) -> Extractor:
    try:
        return EXTRACTORS[name]
    except KeyError:
        raise ClassifierError(
            f"embedding model {name} is not supported; heads for "
            f"{' or '.join(EXTRACTORS)} are"
        ) from None


def _existing(path: Path) -> str:
    if not path.is_file():
        raise ClassifierError(
            f"model file {path} is missing: run beet essentia --download-models"
        )
    return str(path)


#: The classifier routes by name; ``auto`` is :func:`resolve_route`'s.
ROUTE_TYPES: dict[str, type[TensorflowRoute] | type[OnnxRoute]] = {
    "tensorflow": TensorflowRoute,
    "onnx": OnnxRoute,
}
ROUTES = ("auto", *ROUTE_TYPES)


def resolve_route(route: str) -> str:
    """``auto``: TensorFlow when essentia-tensorflow is installed,
    otherwise onnxruntime (decided from the installed distributions,
    without importing Essentia, which costs a second)."""
    if route != "auto":
        return route
    return (
        "tensorflow"
        if installed_version(TensorflowRoute.needs[0]) is not None
        else "onnx"
    )


def route_status(route: str) -> str:
    """The route, and whether what it needs is installed."""
    distribution, install = ROUTE_TYPES[route].needs
    if installed_version(distribution) is not None:
        return route
    return f"{route} ({distribution} is not installed: {install})"


class Classifiers:
    """All configured heads, run on one track's 16-kHz mono audio."""

    def __init__(
        self, es: ModuleType, files: ModelFiles, route: str, top: int
    ) -> None:
        self.heads = files.heads()
        self.route = resolve_route(route)
        self.run = ROUTE_TYPES[self.route](es, files, self.heads)
        self.top = top
        self.es = es

    def load(self, path: str) -> np.ndarray:
        loader = self.es.MonoLoader(
            filename=path, sampleRate=SAMPLE_RATE, resampleQuality=4
        )
        return np.asarray(loader(), np.float32)

    def __call__(self, audio: np.ndarray) -> dict[str, Any]:
        predictions = self.run(audio)
        values: dict[str, Any] = {}
        for head in self.heads:
            values.update(head.values(predictions[head.name], self.top))
        return values
