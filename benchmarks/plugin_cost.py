"""What the plugin adds to every beets command: ``beet ls`` on a library
of N tracks with the plugin enabled against the same ``beet ls``
without it, in turn (A B A B ...), in one run.

Prints the median CPU time (user + system, from the kernel's accounting
of each finished process) of each, their difference in ms (the plugin's
cost; the goal is at most 10 ms) and the modules the plugin's import
brings in beyond beets'. The plugin's work (``beet essentia``, ``beet
clap`` ...) is imported only when its command runs, so the cost does
not grow with the number of commands, and not with the library.

    python benchmarks/plugin_cost.py [--runs 15] [--tracks 0,1000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BEET = str(Path(sys.executable).with_name("beet"))

LOAD = """
import time
import beets, beets.ui, beets.library, beets.plugins, beets.importer
beets.config["directory"].get()  # beets reads its configuration first
start = time.process_time()
from beetsplug.audiofeatures import AudioFeaturesPlugin
AudioFeaturesPlugin().commands()
print(time.process_time() - start)
"""

MODULES = """
import sys
import beets.ui, beets.library, beets.plugins
before = set(sys.modules)
import beetsplug.audiofeatures
from beetsplug.audiofeatures import AudioFeaturesPlugin
AudioFeaturesPlugin().commands()
added = sorted(set(sys.modules) - before)
print(len(added), " ".join(m for m in added if "." not in m))
"""


def library(folder: Path, plugin: bool) -> dict[str, str]:
    """The environment of a beets configuration with the plugin or
    without it, over one library in ``folder``."""
    config = folder / ("with" if plugin else "without")
    config.mkdir()
    plugins = "audiofeatures" if plugin else "[]"
    (config / "config.yaml").write_text(
        f"directory: {folder}/music\nlibrary: {folder}/library.db\n"
        f"plugins: {plugins}\n"
    )
    env = dict(os.environ, BEETSDIR=str(config))
    # As an installed package is: compiled once (pip compiles on install;
    # a checkout writes its .pyc on the first run, the warm-up).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def fill(db: Path, tracks: int) -> None:
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO items (path, title, artist, album) "
            "VALUES (?, ?, ?, ?)",
            [
                (f"/music/{n}.flac".encode(), f"t{n}", "a", "b")
                for n in range(tracks)
            ],
        )


def cpu_of(env: dict[str, str], *args: str) -> float:
    """The CPU seconds (user + system) of one ``beet`` process."""
    process = subprocess.Popen(
        [BEET, *args], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _pid, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"beet {' '.join(args)} failed ({status})")
    return usage.ru_utime + usage.ru_stime


def measure(tracks: int, runs: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with_plugin = library(folder, plugin=True)
        without = library(folder, plugin=False)
        cpu_of(without, "ls")  # creates the database
        fill(folder / "library.db", tracks)
        cpu_of(with_plugin, "ls")  # warm-up: the plugin's first look
        a, b = [], []
        for _ in range(runs):
            a.append(cpu_of(with_plugin, "ls"))
            b.append(cpu_of(without, "ls"))
        return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--tracks", default="0,1000")
    args = parser.parse_args()
    added = subprocess.run(
        [sys.executable, "-c", MODULES], capture_output=True, text=True,
        check=True,
    ).stdout.split(" ", 1)  # fmt: skip
    print(f"the plugin's import adds {added[0]} modules: {added[1].strip()}")
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    loads = [
        float(
            subprocess.run(
                [sys.executable, "-c", LOAD],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout
        )
        for _ in range(args.runs)
    ]
    print(
        f"the plugin's own load (import, plugin object, command lines), "
        f"after beets': {statistics.median(loads) * 1000:.1f} ms CPU "
        f"(median of {args.runs} processes)"
    )
    print(f"{'tracks':>8} {'with':>9} {'without':>9} {'plugin':>9}")
    for tracks in (int(n) for n in args.tracks.split(",")):
        with_plugin, without = measure(tracks, args.runs)
        print(
            f"{tracks:>8} {with_plugin * 1000:>7.0f}ms {without * 1000:>7.0f}ms"
            f" {(with_plugin - without) * 1000:>+7.1f}ms"
        )


if __name__ == "__main__":
    main()
