"""The ``audiofeatures.cluster`` settings and ``--cluster``: where the
Dask scheduler is, where its workers see the music, and TLS; each
checked when a run that does work reads it (``-p`` reads none)."""

from __future__ import annotations

from functools import cached_property
from typing import Any, ClassVar

from beets_audiofeatures.errors import SettingError
from beetsplug.audiofeatures.settings.values import Settings, is_number

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
