"""The ``onnx`` route: the audio tower and its projection run by ONNX
Runtime on the CPU, exported from the loaded model.

The route (``torch`` or ``onnx``) and, for ``onnx``, the precision
(``fp32``, or ``int8`` weights by dynamic quantisation) are part of what
makes a vector: ``route_identity`` goes into the store's identity, so
vectors of two routes never share an index. The torch route adds
nothing, so stores made before there were routes keep their tag.

The graph is exported once per model and precision and cached in
``export_dir`` (beside the stores), in a folder named by the model's
identity (its weights' digests or hub revision, as for the store) and
``EXPORT_VERSION``: a changed model is exported again. The text tower
stays in torch (a prompt is embedded once and cached).

Nothing here imports beets; torch, onnx and onnxruntime are imported
when a model is loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..naming import folder_slug
from .model import PRECISIONS, ROUTES, ModelError, ModelSpec, first_line

#: Changes whenever the exported graph would change for the same
#: weights; old exports are then not used.
EXPORT_VERSION = 1
OPSET = 17
#: What to install for the route.
ONNX_EXTRA = "pip install 'beets-audiofeatures[clap-onnx]'"


class RouteError(ModelError):
    """The onnx route cannot run; the message names the fix."""


def route_identity(route: str, precision: str) -> dict[str, Any]:
    """What the route adds to the store's identity: nothing for torch
    (stores made before routes keep their tag), the route, precision and
    export version for onnx."""
    check_route(route, precision)
    if route == "torch":
        return {}
    return {"route": route, "precision": precision, "export": EXPORT_VERSION}


def check_route(route: str, precision: str) -> None:
    if route not in ROUTES:
        raise RouteError(
            f"unknown CLAP route {route!r}: use one of {', '.join(ROUTES)}"
        )
    if precision not in PRECISIONS:
        raise RouteError(
            f"unknown CLAP precision {precision!r}: use one of "
            f"{', '.join(PRECISIONS)}"
        )
    if route == "torch" and precision != "fp32":
        raise RouteError(
            f"the torch route runs fp32 only, not {precision}: set "
            "audiofeatures.clap.route to onnx, or precision to fp32"
        )


def require_onnxruntime() -> None:
    """One line naming the route and the fix when a package it needs
    is missing (checked before the model is loaded)."""
    for package in ("onnxruntime", "onnx"):
        try:
            __import__(package)
        except ImportError as exc:
            raise RouteError(
                f"the onnx route needs {package}, which cannot be imported "
                f"({first_line(exc)}): {ONNX_EXTRA}, or set "
                "audiofeatures.clap.route to torch"
            ) from exc


def default_export_dir() -> Path:
    """Where exports go when the caller names no place."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "beets-audiofeatures" / "onnx"


def export_folder(spec: ModelSpec, weights: dict[str, Any]) -> Path:
    """The folder that holds the exports of the model ``weights``
    identifies (``ModelSource.identity``)."""
    root = Path(spec.export_dir).expanduser() if spec.export_dir else None
    key = json.dumps(
        {"weights": weights, "export": EXPORT_VERSION}, sort_keys=True
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    name = str(weights.get("model", "model")).split("/")[-1]
    name = folder_slug(name.removesuffix(".pt"), "model")
    return (root or default_export_dir()) / f"{name}-{digest}"


class OnnxAudioTower:
    """The exported audio tower + projection in an ONNX Runtime session:
    log-mel features in, (unnormalised) embeddings out."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        )
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own kinds
            raise RouteError(
                f"the onnx route cannot open {path} ({first_line(exc)}): "
                f"delete {path.parent} to export it again, or set "
                "audiofeatures.clap.route to torch"
            ) from exc
        self.input = self.session.get_inputs()[0].name
        self.path = path

    def __call__(self, features: np.ndarray) -> np.ndarray:
        feed = {self.input: np.ascontiguousarray(features, np.float32)}
        out: np.ndarray = self.session.run(None, feed)[0]
        return out


def load_audio_tower(
    model: Any, spec: ModelSpec, weights: dict[str, Any], threads: int
) -> OnnxAudioTower:
    """The cached export of ``model`` at ``spec.precision``, exported
    (and quantised) first when there is none."""
    folder = export_folder(spec, weights)
    name = f"audio-{spec.precision}.onnx"
    if not (folder / name).is_file():
        try:
            _export_into(model, folder, spec.precision)
        except OSError as exc:
            # A cluster worker may not reach the coordinator's cache
            # folder: the user's own cache serves as well.
            fallback = export_folder(replace(spec, export_dir=""), weights)
            if fallback == folder:
                raise _unwritable(folder, exc) from exc
            folder = fallback
            try:
                _export_into(model, folder, spec.precision)
            except OSError as again:
                raise _unwritable(folder, again) from again
    return OnnxAudioTower(folder / name, threads)


def _unwritable(folder: Path, exc: OSError) -> RouteError:
    return RouteError(
        f"the onnx route cannot write its export in {folder} "
        f"({exc.strerror or exc}): make it writable, or set "
        "audiofeatures.clap.route to torch"
    )


def _export_into(model: Any, folder: Path, precision: str) -> None:
    """Export into ``folder`` unless a process did meanwhile: workers
    starting together export once, the others wait for it."""
    from filelock import FileLock

    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".lock")):
        if not (folder / f"audio-{precision}.onnx").is_file():
            _export(model, folder, precision)


def _export(model: Any, folder: Path, precision: str) -> None:
    """Write ``audio-fp32.onnx`` (and ``audio-int8.onnx`` from it) into
    ``folder``, each whole or not at all."""
    fp32 = folder / "audio-fp32.onnx"
    if not fp32.is_file():
        _replace(fp32, lambda target: export_audio_tower(model, target))
    if precision == "int8":
        _replace(
            folder / "audio-int8.onnx",
            lambda target: quantize_int8(fp32, target),
        )


def _replace(path: Path, write: Any) -> None:
    """Run ``write(temporary path)`` and rename the result over ``path``."""
    scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=path.parent))
    try:
        target = scratch / path.name
        write(target)
        os.replace(target, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def export_audio_tower(model: Any, target: Path) -> None:
    """``model``'s audio tower and projection as an ONNX graph with a
    free batch size. Clips are 10 s: the fusion branch's "longer" flag is
    fixed False, as the torch route sets it."""
    import torch

    class AudioTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clap = model

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            longer = torch.zeros(
                (features.shape[0], 1), dtype=torch.bool, device=features.device
            )
            out = self.clap.get_audio_features(
                input_features=features, is_longer=longer
            )
            result: torch.Tensor = getattr(out, "pooler_output", out)
            return result

    config = model.config.audio_config
    channels = 4 if config.enable_fusion else 1
    example = torch.zeros((2, channels, 1001, config.num_mel_bins))
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer notes on python ifs
            torch.onnx.export(
                AudioTower().eval(),
                (example,),
                str(target),
                input_names=["input_features"],
                output_names=["embedding"],
                dynamic_axes={
                    "input_features": {0: "batch"},
                    "embedding": {0: "batch"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
    except Exception as exc:  # the exporter fails in many ways
        raise RouteError(
            f"the onnx route cannot export this model's audio tower "
            f"({type(exc).__name__}: {first_line(exc)}): set "
            "audiofeatures.clap.route to torch"
        ) from exc
    finally:
        model.train(was_training)


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic quantisation: int8 weights for the matrix products,
    activations quantised per call."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    quiet = _DropAdvice()
    # The quantiser advises a pre-processing step on the root log, which
    # beets would print; it changes nothing here (measured).
    root.addFilter(quiet)
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
        )
    except Exception as exc:  # onnxruntime's quantiser raises anything
        raise RouteError(
            f"the onnx route cannot quantise {source.name} to int8 "
            f"({type(exc).__name__}: {first_line(exc)}): set "
            "audiofeatures.clap.precision to fp32"
        ) from exc
    finally:
        root.removeFilter(quiet)


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()
