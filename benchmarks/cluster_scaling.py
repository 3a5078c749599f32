"""What ``--cluster`` costs against the local worker pool, and how many
workers one coordinator can keep busy.

In one run, on the same generated tracks (FLAC, drums and chords) in a
throw-away beets library:

* ``beet essentia --force -j 2`` (the local process pool);
* ``beet essentia --force --cluster local:2`` (a ``LocalCluster`` of two
  worker processes, started by the command: its start-up is counted);
* the same against a scheduler and two workers started beforehand with
  ``dask scheduler`` / ``dask worker`` (as on a real cluster, where the
  workers are already up);

then the coordinator's own cost: the one runner driving a no-op
analysis on the Dask executor over ``--results`` library items (each
result read back, checked against the live item and stored), from which
the number of music-profile workers one coordinator can feed follows
(``--cpu-per-track`` CPU-seconds per track, 7 for a 3-minute track).

    python benchmarks/cluster_scaling.py [--tracks 8] [--seconds 120]
                                          [--results 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from beets import logging as beets_logging

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from beets.library import Item, Library

from beets_audiofeatures.cluster import DaskExecutor, PathMap, connect
from beets_audiofeatures.runner import Executor, RemoteWork, Tally
from beetsplug.audiofeatures.analysis.runner import Runner
from tests import synth
from tests.synth import BEET

DASK = str(Path(sys.executable).with_name("dask"))


def essentia(env: dict[str, str], *options: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [BEET, "essentia", "--force", "--profile", "music", *options],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - start


def started_cluster(
    folder: Path, workers: int
) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """A scheduler and ``workers`` workers, each a ``dask`` process."""
    file = folder / "scheduler.json"

    def dask(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [DASK, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    procs = [
        dask("scheduler", "--scheduler-file", str(file), "--port", "0",
             "--host", "127.0.0.1", "--no-dashboard"),
    ]  # fmt: skip
    while not file.exists():
        time.sleep(0.1)
    address = json.loads(file.read_text())["address"]
    for n in range(workers):
        procs.append(
            dask("worker", address, "--nworkers", "1", "--nthreads", "1",
                 "--name", f"w{n}", "--no-dashboard")
        )  # fmt: skip
    return address, procs


class Nothing:
    """A handler that computes nothing (built once per worker)."""

    def __call__(self, task: str) -> dict[str, float]:
        return {"bench_value": 1.0}


def same_report() -> dict[str, str]:
    return {"bench": "1"}


class NoOpAnalysis:
    """The runner's whole path (plan, jobs, results, live-item check,
    store) around a task that does nothing."""

    verb = "done"
    doing = "doing"
    result = "its value is"
    again = "again"
    method = "for nothing"
    batched = False

    def __init__(self, make: Any) -> None:
        self.make = make

    def needs(self, item: Item) -> bool:
        return True

    def describe(self, need: bool) -> str:
        return ""

    def task(self, item: Item, need: bool) -> str:
        return os.fsdecode(item.path)

    def executor(self) -> Executor[str, dict[str, float]]:
        executor: Executor[str, dict[str, float]] = self.make()
        return executor

    def keep(
        self, item: Item, need: bool, result: dict[str, float], tally: Tally
    ) -> None:
        item.update(result)
        item.store()

    def close(self) -> None:
        pass


def coordinator_rate(
    root: Path, results: int, address: str
) -> tuple[float, float]:
    """Results stored per second by the coordinator with a no-op
    analysis: per second of wall time (here the scheduler and the workers
    share its cores), and per second of its own CPU time."""
    lib = Library(str(root / "noop.db"), str(root))
    probe = root / "probe.flac"
    probe.write_bytes(b"x")
    with lib.transaction():
        for n in range(results):
            Item(path=str(probe), title=f"t{n}").add(lib)
    work: RemoteWork[str, dict[str, float]] = RemoteWork(
        name="nothing", factory=Nothing, identity=same_report(),
        report=same_report,
    )  # fmt: skip
    log = beets_logging.getLogger("bench")

    def make() -> DaskExecutor[str, dict[str, float]]:
        client, cluster = connect(address, None, lambda line: None)
        return DaskExecutor(client, work, PathMap(), log.warning, cluster)

    analysis = NoOpAnalysis(make)
    runner = Runner(lib, analysis, log, make)
    with lib.transaction() as tx:
        ids = [row[0] for row in tx.query("SELECT id FROM items")]
    plan = runner.plan_ids(ids)
    runner.executor()  # connect and check the workers before timing
    tally = Tally()
    start, cpu = time.perf_counter(), time.process_time()
    runner.run(plan, tally)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    runner.close()
    assert tally.done == results, tally.summary("done")
    return results / seconds, results / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--results", type=int, default=2000)
    parser.add_argument("--cpu-per-track", type=float, default=7.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="af-cluster-") as tmp:
        root = Path(tmp)
        print(f"generating {args.tracks} tracks of {args.seconds:.0f} s …")
        source = synth.make_wav(root / "src.wav", 120, "Am", args.seconds)
        incoming = root / "incoming"
        incoming.mkdir()
        for n in range(args.tracks):
            synth.encode(source, incoming / f"track{n:03}.flac")
        env, _db = synth.import_library(root, incoming)
        address, procs = started_cluster(root, 2)
        try:
            essentia(env, "-j", "2")  # warm the page cache and imports
            rows = {
                "local pool -j 2": essentia(env, "-j", "2"),
                "--cluster local:2": essentia(env, "--cluster", "local:2"),
                "--cluster tcp:// (2 workers up)": essentia(
                    env, "--cluster", address
                ),
            }
            rate = coordinator_rate(root, args.results, address)
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
    base = rows["local pool -j 2"]
    print(f"\n{'beet essentia, music profile':<34}{'wall s':>8}{'vs -j 2':>9}")
    for name, seconds in rows.items():
        print(f"{name:<34}{seconds:>8.1f}{seconds / base - 1:>+9.1%}")
    wall, own = rate
    print(
        f"\ncoordinator, no-op analysis on the Dask executor "
        f"({args.results} items): {wall:.0f} results/s stored on this "
        f"machine, {own:.0f} per second of the coordinator's own CPU "
        f"({1000 / own:.1f} ms each)\n"
        f"one coordinator core keeps about {own * args.cpu_per_track:.0f} "
        f"music-profile worker cores busy ({args.cpu_per_track:g} CPU-s "
        "per track)"
    )
    print(f"\nmachine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
