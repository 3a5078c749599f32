"""Tiny ONNX models shaped like Essentia's published ``.onnx`` files.

Built with the ``onnx`` helper API. The tensors are named as in the real
files (``melspectrogram`` -> ``activations``, ``embeddings``; heads
``embeddings`` -> ``activations``), and the maths and the random weights
are exactly those of the TensorFlow stand-ins in :mod:`tests.tf_graphs`
for the same seed, so both routes must give the same numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tests.tf_graphs import EFFNET_PATCH, MUSICNN_PATCH, random_kernel

if TYPE_CHECKING:
    from onnx import NodeProto, TensorProto, ValueInfoProto


def _dense(
    nodes: list[NodeProto],
    inits: list[TensorProto],
    scope: str,
    value: str,
    kernel: np.ndarray,
) -> str:
    from onnx import helper, numpy_helper

    bias = np.linspace(-0.1, 0.1, kernel.shape[1], dtype=np.float32)
    inits += [
        numpy_helper.from_array(kernel, f"{scope}/kernel"),
        numpy_helper.from_array(bias, f"{scope}/bias"),
    ]
    nodes += [
        helper.make_node(
            "MatMul", [value, f"{scope}/kernel"], [f"{scope}/MatMul"]
        ),
        helper.make_node(
            "Add", [f"{scope}/MatMul", f"{scope}/bias"], [f"{scope}/out"]
        ),
    ]
    return f"{scope}/out"


def _save(
    path: Path,
    nodes: list[NodeProto],
    inits: list[TensorProto],
    inputs: list[ValueInfoProto],
    outputs: list[ValueInfoProto],
) -> Path:
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, path.stem, inputs, outputs, inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _extractor(
    path: Path, patch: tuple[int, int], embedding_dim: int, n_classes: int,
    seed: int, logits_from_embeddings: bool,
) -> Path:  # fmt: skip
    from onnx import TensorProto, helper

    frames, bands = patch
    rng = np.random.default_rng(seed)
    nodes: list[NodeProto] = [
        helper.make_node(
            "ReduceMean", ["melspectrogram"], ["pooled"], axes=[1], keepdims=0
        )
    ]
    inits: list[TensorProto] = []
    embeddings = _dense(
        nodes, inits, "emb", "pooled", random_kernel(rng, bands, embedding_dim)
    )
    nodes.append(helper.make_node("Identity", [embeddings], ["embeddings"]))
    source, width = (
        ("embeddings", embedding_dim)
        if logits_from_embeddings
        else ("pooled", bands)
    )
    logits = _dense(
        nodes, inits, "logits", source, random_kernel(rng, width, n_classes)
    )
    nodes.append(helper.make_node("Sigmoid", [logits], ["activations"]))
    float_ = TensorProto.FLOAT
    return _save(
        path, nodes, inits,
        [helper.make_tensor_value_info("melspectrogram", float_, ["n", frames, bands])],
        [helper.make_tensor_value_info("activations", float_, ["n", n_classes]),
         helper.make_tensor_value_info("embeddings", float_, ["n", embedding_dim])],
    )  # fmt: skip


def write_effnet(
    path: Path,
    *,
    embedding_dim: int = 1280,
    n_classes: int = 400,
    seed: int = 0,
) -> Path:
    """Like ``discogs-effnet-bsdynamic-1.onnx``; equals ``tf_graphs.write_effnet``."""
    return _extractor(path, EFFNET_PATCH, embedding_dim, n_classes, seed, False)


def write_musicnn(
    path: Path, *, embedding_dim: int = 200, n_classes: int = 50, seed: int = 0
) -> Path:
    """Like ``msd-musicnn-1.onnx``; equals ``tf_graphs.write_musicnn``."""
    return _extractor(path, MUSICNN_PATCH, embedding_dim, n_classes, seed, True)


def write_head(
    path: Path,
    in_dim: int,
    n_classes: int,
    *,
    activation: str = "Softmax",
    seed: int = 0,
) -> Path:
    """A head ``embeddings`` -> ``activations``; equals ``tf_graphs.write_head``."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    nodes: list[NodeProto] = []
    inits: list[TensorProto] = []
    logits = _dense(
        nodes,
        inits,
        "dense",
        "embeddings",
        random_kernel(rng, in_dim, n_classes),
    )
    nodes.append(
        helper.make_node(activation, [logits], ["activations"], axis=-1)
        if activation == "Softmax"
        else helper.make_node(activation, [logits], ["activations"])
    )
    float_ = TensorProto.FLOAT
    return _save(
        path, nodes, inits,
        [helper.make_tensor_value_info("embeddings", float_, ["n", in_dim])],
        [helper.make_tensor_value_info("activations", float_, ["n", n_classes])],
    )  # fmt: skip
