"""The CLAP model's identity, computed once per process for each state of
the model's files.

The identity names the store the vectors are in (``model_tag``), so
every command and every request of the page needs it. Computing it reads
the weight digests' file and may ask the hub for a revision; the page
asked for it on every request. Here it is remembered, keyed by what it
is read from as it is now: each model file's path, size, modification
and change time and inode (what the digest cache compares too), or the
revision the hub cache holds. New weights under the same name change the
key, so they make a new identity; unchanged files give back the same
object.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from beets_audiofeatures.clap.model import ModelSpec

#: A file as the key sees it: resolved path, size, modification and
#: change time, inode; (path, None) when it cannot be read.
FileStamp = tuple[str, int | None, int | None, int | None, int | None]


def current_identity(model: str, pipeline: dict[str, Any]) -> dict[str, Any]:
    """``model_identity`` of ``model`` and ``pipeline``, from memory while
    the model's files are as they were (a ``ModelError`` when they
    cannot be found, as ``model_identity`` raises)."""
    spec = ModelSpec(model=model)
    return _identity(
        model, json.dumps(pipeline, sort_keys=True), model_files_state(spec)
    )


@functools.lru_cache(maxsize=16)
def _identity(
    model: str, pipeline: str, state: tuple[object, ...]
) -> dict[str, Any]:
    """``state`` is only the key: the identity is read from the files."""
    from beets_audiofeatures.clap.identity import model_identity

    return model_identity(ModelSpec(model=model), json.loads(pipeline))


def model_files_state(spec: ModelSpec) -> tuple[object, ...]:
    """What the identity of ``spec.model`` is read from, as it is now."""
    from beets_audiofeatures.clap.hub import cached_revision
    from beets_audiofeatures.clap.laion import locate_checkpoint
    from beets_audiofeatures.clap.sources import (
        HubModel,
        LaionCheckpoint,
        PretrainedModel,
        model_source,
    )

    source = model_source(spec)
    if isinstance(source, HubModel):
        # Known by its revision: no weights are read.
        return ("hub", spec.model, cached_revision(spec.model))
    files: list[Path] = []
    if isinstance(source, LaionCheckpoint):
        files = [locate_checkpoint(spec.model)]
    elif isinstance(source, PretrainedModel):
        folder, weights = source.files()
        files = [folder / "config.json"] if folder else []
        files += weights
    return tuple(file_stamp(file) for file in files)


def file_stamp(file: Path) -> FileStamp:
    try:
        info = file.stat()
        real = str(file.resolve())
    except OSError:
        return (str(file), None, None, None, None)
    return (real, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)


def forget_identities() -> None:
    """Compute every identity afresh (as a new process would)."""
    _identity.cache_clear()
