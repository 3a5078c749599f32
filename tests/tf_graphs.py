"""Tiny frozen TensorFlow graphs for offline Essentia tests.

Essentia's ``TensorflowPredict*`` algorithms load binary ``GraphDef`` files
(``.pb``).  The real models are large downloads and building graphs normally
needs the ``tensorflow`` package, so this module writes small stand-ins by
hand-encoding the protobuf wire format.  Only the standard library and numpy
are used.

Each graph mimics the node names and tensor shapes of one real Essentia model
and computes something cheap but input-dependent, so tests can tell different
inputs apart:

* :func:`write_head` — a classification head for ``TensorflowPredict2D``
  (``model/Placeholder`` → ``model/Softmax``; or, with
  ``output_name="PartitionedCall:0"``, the genre_discogs400 naming).
* :func:`write_effnet` — a Discogs-EffNet look-alike for
  ``TensorflowPredictEffnetDiscogs`` (``PartitionedCall:0`` activations,
  ``PartitionedCall:1`` embeddings).
* :func:`write_musicnn` — a MusiCNN look-alike for
  ``TensorflowPredictMusiCNN`` (``model/Sigmoid``, ``model/dense/BiasAdd``).

The protobuf messages used (field numbers from TensorFlow's ``.proto`` files):

* ``GraphDef``: ``node`` = 1 (repeated ``NodeDef``), ``versions`` = 4.
* ``VersionDef``: ``producer`` = 1.
* ``NodeDef``: ``name`` = 1, ``op`` = 2, ``input`` = 3 (repeated),
  ``attr`` = 5 (map ``string`` → ``AttrValue``).
* ``AttrValue``: ``list`` = 1, ``b`` = 5, ``type`` = 6, ``shape`` = 7,
  ``tensor`` = 8.  ``ListValue.type`` = 6 (packed).
* ``TensorShapeProto``: ``dim`` = 2 (``Dim.size`` = 1).
* ``TensorProto``: ``dtype`` = 1, ``tensor_shape`` = 2,
  ``tensor_content`` = 4 (raw little-endian bytes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "DISCOGS400_INPUT",
    "DISCOGS400_OUTPUT",
    "EFFNET_INPUT",
    "EFFNET_PATCH",
    "MUSICNN_INPUT",
    "MUSICNN_PATCH",
    "write_discogs400_head",
    "write_effnet",
    "write_head",
    "write_musicnn",
]

Activation = Literal["Softmax", "Sigmoid"]

#: Node names of the genre_discogs400 classification head.
DISCOGS400_INPUT = "serving_default_model_Placeholder"
DISCOGS400_OUTPUT = "PartitionedCall:0"
#: Input node and (frames, mel bands) patch shape of discogs-effnet-bs64-1.
EFFNET_INPUT = "serving_default_melspectrogram"
EFFNET_PATCH = (128, 96)
#: Input node and (frames, mel bands) patch shape of msd-musicnn-1.
MUSICNN_INPUT = "model/Placeholder"
MUSICNN_PATCH = (187, 96)

# TensorFlow ``DataType`` enum values.
_DT_FLOAT = 1
_DT_INT32 = 3
_DTYPES: dict[np.dtype[np.generic], int] = {
    np.dtype(np.float32): _DT_FLOAT,
    np.dtype(np.int32): _DT_INT32,
}

# GraphDef producer version; anything ≥ TF's minimum (0) is accepted.
_PRODUCER = 27

_WIRE_VARINT = 0
_WIRE_LEN = 2

_TENSOR_REF = re.compile(r"^(?P<node>[^:]+):(?P<index>\d+)$")


# --------------------------------------------------------------------------
# Protobuf wire format
# --------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    """Encode an integer as a base-128 varint.

    Negative numbers become 64-bit two's complement (ten bytes), the way
    protobuf encodes negative ``int32``/``int64`` values.
    """
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(field: int, wire_type: int) -> bytes:
    """Encode a field key (field number and wire type)."""
    return _varint(field << 3 | wire_type)


def _int_field(field: int, value: int) -> bytes:
    """Encode a varint field (ints, bools and enums)."""
    return _tag(field, _WIRE_VARINT) + _varint(value)


def _bytes_field(field: int, payload: bytes) -> bytes:
    """Encode a length-delimited field (bytes, strings, sub-messages)."""
    return _tag(field, _WIRE_LEN) + _varint(len(payload)) + payload


def _str_field(field: int, text: str) -> bytes:
    """Encode a UTF-8 string field."""
    return _bytes_field(field, text.encode())


def _packed_ints(field: int, values: Iterable[int]) -> bytes:
    """Encode a packed repeated varint field."""
    return _bytes_field(field, b"".join(_varint(v) for v in values))


# --------------------------------------------------------------------------
# TensorFlow messages
# --------------------------------------------------------------------------


def _shape_proto(dims: Sequence[int]) -> bytes:
    """``TensorShapeProto`` with the given dimensions (-1 = unknown)."""
    return b"".join(_bytes_field(2, _int_field(1, d)) for d in dims)


def _tensor_proto(array: npt.NDArray[np.generic]) -> bytes:
    """``TensorProto`` holding ``array`` as raw little-endian content."""
    dtype = _DTYPES[array.dtype]
    content = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return (
        _int_field(1, dtype)
        + _bytes_field(2, _shape_proto(array.shape))
        + _bytes_field(4, content.tobytes())
    )


def _attr_type(dtype: int) -> bytes:
    """``AttrValue`` holding a ``DataType``."""
    return _int_field(6, dtype)


def _attr_type_list(dtypes: Sequence[int]) -> bytes:
    """``AttrValue`` holding a ``list(type)``."""
    return _bytes_field(1, _packed_ints(6, dtypes))


def _attr_bool(value: bool) -> bytes:
    """``AttrValue`` holding a bool."""
    return _int_field(5, int(value))


def _attr_str(value: str) -> bytes:
    """``AttrValue`` holding a string."""
    return _str_field(2, value)


def _attr_shape(dims: Sequence[int]) -> bytes:
    """``AttrValue`` holding a ``TensorShapeProto``."""
    return _bytes_field(7, _shape_proto(dims))


def _attr_tensor(array: npt.NDArray[np.generic]) -> bytes:
    """``AttrValue`` holding a ``TensorProto``."""
    return _bytes_field(8, _tensor_proto(array))


def _node_def(
    name: str, op: str, inputs: Sequence[str], attrs: Mapping[str, bytes]
) -> bytes:
    """``NodeDef``; ``attrs`` maps attribute names to encoded ``AttrValue``s."""
    out = _str_field(1, name) + _str_field(2, op)
    out += b"".join(_str_field(3, i) for i in inputs)
    for key in sorted(attrs):
        entry = _str_field(1, key) + _bytes_field(2, attrs[key])
        out += _bytes_field(5, entry)
    return out


def _graph_def(nodes: Iterable[bytes]) -> bytes:
    """``GraphDef`` with the given encoded nodes and a ``versions`` field."""
    body = b"".join(_bytes_field(1, n) for n in nodes)
    return body + _bytes_field(4, _int_field(1, _PRODUCER))


# --------------------------------------------------------------------------
# Graph builder
# --------------------------------------------------------------------------


class _Graph:
    """Accumulates float32 ``NodeDef``s; each method returns the node name."""

    def __init__(self) -> None:
        self._nodes: list[bytes] = []

    def _add(
        self,
        name: str,
        op: str,
        inputs: Sequence[str] = (),
        attrs: Mapping[str, bytes] | None = None,
    ) -> str:
        self._nodes.append(_node_def(name, op, inputs, attrs or {}))
        return name

    def placeholder(self, name: str, dims: Sequence[int]) -> str:
        """float32 ``Placeholder``; use -1 for unknown dimensions."""
        attrs = {"dtype": _attr_type(_DT_FLOAT), "shape": _attr_shape(dims)}
        return self._add(name, "Placeholder", attrs=attrs)

    def const(self, name: str, array: npt.NDArray[np.generic]) -> str:
        """``Const`` holding ``array`` (float32 or int32)."""
        attrs = {
            "dtype": _attr_type(_DTYPES[array.dtype]),
            "value": _attr_tensor(array),
        }
        return self._add(name, "Const", attrs=attrs)

    def matmul(self, name: str, a: str, b: str) -> str:
        """``MatMul`` of two rank-2 tensors, no transposes."""
        attrs = {
            "T": _attr_type(_DT_FLOAT),
            "transpose_a": _attr_bool(False),
            "transpose_b": _attr_bool(False),
        }
        return self._add(name, "MatMul", [a, b], attrs)

    def bias_add(self, name: str, value: str, bias: str) -> str:
        """``BiasAdd`` along the last axis."""
        attrs = {"T": _attr_type(_DT_FLOAT), "data_format": _attr_str("NHWC")}
        return self._add(name, "BiasAdd", [value, bias], attrs)

    def unary(self, name: str, op: str, value: str) -> str:
        """Element-wise op with a single ``T`` attr (Softmax, Sigmoid, ...)."""
        return self._add(name, op, [value], {"T": _attr_type(_DT_FLOAT)})

    def mean(self, name: str, value: str, axis: int) -> str:
        """``Mean`` over one axis, dropping it."""
        axes = self.const(
            f"{name}/reduction_indices", np.array([axis], np.int32)
        )
        attrs = {
            "T": _attr_type(_DT_FLOAT),
            "Tidx": _attr_type(_DT_INT32),
            "keep_dims": _attr_bool(False),
        }
        return self._add(name, "Mean", [value, axes], attrs)

    def identity_n(self, name: str, values: Sequence[str]) -> str:
        """``IdentityN``; output ``name:i`` forwards ``values[i]``."""
        attrs = {"T": _attr_type_list([_DT_FLOAT] * len(values))}
        return self._add(name, "IdentityN", values, attrs)

    def dense(
        self, scope: str, value: str, weights: npt.NDArray[np.float32]
    ) -> str:
        """``value @ weights + bias`` with a small constant bias.

        Nodes are ``{scope}/kernel``, ``{scope}/bias``, ``{scope}/MatMul`` and
        ``{scope}/BiasAdd`` (the returned name), as Keras names them.
        """
        bias = np.linspace(-0.1, 0.1, weights.shape[1], dtype=np.float32)
        kernel = self.const(f"{scope}/kernel", weights)
        product = self.matmul(f"{scope}/MatMul", value, kernel)
        bias_node = self.const(f"{scope}/bias", bias)
        return self.bias_add(f"{scope}/BiasAdd", product, bias_node)

    def write(self, path: str | Path) -> Path:
        """Serialise the graph to ``path`` and return it as a ``Path``."""
        path = Path(path)
        path.write_bytes(_graph_def(self._nodes))
        return path


def random_kernel(
    rng: np.random.Generator, n_in: int, n_out: int
) -> npt.NDArray[np.float32]:
    """Random ``[n_in, n_out]`` kernel scaled to keep outputs near unit size."""
    scale = np.float32(1.0 / np.sqrt(n_in))
    return rng.standard_normal((n_in, n_out), dtype=np.float32) * scale


def _split_tensor_name(name: str) -> tuple[str, int | None]:
    """Split ``"node:0"`` into ``("node", 0)``; plain names give ``None``."""
    match = _TENSOR_REF.match(name)
    if match is None:
        return name, None
    return match["node"], int(match["index"])


# --------------------------------------------------------------------------
# Public writers
# --------------------------------------------------------------------------


def write_head(
    path: str | Path,
    in_dim: int,
    n_classes: int,
    *,
    input_name: str = "model/Placeholder",
    output_name: str = "model/Softmax",
    activation: Activation = "Softmax",
    seed: int = 0,
) -> Path:
    """Write a classification head for ``TensorflowPredict2D``.

    Graph: ``Placeholder [?, in_dim]`` → ``MatMul`` → ``BiasAdd`` →
    ``activation`` → ``[?, n_classes]``.

    ``output_name`` is either a node name (the activation node gets that name)
    or a tensor reference ``"node:0"``, as in genre_discogs400
    (``"PartitionedCall:0"``); then the activation is ``model/<activation>``
    and is forwarded by an ``IdentityN`` node called ``node``.

    Returns ``path`` as a ``Path``.
    """
    if activation not in ("Softmax", "Sigmoid"):
        raise ValueError(f"unsupported activation: {activation!r}")
    node, index = _split_tensor_name(output_name)
    if index not in (None, 0):
        raise ValueError(f"a head has a single output, not {output_name!r}")

    rng = np.random.default_rng(seed)
    graph = _Graph()
    x = graph.placeholder(input_name, [-1, in_dim])
    logits = graph.dense(
        "model/dense", x, random_kernel(rng, in_dim, n_classes)
    )
    if index is None:
        graph.unary(node, activation, logits)
    else:
        probs = graph.unary(f"model/{activation}", activation, logits)
        graph.identity_n(node, [probs])
    return graph.write(path)


def write_discogs400_head(
    path: str | Path,
    in_dim: int = 1280,
    n_classes: int = 400,
    *,
    seed: int = 0,
) -> Path:
    """Write a head named like genre_discogs400-discogs-effnet-1.pb.

    Use with ``TensorflowPredict2D(input=DISCOGS400_INPUT,
    output=DISCOGS400_OUTPUT)``.
    """
    return write_head(
        path,
        in_dim,
        n_classes,
        input_name=DISCOGS400_INPUT,
        output_name=DISCOGS400_OUTPUT,
        activation="Softmax",
        seed=seed,
    )


def write_effnet(
    path: str | Path,
    *,
    embedding_dim: int = 1280,
    n_classes: int = 400,
    seed: int = 0,
) -> Path:
    """Write a Discogs-EffNet stand-in for ``TensorflowPredictEffnetDiscogs``.

    Input ``serving_default_melspectrogram`` is float32 ``[?, 128, 96]``
    (batch, frames, mel bands).  The graph averages over frames and applies
    two dense layers.  ``IdentityN`` node ``PartitionedCall`` exposes
    ``PartitionedCall:0`` = sigmoid activations ``[?, n_classes]`` and
    ``PartitionedCall:1`` = embeddings ``[?, embedding_dim]``.

    Returns ``path`` as a ``Path``.
    """
    frames, bands = EFFNET_PATCH
    rng = np.random.default_rng(seed)
    graph = _Graph()
    x = graph.placeholder(EFFNET_INPUT, [-1, frames, bands])
    pooled = graph.mean("model/pool", x, axis=1)
    embeddings = graph.dense(
        "model/embeddings", pooled, random_kernel(rng, bands, embedding_dim)
    )
    logits = graph.dense(
        "model/logits", pooled, random_kernel(rng, bands, n_classes)
    )
    activations = graph.unary("model/Sigmoid", "Sigmoid", logits)
    graph.identity_n("PartitionedCall", [activations, embeddings])
    return graph.write(path)


def write_musicnn(
    path: str | Path,
    *,
    embedding_dim: int = 200,
    n_classes: int = 50,
    seed: int = 0,
) -> Path:
    """Write a MusiCNN stand-in for ``TensorflowPredictMusiCNN``.

    Input ``model/Placeholder`` is float32 ``[?, 187, 96]``.  The graph
    averages over frames; ``model/dense/BiasAdd`` gives embeddings
    ``[?, embedding_dim]`` and ``model/Sigmoid`` gives activations
    ``[?, n_classes]`` computed from them, as in msd-musicnn-1.pb.

    Returns ``path`` as a ``Path``.
    """
    frames, bands = MUSICNN_PATCH
    rng = np.random.default_rng(seed)
    graph = _Graph()
    x = graph.placeholder(MUSICNN_INPUT, [-1, frames, bands])
    pooled = graph.mean("model/pool", x, axis=1)
    embeddings = graph.dense(
        "model/dense", pooled, random_kernel(rng, bands, embedding_dim)
    )
    logits = graph.dense(
        "model/dense_1",
        embeddings,
        random_kernel(rng, embedding_dim, n_classes),
    )
    graph.unary("model/Sigmoid", "Sigmoid", logits)
    return graph.write(path)
