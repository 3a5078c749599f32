"""The Hugging Face hub: its local cache, and loading without waiting
on a network that is not there."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {
        "1",
        "true",
        "yes",
        "on",
    }


def hub_unreachable() -> str | None:
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


def quiet_transformers() -> None:
    """No progress bars or warnings of transformers on the command line
    (its "Loading weights" bar on every load is noise to a user)."""
    import transformers.utils.logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def from_pretrained(cls: Any, name: str) -> Any:
    """Load from a folder or the hub cache, quietly; reach the hub only
    when the cache lacks the files."""
    quiet_transformers()
    try:
        return cls.from_pretrained(name, local_files_only=True)
    except OSError:
        if Path(name).expanduser().exists() or hub_offline():
            raise
    if reason := hub_unreachable():
        raise OSError(f"{name} is not in the local cache and {reason}")
    return cls.from_pretrained(name)


def not_a_hub_id(name: str) -> str | None:
    """What ``name`` is when it is a path rather than a hub id
    (``owner/name``): a file, or a folder that does not exist; None for
    what may be a hub id. Such a path would reach the hub as a malformed
    repo id and come back as "Repo id must be in the form ...", which
    says nothing about the path."""
    path = Path(name).expanduser()
    if path.is_dir():
        return None
    if path.is_file():
        return f"{name} is a file, not a model folder"
    looks_like_a_path = (
        path.is_absolute()
        or name.startswith(("~", "."))
        or "\\" in name
        or name.count("/") > 1
    )
    return f"the folder {name} does not exist" if looks_like_a_path else None


def hub_cache() -> Path | None:
    try:
        from huggingface_hub import constants
    except ImportError:  # no transformers: nothing can be cached
        return None
    return Path(constants.HF_HUB_CACHE)


def hub_folder(cache: Path, repo_id: str) -> Path:
    """Where the hub cache keeps ``repo_id``."""
    return cache / ("models--" + repo_id.replace("/", "--"))


def cached_revision(repo_id: str, cache: Path | None = None) -> str | None:
    """The commit of ``repo_id`` that the local hub cache holds (what
    loading with ``local_files_only`` uses), or None."""
    cache = cache or hub_cache()
    if cache is None:
        return None
    folder = hub_folder(cache, repo_id)
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
    if (revision := cached_revision(repo_id)) or hub_offline():
        return revision
    if hub_unreachable():
        return None
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download(repo_id, "config.json")
    except Exception:  # any hub failure: the model load reports it
        return None
    return cached_revision(repo_id)
