"""Where a run's jobs are computed, chosen in one place for ``beet
essentia``, ``beet clap`` and both import stages: a table of places,
each making the run's executor from the analysis and the cluster
settings (``--cluster``, else ``audiofeatures.cluster.address``).

- ``this machine`` (no address): the analysis's own executor (the
  worker processes of Essentia, CLAP's decoders and model).
- ``dask`` (``tcp://``/``tls://`` a scheduler, ``local:N`` worker
  processes here): the same jobs on Dask workers
  (``beets_audiofeatures.cluster``, the ``[dask]`` extra).

The settings are checked when a run is placed, the scheduler is reached
when the first job is sent."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from beets_audiofeatures.errors import SettingError
from beetsplug.audiofeatures.settings.cluster import (
    INSTALL,
    ClusterOption,
    ClusterSettings,
)

if TYPE_CHECKING:
    import confuse
    from beets.logging import BeetsLogger

    from beets_audiofeatures.runner import Executor, RemoteWork
    from beetsplug.audiofeatures.analysis.runner import Runner

#: what makes a place's executor (None: the analysis's own)
MakeExecutor = Callable[[], "Executor[Any, Any]"]
Place = Callable[
    ["RemoteWork[Any, Any] | None", ClusterSettings, "BeetsLogger"],
    MakeExecutor | None,
]


def this_machine(
    work: RemoteWork[Any, Any] | None,
    settings: ClusterSettings,
    log: BeetsLogger,
) -> MakeExecutor | None:
    return None


def dask(
    work: RemoteWork[Any, Any] | None,
    settings: ClusterSettings,
    log: BeetsLogger,
) -> MakeExecutor | None:
    assert work is not None
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
    address = settings.address
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


PLACES: dict[str, Place] = {"this machine": this_machine, "dask": dask}


def place(
    runner: Runner[Any, Any, Any],
    remote: Callable[[], RemoteWork[Any, Any]],
    view: confuse.ConfigView,
    option: str | None,
    log: BeetsLogger,
    *,
    clap: bool = False,
    dump: Path | None = None,
) -> str:
    """Send ``runner``'s jobs where the run is asked to compute them
    (``option`` is ``--cluster``), and say where. ``remote`` describes
    the analysis for other machines' workers (asked only off this
    machine); ``dump`` is refused there (it writes files here); ``clap``
    tasks ask the cluster for ``audiofeatures.cluster.clap_resources``."""
    settings = ClusterSettings(view, ClusterOption(option))
    where = "dask" if settings.address else "this machine"
    work = None
    if where != "this machine":
        if dump is not None:
            raise SettingError(
                "--dump writes files on this machine: run it without --cluster"
            )
        work = remote()
        if clap:
            work = dataclasses.replace(work, resources=settings.clap_resources)
    make = PLACES[where](work, settings, log)
    if make is not None:
        runner.make_executor = make
    return where
