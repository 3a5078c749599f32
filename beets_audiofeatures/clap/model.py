"""The CLAP model: finding it, loading it, and embedding audio and text.

Backed by Hugging Face transformers' ``ClapModel``. One setting names the
model, in any of three forms:

* a hub id (``laion/larger_clap_music``), fetched once into the hub cache;
* a folder in ``save_pretrained`` layout;
* an original LAION-CLAP ``.pt`` checkpoint (``630k-audioset-best.pt``,
  ``music_audioset_epoch_15_esc_90.14.pt``, ...), converted in memory: its
  architecture is read off the tensor shapes and its parameters renamed
  into ``ClapModel``'s layout.

Nothing here imports beets; torch and transformers are imported when a
model is loaded, so commands that find everything cached never pay for
them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from ..atomic_files import atomic_write
from ..errors import SetupError
from ..naming import folder_slug
from ..vectors import unit_rows

if TYPE_CHECKING:
    import torch

SAMPLE_RATE = 48_000
CLIP_SECONDS = 10
CLIP_SAMPLES = SAMPLE_RATE * CLIP_SECONDS

LAION_DOWNLOAD = "https://huggingface.co/lukewys/laion_clap/resolve/main/"
#: Released LAION-CLAP checkpoints: audio tower and whether it is fused.
LAION_CHECKPOINTS = {
    "630k-best.pt": ("HTSAT-tiny", False),
    "630k-audioset-best.pt": ("HTSAT-tiny", False),
    "630k-fusion-best.pt": ("HTSAT-tiny", True),
    "630k-audioset-fusion-best.pt": ("HTSAT-tiny", True),
    "music_audioset_epoch_15_esc_90.14.pt": ("HTSAT-base", False),
    "music_speech_epoch_15_esc_89.25.pt": ("HTSAT-base", False),
    "music_speech_audioset_epoch_15_esc_89.98.pt": ("HTSAT-base", False),
}
#: Patch embedding width of each HTSAT size, as the checkpoint shows it.
AUDIO_TOWERS = {96: "HTSAT-tiny", 128: "HTSAT-base", 256: "HTSAT-large"}
#: roberta-base has 50265 tokens; transformers answers a missing
#: tokenizer, offline, with a 5-token placeholder that embeds every prompt
#: to the same vector.
MIN_VOCABULARY = 100


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


def checkpoint_dirs() -> list[Path]:
    """Where existing LAION-CLAP setups keep their ``.pt`` files."""
    dirs = []
    if env := os.environ.get("LAION_CLAP_CACHE"):
        dirs.append(Path(env))
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        dirs.append(Path(xdg) / "laion_clap")
    dirs.append(Path.home() / ".cache" / "laion_clap")
    return dirs


def is_checkpoint_name(model: str) -> bool:
    return model.endswith((".pt", ".pth", ".ckpt"))


def locate_checkpoint(model: str) -> Path:
    """The ``.pt`` file a setting names: a path, or a bare released file
    name looked up where LAION-CLAP setups keep them."""
    path = Path(model).expanduser()
    if path.is_file():
        return path.resolve()
    looked = [path]
    if path.name == model:  # a bare name: search the usual places
        for folder in checkpoint_dirs():
            candidate = folder / model
            if candidate.is_file():
                return candidate.resolve()
            looked.append(candidate)
    where = ", ".join(str(p) for p in looked)
    hint = (
        f"; download it from {LAION_DOWNLOAD}{path.name}"
        if path.name in LAION_CHECKPOINTS
        else ""
    )
    raise ModelError(
        f"CLAP checkpoint {model} not found (looked at {where}){hint}"
    )


# -- LAION checkpoint -> ClapModel -------------------------------------------

_AUDIO_RENAMES = [
    (r"^audio_branch\.bn0\.", "audio_model.audio_encoder.batch_norm."),
    (r"^audio_branch\.", "audio_model.audio_encoder."),
    (r"\.norm1\.", ".layernorm_before."),
    (r"\.norm2\.", ".layernorm_after."),
    (r"\.attn\.proj\.", ".attention.output.dense."),
    (r"\.attn\.relative_position", ".attention.self.relative_position"),
    (r"\.mlp\.fc1\.", ".intermediate.dense."),
    (r"\.mlp\.fc2\.", ".output.dense."),
]
# Parts of a training checkpoint that embeddings never use.
_UNUSED = re.compile(
    r"^(audio_branch\.(head|tscam_conv|spectrogram_extractor|logmel_extractor)"
    r"|audio_transform|text_transform|text_branch\.embeddings\.position_ids"
    r"|.*\.attn_mask$)"
)


def rename_laion_state_dict(
    state: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """LAION-CLAP parameter names and layout -> ``ClapModel``'s."""
    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if _UNUSED.match(key):
            continue
        if key.startswith("text_branch."):
            new = "text_model." + key.removeprefix("text_branch.")
        elif m := re.match(r"^(audio|text)_projection\.([02])\.(.*)$", key):
            layer = "linear1" if m[2] == "0" else "linear2"
            new = f"{m[1]}_projection.{layer}.{m[3]}"
        elif key.startswith("audio_branch."):
            new = key
            for pattern, replacement in _AUDIO_RENAMES:
                new = re.sub(pattern, replacement, new)
            if ".attn.qkv." in new:  # one fused matrix -> three
                base = new.replace(".attn.qkv.", ".attention.self.")
                for part, chunk in zip(
                    ("query", "key", "value"),
                    tensor.chunk(3, dim=0),
                    strict=False,
                ):
                    renamed[base.replace(".self.", f".self.{part}.")] = chunk
                continue
        else:
            new = key
        renamed[new] = tensor
    return renamed


def laion_architecture(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """``ClapConfig`` arguments read off the tensor shapes of a LAION
    checkpoint (already renamed), so any size loads without a table."""
    audio = "audio_model.audio_encoder."
    width = state[audio + "patch_embed.proj.weight"].shape[0]
    depths = []
    heads = []
    layer = 0
    while f"{audio}layers.{layer}.blocks.0.layernorm_before.weight" in state:
        blocks = 0
        while (
            f"{audio}layers.{layer}.blocks.{blocks}.layernorm_before.weight"
            in state
        ):
            blocks += 1
        depths.append(blocks)
        table = state[
            f"{audio}layers.{layer}.blocks.0.attention.self."
            "relative_position_bias_table"
        ]
        heads.append(table.shape[1])
        layer += 1
    text = "text_model."
    text_layers = 0
    while (
        f"{text}encoder.layer.{text_layers}.attention.self.query.weight"
        in state
    ):
        text_layers += 1
    words = state[text + "embeddings.word_embeddings.weight"]
    hidden = words.shape[1]
    return {
        "audio_config": {
            "patch_embeds_hidden_size": width,
            "depths": depths,
            "num_attention_heads": heads,
            "hidden_size": state[audio + "norm.weight"].shape[0],
            "enable_fusion": audio + "patch_embed.mel_conv2d.weight" in state,
            "fusion_type": None,
        },
        "text_config": {
            "vocab_size": words.shape[0],
            "hidden_size": hidden,
            "num_hidden_layers": text_layers,
            "num_attention_heads": max(1, hidden // 64),
            "intermediate_size": state[
                text + "encoder.layer.0.intermediate.dense.weight"
            ].shape[0],
            "max_position_embeddings": state[
                text + "embeddings.position_embeddings.weight"
            ].shape[0],
            "type_vocab_size": state[
                text + "embeddings.token_type_embeddings.weight"
            ].shape[0],
        },
        "projection_dim": state["audio_projection.linear2.weight"].shape[0],
    }


def read_checkpoint(path: Path, trust: bool) -> dict[str, torch.Tensor]:
    """The state dict of a LAION ``.pt`` file, loaded without running
    pickled code unless the user trusts the file."""
    import pickle
    import warnings

    import torch

    if problem := _checkpoint_problem(path):
        raise ModelError(
            f"the CLAP checkpoint {path} {problem}: {_download_again(path)}"
        )
    try:
        with warnings.catch_warnings():  # torch's notes on old pickles
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        raise ModelError(
            f"{path} needs full unpickling, which can run code hidden in the "
            "file; if you trust where it came from, set "
            "audiofeatures.clap.trust_checkpoint: yes"
        ) from exc
    except (OSError, RuntimeError, EOFError, ValueError, KeyError) as exc:
        raise ModelError(
            f"the CLAP checkpoint {path} is damaged ({_first_line(exc)}): "
            f"{_download_again(path)}"
        ) from exc
    state = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not state:
        raise ModelError(f"{path} holds no state dict")
    return {key.removeprefix("module."): value for key, value in state.items()}


def _checkpoint_problem(path: Path) -> str | None:
    """What is wrong with a ``.pt`` file that cannot be a checkpoint, seen
    from its first bytes: torch writes a zip archive (a legacy one is a
    pickle), so anything else is damaged or some other file."""
    import zipfile

    try:
        with open(path, "rb") as handle:
            start = handle.read(4)
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not start:
        return "is empty"
    if start.startswith(b"PK") and not is_zip:
        return "is cut short (its zip archive has no end)"
    if not is_zip and not start.startswith(b"\x80"):
        return "is not a PyTorch checkpoint (neither a zip nor a pickle)"
    return None


def _download_again(path: Path) -> str:
    if path.name in LAION_CHECKPOINTS:
        return f"download it again from {LAION_DOWNLOAD}{path.name}"
    return "replace it with a complete copy"


# -- the loaded model ---------------------------------------------------------


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


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {
        "1",
        "true",
        "yes",
        "on",
    }


def _hub_unreachable() -> str | None:
    """Why the hub cannot be reached, found out in seconds (a download
    attempt without network retries each file with backoff for half a
    minute); None when it can be, or when a proxy decides."""
    if any(
        os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")
    ):
        return None
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parts = urlsplit(endpoint)
    host = parts.hostname or "huggingface.co"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        return f"{host} cannot be reached ({exc.strerror or exc})"
    return None


def _from_pretrained(cls: Any, name: str) -> Any:
    """Load from a folder or the hub cache; reach the hub only when the
    cache lacks the files."""
    try:
        return cls.from_pretrained(name, local_files_only=True)
    except OSError:
        if Path(name).expanduser().exists() or _hub_offline():
            raise
    if reason := _hub_unreachable():
        raise OSError(f"{name} is not in the local cache and {reason}")
    return cls.from_pretrained(name)


class ClapEmbedder:
    """A loaded CLAP model that turns 10-s clips and prompts into unit
    vectors."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._import()
        import torch

        torch.set_num_threads(spec.threads or os.cpu_count() or 1)
        with contextlib.suppress(RuntimeError):  # once per process only
            torch.set_num_interop_threads(max(1, spec.interop_threads))
        self.device = _resolve_device(spec.device)
        if is_checkpoint_name(spec.model):
            self.model, self.tokenizer, self.features = self._load_laion()
        else:
            self.model, self.tokenizer, self.features = self._load_pretrained()
        self._check_tokenizer()
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
        import transformers.utils.logging as hf_logging

        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    def _load_pretrained(self) -> tuple[Any, Any, Any]:
        from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

        name = self.spec.model
        try:
            model = _from_pretrained(ClapModel, name)
        except Exception as exc:  # safetensors, torch: any error is one line
            if damaged := damaged_weights(name):
                raise damaged from exc
            if not isinstance(exc, OSError):
                raise unloadable(name, exc) from exc
            raise _missing_files(name, exc) from exc
        try:
            tokenizer = _from_pretrained(AutoTokenizer, name)
            features = _from_pretrained(ClapFeatureExtractor, name)
        except OSError as exc:
            raise _missing_files(name, exc) from exc
        return model, tokenizer, features

    def _load_laion(self) -> tuple[Any, Any, Any]:
        from transformers import (
            AutoTokenizer,
            ClapConfig,
            ClapFeatureExtractor,
            ClapModel,
        )

        spec = self.spec
        path = locate_checkpoint(spec.model)
        state = rename_laion_state_dict(
            read_checkpoint(path, spec.trust_checkpoint)
        )
        try:
            arch = laion_architecture(state)
        except (KeyError, IndexError, AttributeError) as exc:
            raise ModelError(
                f"{path} is not a LAION-CLAP checkpoint (no {exc})"
            ) from exc
        tower = AUDIO_TOWERS.get(
            arch["audio_config"]["patch_embeds_hidden_size"]
        )
        wanted = spec.amodel.replace("_", "-").lower()
        if wanted != "auto" and (tower is None or tower.lower() != wanted):
            raise ModelError(
                f"{path.name} holds a {tower or 'non-standard'} audio tower, "
                f"not the configured amodel {spec.amodel}"
            )
        fused = arch["audio_config"]["enable_fusion"]
        if spec.fusion is not None and spec.fusion != fused:
            raise ModelError(
                f"{path.name} is {'a' if fused else 'not a'} fusion model; "
                f"set audiofeatures.clap.fusion to {'yes' if fused else 'no'} "
                "or leave it unset"
            )
        try:
            model = ClapModel(ClapConfig(**arch))
            result = model.load_state_dict(state, strict=False)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise ModelError(
                f"{path} does not fit ClapModel ({_first_line(exc)}): "
                f"{_download_again(path)}"
            ) from exc
        missing = [
            k
            for k in result.missing_keys
            if not k.endswith(("position_ids", "token_type_ids"))
        ]
        if missing or result.unexpected_keys:
            raise ModelError(
                f"{path.name} does not fit ClapModel: missing "
                f"{missing[:3]}, unexpected {result.unexpected_keys[:3]}"
            )
        try:
            tokenizer = _from_pretrained(AutoTokenizer, spec.tokenizer)
        except OSError as exc:
            raise ModelError(
                f"the RoBERTa tokenizer {spec.tokenizer} for {path.name} could "
                f"not be loaded: {_first_line(exc)}. It needs vocab.json, "
                "merges.txt and tokenizer_config.json: let beets download "
                "them once with network access, or set "
                "audiofeatures.clap.tokenizer to a folder that holds them"
            ) from exc
        features = ClapFeatureExtractor(
            frequency_min=50,
            frequency_max=14_000,
            truncation="fusion" if fused else "rand_trunc",
            padding="repeatpad",
        )
        return model, tokenizer, features

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

    def embed_clips(self, clips: np.ndarray) -> np.ndarray:
        """Unit vectors, one per row of ``clips`` (N x 480000 @ 48 kHz)."""
        import torch

        features = self.features(
            list(clips), sampling_rate=SAMPLE_RATE, return_tensors="pt"
        )["input_features"]
        # Every clip is exactly 10 s: the fusion branch is not needed, and
        # the extractor's random "longer" flag (a training trick) is
        # overridden so the result is deterministic.
        longer = torch.zeros((len(clips), 1), dtype=torch.bool)
        with torch.inference_mode():
            out = self.model.get_audio_features(
                input_features=features.to(self.device),
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


def _missing_files(name: str, exc: BaseException) -> ModelError:
    return ModelError(
        f"CLAP model {name} could not be loaded: {_first_line(exc)}. "
        "It needs config.json, model.safetensors (or "
        "pytorch_model.bin), preprocessor_config.json and the "
        "tokenizer files (vocab.json, merges.txt, "
        "tokenizer_config.json): let beets download them once with "
        "network access, or point audiofeatures.clap.model at a "
        "folder that holds them"
    )


def model_files(name: str) -> tuple[Path | None, list[Path]]:
    """The folder a folder or hub model loads from (a hub model: its
    cached snapshot) and the weight files in it."""
    folder = Path(name).expanduser()
    if not folder.is_dir():
        cache = hub_cache()
        revision = cached_revision(name, cache)
        if cache is None or revision is None:
            return None, []
        folder = _hub_folder(cache, name) / "snapshots" / revision
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    return folder, files


def _hub_folder(cache: Path, repo_id: str) -> Path:
    return cache / ("models--" + repo_id.replace("/", "--"))


def _replace_advice(name: str, what: str) -> str:
    if Path(name).expanduser().is_dir():
        return f"replace {what} with a complete copy"
    cache = hub_cache()
    folder = _hub_folder(cache, name) if cache else name
    return (
        f"delete {folder} and run beet clap once with network access to "
        "download the model again"
    )


def damaged_weights(name: str) -> ModelError | None:
    """A one-line error naming the weight file of a folder or hub model
    that is cut short or garbled, or None when every one reads."""
    _folder, files = model_files(name)
    for file in files:
        problem = _weights_problem(file)
        if problem is not None:
            return ModelError(
                f"the CLAP weights {file} are damaged ({problem}): "
                f"{_replace_advice(name, 'the file')}"
            )
    return None


def _weights_problem(file: Path) -> str | None:
    try:
        if file.stat().st_size == 0:
            return "the file is empty"
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), "np") as handle:
                handle.keys()
        else:
            import torch

            torch.load(file, map_location="meta", weights_only=True)
    except Exception as exc:  # what each reader raises differs
        return _first_line(exc)
    return None


def unloadable(name: str, exc: BaseException) -> ModelError:
    """A one-line error for weights that read but do not load: most
    often a config.json from another model than the weights."""
    folder, files = model_files(name)
    mismatch = _shape_mismatch(folder, files) if folder else None
    if mismatch:
        return ModelError(
            f"the CLAP model in {folder} does not fit together: {mismatch}; "
            "use the config.json saved with these weights, or "
            f"{_replace_advice(name, 'the folder')}"
        )
    return ModelError(
        f"CLAP model {name} could not be loaded "
        f"({type(exc).__name__}: {_first_line(exc)}): "
        f"{_replace_advice(name, 'its files')}"
    )


def _shape_mismatch(folder: Path, files: list[Path]) -> str | None:
    """The first parameter whose shape in the weights is not the one
    config.json gives it."""
    try:
        import torch
        from safetensors import safe_open
        from transformers import ClapConfig, ClapModel

        config = ClapConfig.from_pretrained(str(folder))
        with torch.device("meta"):  # shapes only, no memory
            expected = {
                key: list(value.shape)
                for key, value in ClapModel(config).state_dict().items()
            }
        for file in files:
            if file.suffix != ".safetensors":
                continue
            with safe_open(str(file), "np") as handle:
                names = handle.keys()
                for key in names:
                    shape = list(handle.get_slice(key).get_shape())
                    if key in expected and expected[key] != shape:
                        return (
                            f"{key} is {shape} in {file.name} but "
                            f"{expected[key]} by config.json"
                        )
    except Exception:  # the diagnosis is a courtesy; the caller has one
        return None
    return None


def _unit_rows(out: Any) -> np.ndarray:
    # transformers 5 wraps the embedding; 4.x returned the tensor itself.
    tensor = getattr(out, "pooler_output", out)
    return unit_rows(tensor.float().cpu().numpy())


def _first_line(exc: BaseException) -> str:
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return line.rstrip(".")


def model_identity(
    spec: ModelSpec, pipeline: dict[str, Any], digests: Path | None = None
) -> dict[str, Any]:
    """What determines the vectors: the model's weights and the audio
    pipeline. Its digest names the store, so vectors of different models
    or windowing never mix, and the prompt vectors cached in the store
    follow the same identity.

    A checkpoint or a model folder is known by the SHA-256 of its weight
    files (remembered in ``digests`` by size and modification time, so
    only new or changed weights are read), a hub id by the revision in
    the local hub cache. Contents, not paths or dates: moving or copying
    the model keeps its vectors valid; new weights under the same name
    make a new store."""
    model = spec.model
    known = WeightDigests(digests or default_digest_cache())
    ident: dict[str, Any] = {"model": model}
    if is_checkpoint_name(model):
        path = locate_checkpoint(model)
        ident.update(model=path.name, weights=known.digest(path))
    elif (folder := Path(model).expanduser()).is_dir():
        weights = sorted(folder.glob("*.safetensors")) or sorted(
            folder.glob("*.bin")
        )
        config = folder / "config.json"
        ident.update(
            model=folder.resolve().name,
            config=known.digest(config) if config.is_file() else None,
            weights=[(w.name, known.digest(w)) for w in weights],
        )
    else:
        ident["revision"] = hub_revision(model)
    known.save()
    ident["pipeline"] = pipeline
    return ident


#: The files a tokenizer folder is read from.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
    "special_tokens_map.json",
)  # fmt: skip


def tokenizer_identity(spec: ModelSpec, digests: Path | None = None) -> str:
    """What turns a prompt into tokens, as a short digest: prompt vectors
    depend on it as well as on the weights. A model folder's own
    tokenizer files; a checkpoint's tokenizer folder, or its hub id and
    revision. Empty for a hub model, whose revision covers both."""
    if is_checkpoint_name(spec.model):
        source = spec.tokenizer
    elif Path(spec.model).expanduser().is_dir():
        source = spec.model
    else:
        return ""
    folder = Path(source).expanduser()
    parts: list[Any]
    if folder.is_dir():
        known = WeightDigests(digests or default_digest_cache())
        parts = [
            (name, known.digest(folder / name))
            for name in TOKENIZER_FILES
            if (folder / name).is_file()
        ]
        known.save()
    else:
        parts = [source, hub_revision(source)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def default_digest_cache() -> Path:
    """Where weight digests are remembered when the caller names no
    place (the user's cache folder)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "beets-audiofeatures" / "weight-digests.json"


class WeightDigests:
    """SHA-256 digests of model files, remembered in a JSON file by
    resolved path, size, modification and change time and inode: a run
    whose weights did not change reads one small file and stats the
    weights."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.changed = False
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        self.known: dict[str, Any] = known if isinstance(known, dict) else {}

    def digest(self, file: Path) -> str:
        real = file.resolve()
        try:
            info = real.stat()
            # ctime and inode too: a copy that kept the old file's size
            # and date (cp -p, rsync -t) still changes them.
            stamp = [
                info.st_size,
                info.st_mtime_ns,
                info.st_ctime_ns,
                info.st_ino,
            ]
            entry = self.known.get(str(real))
            if isinstance(entry, dict) and entry.get("stamp") == stamp:
                return str(entry["sha256"])
            with open(real, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError as exc:
            raise ModelError(
                f"cannot read the model file {file}: {exc.strerror or exc}"
            ) from exc
        self.known[str(real)] = {"stamp": stamp, "sha256": digest}
        self.changed = True
        return digest

    def save(self) -> None:
        """Write the digests back, without entries for files that are
        gone; a cache that cannot be written costs a re-read next time."""
        if not self.changed:
            return
        kept = {
            name: entry
            for name, entry in self.known.items()
            if os.path.exists(name)
        }
        with contextlib.suppress(OSError), atomic_write(self.path, "w") as out:
            out.write(json.dumps(kept, indent=1, sort_keys=True))
        self.changed = False


def hub_cache() -> Path | None:
    try:
        from huggingface_hub import constants
    except ImportError:  # no transformers: nothing can be cached
        return None
    return Path(constants.HF_HUB_CACHE)


def cached_revision(repo_id: str, cache: Path | None = None) -> str | None:
    """The commit of ``repo_id`` that the local hub cache holds (what
    loading with ``local_files_only`` uses), or None."""
    cache = cache or hub_cache()
    if cache is None:
        return None
    folder = _hub_folder(cache, repo_id)
    with contextlib.suppress(OSError):
        if ref := (folder / "refs" / "main").read_text().strip():
            return ref
    with contextlib.suppress(OSError):
        snapshots = [e.name for e in os.scandir(folder / "snapshots")]
        if len(snapshots) == 1:
            return snapshots[0]
    return None


def hub_revision(repo_id: str) -> str | None:
    """The revision a hub model is (or will be) loaded at. A model that
    is not cached yet gets its small config.json fetched first, so the
    vectors of the download that follows are filed under the revision
    they came from; None when the hub cannot tell (offline, unknown id:
    loading the model then fails with the reason)."""
    if (revision := cached_revision(repo_id)) or _hub_offline():
        return revision
    if _hub_unreachable():
        return None
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download(repo_id, "config.json")
    except Exception:  # any hub failure: the model load reports it
        return None
    return cached_revision(repo_id)


def model_tag(identity: dict[str, Any]) -> str:
    """A short, readable, filesystem-safe name for a model + pipeline."""
    digest = hashlib.sha256(
        json.dumps(identity, sort_keys=True).encode()
    ).hexdigest()[:10]
    name = str(identity["model"]).split("/")[-1].removesuffix(".pt")
    return f"{folder_slug(name, 'model')}-{digest}"
