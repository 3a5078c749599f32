"""Essentia's trained classifiers, as files: a *head*
(``mood_happy-discogs-effnet-1``) reads the embeddings of an *extractor*
(``discogs-effnet-bs64-1``). Both come from Essentia's model site, each
with a metadata JSON that names its classes and tensors; nothing here
hard-codes a class order or a node name. Where the files are, which a
route needs, the fields a head fills and the tags it writes. No beets
here.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..atomic_files import atomic_write
from ..errors import SetupError
from ..naming import field_slug
from .descriptors import Kind, svm_class_field

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


class RouteFiles(Protocol):
    """Which files a classifier route reads."""

    extension: str  # of the model files (.pb, .onnx)

    @staticmethod
    def extractor_stem(name: str, known: Extractor) -> str: ...


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

    def needed(self, route: RouteFiles) -> list[tuple[str, Path]]:
        """``(url, local path)`` of every file the route needs."""
        files: list[tuple[str, Path]] = []
        extension = route.extension
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
            stem = route.extractor_stem(name, known)
            url = f"{self.site}feature-extractors/{known.folder}/{stem}{extension}"
            files.append((url, self.folder / f"{stem}{extension}"))
        return files

    def missing(self, route: RouteFiles) -> list[tuple[str, Path]]:
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
