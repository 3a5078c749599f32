"""What the vectors of a model depend on, and the store tag named for it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..naming import folder_slug
from .digests import WeightDigests, default_digest_cache
from .hub import hub_revision
from .model import ModelSpec
from .sources import model_source

#: The files a tokenizer folder is read from.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
    "special_tokens_map.json",
)  # fmt: skip


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
    known = WeightDigests(digests or default_digest_cache())
    ident = model_source(spec).identity(known)
    known.save()
    ident["pipeline"] = pipeline
    return ident


def tokenizer_identity(spec: ModelSpec, digests: Path | None = None) -> str:
    """What turns a prompt into tokens, as a short digest: prompt vectors
    depend on it as well as on the weights. A model folder's own
    tokenizer files; a checkpoint's tokenizer folder, or its hub id and
    revision. Empty for a hub model, whose revision covers both."""
    source = model_source(spec).tokenizer_name()
    if source is None:
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


def model_tag(identity: dict[str, Any]) -> str:
    """A short, readable, filesystem-safe name for a model + pipeline."""
    digest = hashlib.sha256(
        json.dumps(identity, sort_keys=True).encode()
    ).hexdigest()[:10]
    name = str(identity["model"]).split("/")[-1].removesuffix(".pt")
    return f"{folder_slug(name, 'model')}-{digest}"
