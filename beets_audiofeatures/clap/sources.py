"""Where a CLAP model comes from: the three forms its setting takes.

``SOURCES`` lists them, most particular first; ``model_source`` is the
one place that tells which one a setting names. Each source knows what
identifies its vectors (``identity``), where its tokenizer comes from
and how it loads, with a one-line ``ModelError`` for every way that
fails.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from .digests import WeightDigests
from .hub import (
    cached_revision,
    from_pretrained,
    hub_cache,
    hub_folder,
    hub_revision,
    not_a_hub_id,
)
from .laion import (
    AUDIO_TOWERS,
    CHECKPOINT_SUFFIXES,
    download_again,
    laion_architecture,
    locate_checkpoint,
    read_checkpoint,
    rename_laion_state_dict,
)
from .model import ModelError, ModelSpec, first_line

#: What ``load`` returns: the ClapModel, its tokenizer and its feature
#: extractor.
Loaded = tuple[Any, Any, Any]


class ModelSource(ABC):
    """One form of ``audiofeatures.clap.model``."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        """The setting, as the user wrote it."""
        return self.spec.model

    @classmethod
    @abstractmethod
    def claims(cls, model: str) -> bool:
        """Whether the setting ``model`` names a model of this source."""

    @abstractmethod
    def identity(self, known: WeightDigests) -> dict[str, Any]:
        """What identifies the model's vectors: its file contents or its
        hub revision (``model_identity`` adds the pipeline)."""

    @abstractmethod
    def tokenizer_name(self) -> str | None:
        """The folder or hub id the tokenizer is read from, when the
        model's identity does not already cover it."""

    @abstractmethod
    def load(self) -> Loaded:
        """The model, tokenizer and feature extractor, on the CPU."""


class PretrainedModel(ModelSource):
    """A model in ``save_pretrained`` layout (a folder or a hub snapshot),
    loaded with ``from_pretrained``."""

    @abstractmethod
    def files(self) -> tuple[Path | None, list[Path]]:
        """The folder the model loads from and the weight files in it."""

    @abstractmethod
    def replace_advice(self, what: str) -> str:
        """How to get a complete copy of ``what`` (its files)."""

    def load(self) -> Loaded:
        from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

        name = self.name
        try:
            model = from_pretrained(ClapModel, name)
        except Exception as exc:  # safetensors, torch: any error is one line
            if damaged := self.damaged_weights():
                raise damaged from exc
            if not isinstance(exc, OSError):
                raise self.unloadable(exc) from exc
            raise _missing_files(name, exc) from exc
        try:
            tokenizer = from_pretrained(AutoTokenizer, name)
            features = from_pretrained(ClapFeatureExtractor, name)
        except OSError as exc:
            raise _missing_files(name, exc) from exc
        return model, tokenizer, features

    def damaged_weights(self) -> ModelError | None:
        """A one-line error naming the weight file that is cut short or
        garbled, or None when every one reads."""
        _folder, files = self.files()
        for file in files:
            problem = _weights_problem(file)
            if problem is not None:
                return ModelError(
                    f"the CLAP weights {file} are damaged ({problem}): "
                    f"{self.replace_advice('the file')}"
                )
        return None

    def unloadable(self, exc: BaseException) -> ModelError:
        """A one-line error for weights that read but do not load: most
        often a config.json from another model than the weights."""
        folder, files = self.files()
        mismatch = _shape_mismatch(folder, files) if folder else None
        if mismatch:
            return ModelError(
                f"the CLAP model in {folder} does not fit together: "
                f"{mismatch}; use the config.json saved with these weights, "
                f"or {self.replace_advice('the folder')}"
            )
        return ModelError(
            f"CLAP model {self.name} could not be loaded "
            f"({type(exc).__name__}: {first_line(exc)}): "
            f"{self.replace_advice('its files')}"
        )


class FolderModel(PretrainedModel):
    """A folder in ``save_pretrained`` layout, known by its contents."""

    @classmethod
    def claims(cls, model: str) -> bool:
        return Path(model).expanduser().is_dir()

    @property
    def folder(self) -> Path:
        return Path(self.name).expanduser()

    def identity(self, known: WeightDigests) -> dict[str, Any]:
        folder = self.folder
        config = folder / "config.json"
        return {
            "model": folder.resolve().name,
            "config": known.digest(config) if config.is_file() else None,
            "weights": [(w.name, known.digest(w)) for w in _weights(folder)],
        }

    def tokenizer_name(self) -> str:
        return self.name

    def files(self) -> tuple[Path | None, list[Path]]:
        return self.folder, _weights(self.folder)

    def replace_advice(self, what: str) -> str:
        return f"replace {what} with a complete copy"


class HubModel(PretrainedModel):
    """A hub id, loaded from (and once fetched into) the hub cache and
    known by the revision there."""

    @classmethod
    def claims(cls, model: str) -> bool:
        return True  # whatever is not a file or a folder

    def identity(self, known: WeightDigests) -> dict[str, Any]:
        return {"model": self.name, "revision": hub_revision(self.name)}

    def load(self) -> Loaded:
        if (problem := not_a_hub_id(self.name)) is not None:
            raise ModelError(
                f"the CLAP model cannot be loaded: {problem}; {_MODEL_FORMS}"
            )
        return super().load()

    def tokenizer_name(self) -> None:
        return None  # the revision covers the tokenizer too

    def files(self) -> tuple[Path | None, list[Path]]:
        cache = hub_cache()
        revision = cached_revision(self.name, cache)
        if cache is None or revision is None:
            return None, []
        folder = hub_folder(cache, self.name) / "snapshots" / revision
        return folder, _weights(folder)

    def replace_advice(self, what: str) -> str:
        cache = hub_cache()
        folder = hub_folder(cache, self.name) if cache else self.name
        return (
            f"delete {folder} and run beet clap once with network access to "
            "download the model again"
        )


class LaionCheckpoint(ModelSource):
    """An original LAION-CLAP ``.pt`` file (a path, or a released file
    name found where LAION-CLAP keeps them), converted in memory; its
    tokenizer is ``spec.tokenizer``."""

    @classmethod
    def claims(cls, model: str) -> bool:
        return model.endswith(CHECKPOINT_SUFFIXES)

    def identity(self, known: WeightDigests) -> dict[str, Any]:
        path = locate_checkpoint(self.name)
        return {"model": path.name, "weights": known.digest(path)}

    def tokenizer_name(self) -> str:
        return self.spec.tokenizer

    def load(self) -> Loaded:
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
                f"{path} does not fit ClapModel ({first_line(exc)}): "
                f"{download_again(path)}"
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
        if (problem := not_a_hub_id(spec.tokenizer)) is not None:
            raise ModelError(
                f"the RoBERTa tokenizer for {path.name} cannot be loaded: "
                f"{problem}; set audiofeatures.clap.tokenizer to a folder "
                "that holds vocab.json, merges.txt and tokenizer_config.json, "
                "or to roberta-base"
            )
        try:
            tokenizer = from_pretrained(AutoTokenizer, spec.tokenizer)
        except OSError as exc:
            raise ModelError(
                f"the RoBERTa tokenizer {spec.tokenizer} for {path.name} could "
                f"not be loaded: {first_line(exc)}. It needs vocab.json, "
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


#: Every source, most particular first: the first that claims a setting
#: is its source.
SOURCES: tuple[type[ModelSource], ...] = (
    LaionCheckpoint,
    FolderModel,
    HubModel,
)


def model_source(spec: ModelSpec) -> ModelSource:
    """The source ``spec.model`` names."""
    source = next(s for s in SOURCES if s.claims(spec.model))
    return source(spec)


def _weights(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))


#: What a model setting can be instead of a path that is not a model.
_MODEL_FORMS = (
    "point audiofeatures.clap.model at a folder that holds config.json, "
    "model.safetensors (or pytorch_model.bin) and the tokenizer files, at "
    "a LAION-CLAP .pt checkpoint, or at a hub id such as "
    "laion/larger_clap_music"
)


def _missing_files(name: str, exc: BaseException) -> ModelError:
    return ModelError(
        f"CLAP model {name} could not be loaded: {first_line(exc)}. "
        "It needs config.json, model.safetensors (or "
        "pytorch_model.bin), preprocessor_config.json and the "
        "tokenizer files (vocab.json, merges.txt, "
        "tokenizer_config.json): let beets download them once with "
        "network access, or point audiofeatures.clap.model at a "
        "folder that holds them"
    )


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
        return first_line(exc)
    return None


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
