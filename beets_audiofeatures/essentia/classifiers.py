"""Essentia's trained classifiers: mood, genre, voice, danceability, ...

A classifier is a *head* (``mood_happy-discogs-effnet-1``) that reads the
embeddings of an *extractor* (``discogs-effnet-bs64-1``). Both are files
from Essentia's model site, each with a metadata JSON that names its
classes and tensors; nothing here hard-codes a class order or a node
name. Two routes run them, with the same results in the same fields:

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

import importlib.metadata
import json
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..atomic_files import atomic_write
from ..errors import SetupError
from ..naming import field_slug
from .descriptors import Kind, svm_class_field

SAMPLE_RATE = 16_000
LICENCE = (
    "CC BY-NC-SA 4.0 (non-commercial use; Essentia models by the MTG, UPF)"
)
SITE = "https://essentia.upf.edu/models/"


@dataclass(frozen=True)
class Extractor:
    """What Essentia's site and algorithms say about an embedding model."""

    folder: str  # under feature-extractors/ on the model site
    algorithm: str  # the essentia-tensorflow algorithm
    embeddings: str  # its embeddings output in the .pb
    patch: tuple[int, int]  # mel frames per patch, hop between patches
    onnx_name: str  # the file published as .onnx


EXTRACTORS = {
    "discogs-effnet-bs64-1": Extractor(
        "discogs-effnet", "TensorflowPredictEffnetDiscogs", "PartitionedCall:1",
        (128, 62), "discogs-effnet-bsdynamic-1",
    ),
    "msd-musicnn-1": Extractor(
        "musicnn", "TensorflowPredictMusiCNN", "model/dense/BiasAdd",
        (187, 93), "msd-musicnn-1",
    ),
}  # fmt: skip


class ClassifierError(SetupError):
    """A model is missing or unusable; the message says what to do."""

    section = "essentia"


@dataclass(frozen=True)
class Head:
    """A classification head, as its metadata JSON describes it."""

    name: str  # file stem
    classes: tuple[str, ...]
    input: str  # tensor names in the .pb
    output: str
    extractor: str  # the embedding model it reads

    @property
    def task(self) -> str:
        return field_slug(self.name.split("-", 1)[0])

    @property
    def field(self) -> str:
        return svm_class_field(self.task)

    def class_field(self, label: str) -> str:
        return f"essentia_{self.task}_{field_slug(label)}"

    def fields(self) -> dict[str, Kind]:
        kinds = {self.field: Kind.STRING}
        kinds.update({self.class_field(c): Kind.FLOAT for c in self.classes})
        return kinds

    def values(self, probabilities: np.ndarray, top: int) -> dict[str, Any]:
        """The winning class and the probabilities (only the ``top``
        most likely when ``top`` is set and there are more classes)."""
        order = np.argsort(-probabilities, kind="stable")
        keep = order[:top] if 0 < top < len(order) else order
        values: dict[str, Any] = {self.field: self.classes[int(order[0])]}
        for index in keep:
            values[self.class_field(self.classes[index])] = round(
                float(probabilities[index]), 4
            )
        return values


def file_tags(
    heads: list[Head],
    values: dict[str, Any],
    threshold: float = 0.5,
    genre_floor: float = 0.1,
) -> dict[str, Any]:
    """MOOD and GENRE tags for players: the moods whose head says yes
    (``mood_happy`` -> ``happy``), and the three likeliest genres above
    ``genre_floor``, a Discogs ``Parent---Style`` label giving both."""
    moods: list[str] = []
    genres: list[tuple[float, str]] = []
    for head in heads:
        if head.task.startswith("mood_"):
            mood = head.task.removeprefix("mood_")
            if mood in head.classes:
                probability = values.get(head.class_field(mood))
                if probability is not None and probability >= threshold:
                    moods.append(mood)
        elif head.task.startswith("genre_"):
            for label in head.classes:
                probability = values.get(head.class_field(label))
                if probability is not None and probability >= genre_floor:
                    genres.append((probability, label))
    names: list[str] = []
    for _, label in sorted(genres, reverse=True)[:3]:
        for name in label.split("---"):
            if name.strip() and name.strip() not in names:
                names.append(name.strip())
    tags: dict[str, Any] = {}
    if moods:
        tags["essentia_moods"] = "; ".join(moods)
    if names:
        tags["genres"] = names
    return tags


def read_head(path: Path) -> Head:
    """A head's metadata JSON (``<name>.json``)."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        schema = meta["schema"]
        outputs = schema["outputs"]
        output = next(
            (
                o["name"]
                for o in outputs
                if o.get("output_purpose") == "predictions"
            ),
            outputs[0]["name"],
        )
        extractor = meta["inference"]["embedding_model"]["model_name"]
        return Head(
            name=path.stem,
            classes=tuple(str(c) for c in meta["classes"]),
            input=schema["inputs"][0]["name"],
            output=output,
            extractor=str(extractor),
        )
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ClassifierError(
            f"{path} is not a usable Essentia model description ({exc})"
        ) from exc


@dataclass(frozen=True)
class ModelFiles:
    """Where the configured models are, and which files a route needs."""

    folder: Path
    names: tuple[str, ...]  # heads, as configured
    site: str = SITE  # or a mirror with the same layout

    def heads(self) -> list[Head]:
        missing = [
            n for n in self.names if not (self.folder / f"{n}.json").is_file()
        ]
        if missing:
            raise ClassifierError(
                f"model description {missing[0]}.json is missing from "
                f"{self.folder}: run beet essentia --download-models"
            )
        return [read_head(self.folder / f"{n}.json") for n in self.names]

    def needed(self, route: str) -> list[tuple[str, Path]]:
        """``(url, local path)`` of every file the route needs."""
        files: list[tuple[str, Path]] = []
        kind = ROUTE_TYPES[route]
        extension = kind.extension
        extractors: set[str] = set()
        for name in self.names:
            task = name.split("-", 1)[0]
            for ext in (".json", extension):
                url = f"{self.site}classification-heads/{task}/{name}{ext}"
                files.append((url, self.folder / f"{name}{ext}"))
            description = self.folder / f"{name}.json"
            if description.is_file():
                extractors.add(read_head(description).extractor)
        for name in sorted(extractors):
            known = EXTRACTORS.get(name)
            if known is None:
                continue
            stem = kind.extractor_stem(name, known)
            url = f"{self.site}feature-extractors/{known.folder}/{stem}{extension}"
            files.append((url, self.folder / f"{stem}{extension}"))
        return files

    def missing(self, route: str) -> list[tuple[str, Path]]:
        return [
            (url, path)
            for url, path in self.needed(route)
            if not path.is_file()
        ]


def download(url: str, target: Path, timeout: float = 60) -> None:
    """Fetch one model file, atomically."""
    with (
        urllib.request.urlopen(url, timeout=timeout) as response,
        atomic_write(target) as out,
    ):
        shutil.copyfileobj(response, out)


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
        "pip uninstall essentia; pip install --pre essentia-tensorflow",
    )

    @staticmethod
    def extractor_stem(name: str, known: Extractor) -> str:
        return name

    def __init__(self, es: ModuleType, files: ModelFiles, heads: list[Head]):
        if not hasattr(es, "TensorflowPredict2D"):
            raise ClassifierError(
                "the tensorflow route needs essentia-tensorflow in place of "
                "essentia (pip uninstall essentia; pip install --pre "
                "essentia-tensorflow), "
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
    needs = ("onnxruntime", "pip install onnxruntime")

    @staticmethod
    def extractor_stem(name: str, known: Extractor) -> str:
        return known.onnx_name

    def __init__(self, es: ModuleType, files: ModelFiles, heads: list[Head]):
        try:
            import onnxruntime
        except ImportError as exc:
            raise ClassifierError(
                "the onnx route needs onnxruntime: pip install onnxruntime"
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


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def resolve_route(route: str) -> str:
    """``auto``: TensorFlow when essentia-tensorflow is installed,
    otherwise onnxruntime (decided from the installed distributions,
    without importing Essentia, which costs a second)."""
    if route != "auto":
        return route
    return "tensorflow" if _installed(TensorflowRoute.needs[0]) else "onnx"


def route_status(route: str) -> str:
    """The route, and whether what it needs is installed."""
    distribution, install = ROUTE_TYPES[route].needs
    if _installed(distribution):
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
