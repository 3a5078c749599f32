"""The ``audiofeatures.cluster`` settings and ``--cluster``: where the
Dask scheduler is, where its workers see the music, and TLS."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import confuse
from beets.exceptions import UserError

from beetsplug.audiofeatures.settings.values import bad_setting

if TYPE_CHECKING:
    from beets_audiofeatures.cluster import DaskExecutor
    from beets_audiofeatures.runner import RemoteWork

DEFAULTS: dict[str, Any] = {
    # A Dask scheduler (tcp://192.168.1.10:8786, tls://...), or local:N
    # for N worker processes on this machine; empty: no cluster.
    "address": "",
    # This machine's music folder -> where the workers see it.
    "path_map": {},
    # Dask resources each CLAP task needs ({GPU: 1}: GPU workers only).
    "clap_resources": {},
    # Dask's TLS: the CA, and this client's certificate and key files.
    "tls": {"ca_file": None, "cert": None, "key": None},
}

INSTALL = "pip install 'beets-audiofeatures[dask]'"


def cluster_address(view: confuse.ConfigView, option: str | None) -> str:
    """``--cluster``, else the setting; empty: run on this machine."""
    if option is not None:
        if not option.strip():
            raise UserError(
                "--cluster needs a scheduler address such as "
                "tcp://192.168.1.10:8786, or local:N"
            )
        return option.strip()
    value = view["address"].get()
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_setting(view["address"], "a scheduler address or local:N")
    return value.strip()


def _mapping(view: confuse.ConfigView, allowed: str) -> dict[str, Any]:
    value = view.get()
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) for k in value
    ):
        raise bad_setting(view, allowed)
    return value


def path_map(view: confuse.ConfigView) -> dict[str, str]:
    allowed = "a mapping of this machine's folders to the workers' folders"
    mapping = _mapping(view["path_map"], allowed)
    if not all(isinstance(v, str) and v for v in mapping.values()):
        raise bad_setting(view["path_map"], allowed)
    return mapping


def clap_resources(view: confuse.ConfigView) -> dict[str, float]:
    allowed = "a mapping of Dask resource names to amounts, such as {GPU: 1}"
    mapping = _mapping(view["clap_resources"], allowed)
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        for v in mapping.values()
    ):
        raise bad_setting(view["clap_resources"], allowed)
    return {k: float(v) for k, v in mapping.items()}


def tls_files(view: confuse.ConfigView) -> dict[str, str] | None:
    """The TLS files, all three or none."""
    allowed = "ca_file, cert and key: the paths of PEM files"
    tls = _mapping(view["tls"], allowed)
    files = {k: tls.get(k) for k in ("ca_file", "cert", "key")}
    if not any(files.values()):
        return None
    if not all(isinstance(v, str) and v for v in files.values()):
        raise bad_setting(view["tls"], allowed)
    return {k: view["tls"][k].as_filename() for k in files}


def cluster_executor(
    view: confuse.ConfigView,
    option: str | None,
    remote: Callable[[], RemoteWork[Any, Any]],
    log: Any,
    *,
    clap: bool = False,
    dump: Path | None = None,
) -> Callable[[], DaskExecutor[Any, Any]] | None:
    """What makes the run's executor on the cluster that ``--cluster``
    (``option``) or the setting names, None for this machine's own.
    ``remote`` describes the analysis for the workers (asked only when
    there is a cluster); ``dump`` is refused (it writes files here). The
    settings are checked now, the scheduler is reached later."""
    address = cluster_address(view, option)
    if not address:
        return None
    if dump is not None:
        raise UserError(
            "--dump writes files on this machine: run it without --cluster"
        )
    work = remote()
    if clap:
        work = dataclasses.replace(work, resources=clap_resources(view))
    try:
        from beets_audiofeatures.cluster import (
            DaskExecutor,
            PathMap,
            connect,
        )
    except ImportError as exc:
        raise UserError(
            f"--cluster needs Dask's distributed package: {INSTALL}"
        ) from exc
    paths = PathMap.of(path_map(view))
    tls = tls_files(view)

    def make() -> DaskExecutor[Any, Any]:
        client, cluster = connect(
            address, tls, lambda line: log.info("{}", line)
        )
        return DaskExecutor(
            client, work, paths, lambda line: log.warning("{}", line), cluster
        )

    return make
