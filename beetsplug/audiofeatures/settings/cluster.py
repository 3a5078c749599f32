"""The ``audiofeatures.cluster`` settings and ``--cluster``: where the
Dask scheduler is, where its workers see the music, and TLS; each
checked when a run that does work reads it (``-p`` reads none)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import confuse

from beets_audiofeatures.errors import SettingError
from beetsplug.audiofeatures.settings.values import Settings, is_number

if TYPE_CHECKING:
    from beets_audiofeatures.cluster import DaskExecutor
    from beets_audiofeatures.runner import RemoteWork

    class ClusterLog(Protocol):
        """The command's logger (beets' own, with {} arguments)."""

        def info(self, msg: str, *args: object) -> None: ...
        def warning(self, msg: str, *args: object) -> None: ...


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
TLS_FILES = ("ca_file", "cert", "key")


class ClusterOption:
    """``--cluster`` as typed (None: not given), as ``Settings`` reads
    options."""

    def __init__(self, cluster: str | None) -> None:
        self.cluster = cluster


class ClusterSettings(Settings):
    """The cluster settings, ``--cluster`` first."""

    OPTIONS: ClassVar[dict[str, str]] = {"address": "--cluster"}

    @cached_property
    def address(self) -> str:
        """``--cluster``, else the setting; empty: run on this machine."""
        option = self.option("cluster")
        if option is not None:
            if not option.strip():
                raise SettingError(
                    "--cluster needs a scheduler address such as "
                    "tcp://192.168.1.10:8786, or local:N"
                )
            return str(option).strip()
        value = self.raw("address")
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.bad("address", "a scheduler address or local:N")
        return value.strip()

    @cached_property
    def path_map(self) -> dict[str, str]:
        allowed = "a mapping of this machine's folders to the workers' folders"
        mapping = self.mapping("path_map", allowed)
        if not all(isinstance(v, str) and v for v in mapping.values()):
            raise self.bad("path_map", allowed)
        return mapping

    @cached_property
    def clap_resources(self) -> dict[str, float]:
        allowed = (
            "a mapping of Dask resource names to amounts, such as {GPU: 1}"
        )
        mapping = self.mapping("clap_resources", allowed)
        if not all(is_number(v) and v > 0 for v in mapping.values()):
            raise self.bad("clap_resources", allowed)
        return {k: float(v) for k, v in mapping.items()}

    @cached_property
    def tls_files(self) -> dict[str, str] | None:
        """The TLS files, all three or none."""
        allowed = "ca_file, cert and key: the paths of PEM files"
        tls = self.mapping("tls", allowed)
        files = {k: tls.get(k) for k in TLS_FILES}
        if not any(files.values()):
            return None
        if not all(isinstance(v, str) and v for v in files.values()):
            raise self.bad("tls", allowed)
        return {k: self.view["tls"][k].as_filename() for k in files}


def cluster_executor(
    view: confuse.ConfigView,
    option: str | None,
    remote: Callable[[], RemoteWork[Any, Any]],
    log: ClusterLog,
    *,
    clap: bool = False,
    dump: Path | None = None,
) -> Callable[[], DaskExecutor[Any, Any]] | None:
    """What makes the run's executor on the cluster that ``--cluster``
    (``option``) or the setting names, None for this machine's own.
    ``remote`` describes the analysis for the workers (asked only when
    there is a cluster); ``dump`` is refused (it writes files here). The
    settings are checked now, the scheduler is reached later."""
    settings = ClusterSettings(view, ClusterOption(option))
    address = settings.address
    if not address:
        return None
    if dump is not None:
        raise SettingError(
            "--dump writes files on this machine: run it without --cluster"
        )
    work = remote()
    if clap:
        work = dataclasses.replace(work, resources=settings.clap_resources)
    try:
        from beets_audiofeatures.cluster import (
            DaskExecutor,
            PathMap,
            connect,
        )
    except ImportError as exc:
        raise SettingError(
            f"--cluster needs Dask's distributed package: {INSTALL}"
        ) from exc
    paths = PathMap.of(settings.path_map)
    tls = settings.tls_files

    def make() -> DaskExecutor[Any, Any]:
        client, cluster = connect(
            address, tls, lambda line: log.info("{}", line)
        )
        return DaskExecutor(
            client, work, paths, lambda line: log.warning("{}", line), cluster
        )

    return make
