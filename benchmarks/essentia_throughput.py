"""Throughput of ``beet essentia`` against a bare Essentia loop.

Generates N three-minute tracks (FLAC, drums and chords), imports them
into a throw-away beets library, then measures in the same run:

* the baseline: a bare Python loop calling Essentia's MusicExtractor on
  each file (one process per worker, files split between them);
* ``beet essentia -j J --force`` with the ``music`` profile;
* ``beet essentia`` with the light ``rhythm`` profile;

at 1 and 2 workers, and prints tracks per minute and the ratios. All
times are wall clock and include process start-up and Essentia's
import, for the baseline as for the plugin.

    python benchmarks/essentia_throughput.py [--tracks 8] [--seconds 180]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests import synth
from tests.synth import BEET

BARE_LOOP = """
import sys, essentia
essentia.log.infoActive = False
import essentia.standard as es
extractor = es.MusicExtractor()
for path in sys.argv[1:]:
    pool, frames = extractor(path)
    pool["rhythm.bpm"]
"""


def bare_loop(files: list[Path], workers: int) -> float:
    """Wall time of ``workers`` bare loops sharing ``files``."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BARE_LOOP, *map(str, files[w::workers])]
        )
        for w in range(workers)
    ]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("the bare Essentia loop failed")
    return time.perf_counter() - start


def plugin(env: dict[str, str], workers: int, profile: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [BEET, "essentia", "--force", "-j", str(workers), "--profile", profile],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=180)
    args = parser.parse_args()
    tracks: int = args.tracks

    with tempfile.TemporaryDirectory(prefix="af-bench-") as tmp:
        root = Path(tmp)
        print(f"generating {tracks} tracks of {args.seconds:.0f} s …")
        source = synth.make_wav(root / "src.wav", 120, "Am", args.seconds)
        incoming = root / "incoming"
        incoming.mkdir()
        files = [
            synth.encode(source, incoming / f"track{n:03}.flac")
            for n in range(tracks)
        ]
        env, _db = synth.import_library(root, incoming)

        def per_minute(seconds: float) -> float:
            return tracks / seconds * 60

        results: dict[tuple[str, int], float] = {}
        for workers in (1, 2):
            results["bare", workers] = bare_loop(files, workers)
            results["music", workers] = plugin(env, workers, "music")
            results["rhythm", workers] = plugin(env, workers, "rhythm")

        print(f"\n{'run':<28}{'wall s':>9}{'tracks/min':>12}")
        for (name, workers), seconds in results.items():
            label = {
                "bare": "bare MusicExtractor loop",
                "music": "beet essentia (music)",
                "rhythm": "beet essentia (rhythm)",
            }[name]
            print(
                f"{label + f' -j {workers}':<28}{seconds:>9.1f}"
                f"{per_minute(seconds):>12.1f}"
            )
        print()
        for workers in (1, 2):
            overhead = results["music", workers] / results["bare", workers] - 1
            print(
                f"plugin overhead vs bare loop at -j {workers}: {overhead:+.1%}"
            )
        for name in ("bare", "music", "rhythm"):
            speedup = results[name, 1] / results[name, 2]
            print(f"speed-up from 1 to 2 workers ({name}): {speedup:.2f}x")
        for workers in (1, 2):
            ratio = results["music", workers] / results["rhythm", workers]
            print(
                f"rhythm profile vs music at -j {workers}: {ratio:.2f}x faster"
            )
        print(
            f"\nmachine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
