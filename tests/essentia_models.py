"""A folder of Essentia classifier models as a user downloads them: the
metadata JSON (laid out like the published files), the TensorFlow
``.pb`` and the ``.onnx``, all tiny and random, built by the tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests import onnx_graphs, tf_graphs

EFFNET = "discogs-effnet-bs64-1"
MUSICNN = "msd-musicnn-1"
GENRES = [f"Genre{g}---Style {s}" for g in range(20) for s in range(20)]

#: name: (classes, .pb input, .pb output, extractor, activation)
HEADS = {
    "mood_happy-discogs-effnet-1": (
        ["happy", "non_happy"], "model/Placeholder", "model/Softmax", EFFNET, "Softmax"),
    "mood_sad-discogs-effnet-1": (
        ["non_sad", "sad"], "model/Placeholder", "model/Softmax", EFFNET, "Softmax"),
    "danceability-discogs-effnet-1": (
        ["danceable", "not_danceable"], "model/Placeholder", "model/Softmax", EFFNET, "Softmax"),
    "genre_discogs400-discogs-effnet-1": (
        GENRES, "serving_default_model_Placeholder", "PartitionedCall:0", EFFNET, "Sigmoid"),
    "mood_happy-msd-musicnn-1": (
        ["happy", "non_happy"], "model/Placeholder", "model/Softmax", MUSICNN, "Softmax"),
}  # fmt: skip
WIDTH = {EFFNET: 1280, MUSICNN: 200}


def head_json(name: str) -> dict[str, Any]:
    classes, input_name, output_name, extractor, activation = HEADS[name]
    return {
        "name": name.split("-")[0],
        "type": "multi-class classifier",
        "link": f"https://essentia.upf.edu/models/classification-heads/{name}.pb",
        "version": "1",
        "classes": classes,
        "model_types": ["frozen_model", "onnx"],
        "schema": {
            "inputs": [{"name": input_name, "type": "float", "shape": [WIDTH[extractor]]}],
            "outputs": [
                {"name": output_name, "type": "float", "shape": [len(classes)],
                 "op": activation, "output_purpose": "predictions"},
                {"name": "model/dense/BiasAdd", "type": "float", "shape": [100],
                 "op": "fully connected", "output_purpose": ""},
            ],
        },
        "inference": {
            "sample_rate": 16000,
            "algorithm": "TensorflowPredict2D",
            "embedding_model": {"algorithm": "x", "model_name": extractor},
        },
    }  # fmt: skip


def write_models(folder: Path, names: list[str]) -> Path:
    """Every file the models need, in both formats."""
    folder.mkdir(parents=True, exist_ok=True)
    extractors = set()
    for seed, name in enumerate(sorted(names), start=1):
        classes, input_name, output_name, extractor, activation = HEADS[name]
        extractors.add(extractor)
        (folder / f"{name}.json").write_text(json.dumps(head_json(name)))
        width = WIDTH[extractor]
        tf_graphs.write_head(
            folder / f"{name}.pb", width, len(classes), input_name=input_name,
            output_name=output_name, activation=activation, seed=seed,  # type: ignore[arg-type]
        )  # fmt: skip
        onnx_graphs.write_head(
            folder / f"{name}.onnx",
            width,
            len(classes),
            activation=activation,
            seed=seed,
        )
    if EFFNET in extractors:
        tf_graphs.write_effnet(folder / f"{EFFNET}.pb")
        onnx_graphs.write_effnet(folder / "discogs-effnet-bsdynamic-1.onnx")
    if MUSICNN in extractors:
        tf_graphs.write_musicnn(folder / f"{MUSICNN}.pb")
        onnx_graphs.write_musicnn(folder / f"{MUSICNN}.onnx")
    return folder
