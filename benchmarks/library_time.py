"""How long the first analysis of a whole library takes, per pipeline.

For N generated tracks of M seconds (drums and chords, ``tests/synth.py``)
or the audio files of a folder, every Essentia pipeline of the plugin
runs on every track in one process, interleaved (the order turns with
each track), so a shared machine's load falls on all alike. Printed per
pipeline: CPU seconds per track, the ratio to ``music``
(``MusicExtractor``), tracks per core-hour and the projected hours for a
library of 20,000 such tracks on this machine's cores; beside each, its
accuracy on the development corpus (``benchmarks/corpus``, scored as
``benchmarks/accuracy.py`` scores): key MIREX and tempo Acc1 / Acc2,
overall and per style.

Other analyses add their rows through ``EXTRA_ROWS`` (a list of named
measurements, see ``Measurement``).

``--memory`` also measures the peak resident memory of one worker over
many short tracks (growth from the 100th to the last) and on a 2-hour
file, each in a fresh process through the plugin's ``Analyzer``.

    python benchmarks/library_time.py [--tracks 6] [--seconds 180]
        [--folder DIR] [--corpus 120] [--jobs 2] [--memory]
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from benchmarks.accuracy import CORPUS, mirex, tempo_hits  # noqa: E402
from tests import synth  # noqa: E402

#: The Essentia pipelines compared: the full extractor, the default, and
#: each light profile.
PROFILES = ("music", "stored", "rhythm", "tonal", "lowlevel")
LIBRARY = 20_000
AUDIO = (".flac", ".mp3", ".ogg", ".m4a", ".wav", ".opus", ".wv", ".aiff")


@dataclass
class Measurement:
    """One row of the table: a named way of analysing the tracks."""

    name: str
    #: CPU seconds per track, on the run's tracks
    cpu_seconds: float
    #: accuracy on the development corpus, as columns ("key MIREX": 71.2)
    accuracy: dict[str, float] = field(default_factory=dict)
    note: str = ""


#: Rows measured by other analyses on the same tracks (the CLAP routes):
#: each function gets the run's track paths and options and returns its
#: measurements, printed after the Essentia rows.
EXTRA_ROWS: list[
    Callable[[list[Path], argparse.Namespace], list[Measurement]]
] = []


def clap_rows(
    tracks: list[Path], opts: argparse.Namespace
) -> list[Measurement]:
    """``--clap TOWER``: CLAP on each route at one thread per track (the
    random-weight model of ``benchmarks/clap_throughput.py``, 3 windows a
    track, features included), and the default Essentia profile with the
    fastest route beside it: the whole first night of a library."""
    if not opts.clap:
        return []
    from benchmarks.clap_throughput import clap_route_rows

    with tempfile.TemporaryDirectory() as tmp:
        result = clap_route_rows(
            Path(tmp), tower=opts.clap, threads=(1,), repeats=2,
            check_vectors=False,
        )  # fmt: skip
    return [
        Measurement(
            f"clap {row['route']} {row['precision']}",
            row["cpu_s_per_track"],
            note=f"{row['speedup_cpu']:.2f}x torch, {result['model']}",
        )
        for row in result["rows"]
    ]


EXTRA_ROWS.append(clap_rows)


# -- the pipelines, in one worker --------------------------------------------

_pipelines: dict[str, Any] = {}


def _pipeline(name: str) -> Any:
    if name not in _pipelines:
        from beets_audiofeatures.essentia.extraction import (
            PIPELINES,
            import_essentia,
        )
        from beets_audiofeatures.essentia.profiles import resolve_profile

        profile = resolve_profile(name)
        workdir = Path(tempfile.mkdtemp(prefix="library-time-"))
        _pipelines[name] = PIPELINES[profile.extractor](
            profile, import_essentia(), workdir
        )
    return _pipelines[name]


def run_all(path: str, order: Iterable[str]) -> dict[str, Any]:
    """Every pipeline on ``path``: ``{profile: (cpu seconds, values)}``."""
    results: dict[str, Any] = {}
    for name in order:
        pipeline = _pipeline(name)
        groups = pipeline.profile.groups
        start = time.process_time()
        values = pipeline.extract(path, groups, None)
        results[name] = (time.process_time() - start, _plain(values))
    return results


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    wanted = ("rhythm.bpm", "tonal.key.key", "tonal.key.scale")
    return {k: (v if isinstance(v, str) else float(v))
            for k, v in values.items() if k in wanted}  # fmt: skip


def _turned(index: int) -> list[str]:
    shift = index % len(PROFILES)
    return [*PROFILES[shift:], *PROFILES[:shift]]


def _timing_worker(job: tuple[int, str]) -> dict[str, Any]:
    index, path = job
    return run_all(path, _turned(index))


def _corpus_worker(job: tuple[int, dict[str, str]]) -> tuple[str, Any]:
    index, row = job
    path = CORPUS / "audio" / f"{row['track']}.flac"
    try:
        return row["track"], run_all(str(path), _turned(index))
    except Exception as exc:  # one bad track never stops the run
        return row["track"], f"{type(exc).__name__}: {exc}"


# -- tracks -------------------------------------------------------------------


def generated_tracks(folder: Path, count: int, seconds: float) -> list[Path]:
    rng = random.Random(5)
    tracks = []
    for n in range(count):
        bpm = rng.choice((84, 96, 110, 120, 128, 140))
        key = ("Am", "C")[n % 2]
        tracks.append(
            synth.make_track(folder / f"{n:03}.flac", bpm, key, seconds)
        )
    return tracks


def folder_tracks(folder: Path, count: int) -> list[Path]:
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO)
    return found[:count] if count else found


def corpus_rows(limit: int) -> list[dict[str, str]]:
    """Every ``len/limit``-th rendered corpus track (all styles)."""
    with open(CORPUS / "manifest.csv", newline="") as handle:
        rows = [
            r for r in csv.DictReader(handle)
            if (CORPUS / "audio" / f"{r['track']}.flac").exists()
        ]  # fmt: skip
    if limit and limit < len(rows):
        step = len(rows) / limit
        rows = [rows[int(i * step)] for i in range(limit)]
    return rows


# -- scoring ------------------------------------------------------------------


def accuracy(
    rows: list[dict[str, str]], results: dict[str, Any], profile: str
) -> dict[str, float]:
    """Key MIREX and tempo Acc1 / Acc2 (percent) of ``profile``."""
    scores: dict[str, float] = {}
    keyed = [r for r in rows if r["key"] and r["track"] in results]
    found = [results[r["track"]][profile][1] for r in keyed]
    if found and "tonal.key.key" in found[0]:
        points = [
            mirex(r["key"], f"{v['tonal.key.key']} {v['tonal.key.scale']}")
            for r, v in zip(keyed, found, strict=True)
        ]
        scores["key MIREX"] = 100 * sum(points) / len(points)
    timed = [r for r in rows if r["tempo"] and r["track"] in results]
    tempos = [results[r["track"]][profile][1] for r in timed]
    if tempos and "rhythm.bpm" in tempos[0]:
        hits = [
            tempo_hits(float(r["tempo"]), v["rhythm.bpm"])
            for r, v in zip(timed, tempos, strict=True)
        ]
        scores["Acc1"] = 100 * sum(a for a, _ in hits) / len(hits)
        scores["Acc2"] = 100 * sum(b for _, b in hits) / len(hits)
    return scores


def corpus_accuracy(
    opts: argparse.Namespace,
) -> tuple[dict[str, dict[str, float]], list[str], dict[str, float]]:
    """Accuracy per profile on the corpus, the per-style lines, and the
    CPU seconds per corpus track of each profile."""
    rows = corpus_rows(opts.corpus)
    if not rows:
        return (
            {},
            ["(no rendered corpus: benchmarks/corpus/build.py render)"],
            {},
        )
    results: dict[str, Any] = {}
    with multiprocessing.get_context("spawn").Pool(opts.jobs) as pool:
        for track, result in pool.imap_unordered(
            _corpus_worker, list(enumerate(rows))
        ):
            if isinstance(result, str):
                print(f"{track}: {result}", file=sys.stderr)
            else:
                results[track] = result
    overall = {p: accuracy(rows, results, p) for p in PROFILES}
    lines = []
    for style in sorted({r["style"] for r in rows}):
        mine = [r for r in rows if r["style"] == style]
        parts = []
        for profile in PROFILES:
            score = accuracy(mine, results, profile)
            if score:
                parts.append(
                    f"{profile} "
                    + " ".join(f"{k} {v:.1f}" for k, v in score.items())
                )
        lines.append(f"  {style} ({len(mine)}): " + "; ".join(parts))
    cpu = {
        p: sum(r[p][0] for r in results.values()) / max(len(results), 1)
        for p in PROFILES
    }
    return overall, lines, cpu


# -- memory -------------------------------------------------------------------

MEMORY_PROBE = """
import json, resource, sys
from beets_audiofeatures.essentia.extraction import Analyzer, AnalysisJob
from beets_audiofeatures.essentia.profiles import resolve_profile
profile, count, max_seconds, length, *paths = sys.argv[1:]
analyzer = Analyzer(resolve_profile(profile), None)
peaks = {}
for n in range(int(count)):
    path = paths[n % len(paths)]
    analyzer(AnalysisJob(path.encode(), float(length),
                         max_seconds=float(max_seconds)))
    if n + 1 in (1, 100, int(count)):
        peaks[n + 1] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(peaks))
"""


def memory_probe(
    profile: str, count: int, paths: list[Path], length: float,
    max_seconds: float = 0,
) -> dict[int, float]:  # fmt: skip
    """Peak RSS (MB) of a fresh worker after the 1st, 100th and last
    of ``count`` analyses."""
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, profile, str(count),
         str(max_seconds), str(length), *map(str, paths)],
        check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
    ).stdout  # fmt: skip
    peaks = json.loads(out.strip().splitlines()[-1])
    return {int(n): kb / 1024 for n, kb in peaks.items()}


def memory_report(folder: Path, opts: argparse.Namespace) -> list[str]:
    shorts = [
        synth.make_track(folder / f"short{n}.flac", 100 + 10 * n, "Am", 4)
        for n in range(4)
    ]
    lines = []
    peaks = memory_probe("stored", opts.memory_tracks, shorts, 4)
    last = max(peaks)
    growth = 100 * (peaks[last] / peaks[100] - 1)
    lines.append(
        f"stored, {last} tracks of 4 s: peak RSS {peaks[1]:.0f} MB after "
        f"the 1st, {peaks[100]:.0f} after the 100th, {peaks[last]:.0f} "
        f"after the {last}th ({growth:+.1f} % from the 100th)"
    )
    long_file = folder / "two-hours.flac"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i",
         str(shorts[0]), "-t", "7200", "-c:a", "flac", str(long_file)],
        check=True,
    )  # fmt: skip
    for profile in ("stored", "music"):
        for limit in (30 * 60, 0):
            if profile == "music" and limit == 0:
                continue  # minutes of CPU for the same finding
            peak = memory_probe(profile, 1, [long_file], 7200, limit)[1]
            cut = f"cut at {limit // 60} min (the default max_minutes)"
            lines.append(
                f"{profile}, one 2-hour file, {cut if limit else 'whole'}: "
                f"peak RSS {peak:.0f} MB"
            )
    return lines


# -- the table ----------------------------------------------------------------


def print_table(
    rows: list[Measurement], opts: argparse.Namespace, described: str
) -> None:
    base = next((r.cpu_seconds for r in rows if r.name == "music"), 0.0)
    print(f"\n{described}; CPU seconds per track, interleaved in one run")
    print(f"projected for {LIBRARY:,} such tracks on {opts.cores} cores\n")
    columns = ("key MIREX", "Acc1", "Acc2")
    print(
        f"{'pipeline':16} {'CPU s':>7} {'×music':>7} {'tracks/core-h':>14} "
        f"{'20k h':>7} " + " ".join(f"{c:>9}" for c in columns)
    )
    for row in rows:
        faster = base / row.cpu_seconds if row.cpu_seconds and base else 0
        per_hour = 3600 / row.cpu_seconds if row.cpu_seconds else 0
        hours = LIBRARY * row.cpu_seconds / 3600 / opts.cores
        scores = " ".join(
            f"{row.accuracy[c]:9.1f}" if c in row.accuracy else f"{'':9}"
            for c in columns
        )
        print(
            f"{row.name:16} {row.cpu_seconds:7.2f} {faster:7.2f} "
            f"{per_hour:14.0f} {hours:7.1f} {scores}"
            + (f"  {row.note}" if row.note else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--folder", type=Path, help="real files instead")
    parser.add_argument(
        "--corpus", type=int, default=120,
        help="corpus tracks to score (0: all rendered; -1: none)",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument(
        "--clap", metavar="TOWER", choices=("htsat-tiny", "htsat-base"),
        help="add CLAP's routes (torch, onnx fp32, onnx int8) on this tower",
    )  # fmt: skip
    parser.add_argument("--memory-tracks", type=int, default=1000)
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="library-time-") as tmp:
        folder = Path(tmp)
        if opts.folder:
            tracks = folder_tracks(opts.folder, opts.tracks)
            described = f"{len(tracks)} files of {opts.folder}"
        else:
            tracks = generated_tracks(folder, opts.tracks, opts.seconds)
            described = (
                f"{len(tracks)} generated tracks of {opts.seconds:.0f} s"
            )
        if not tracks:
            sys.exit("no audio files to measure")
        # One warm-up (imports, FFT plans, the extractors' set-up), then
        # every track through every pipeline, the order turning.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pool.apply(_timing_worker, ((0, str(tracks[0])),))
            timings = pool.map(
                _timing_worker, [(i, str(p)) for i, p in enumerate(tracks)]
            )
        cpu = {
            p: sum(t[p][0] for t in timings) / len(timings) for p in PROFILES
        }
        overall: dict[str, dict[str, float]] = {}
        styles: list[str] = []
        corpus_cpu: dict[str, float] = {}
        if opts.corpus >= 0:
            overall, styles, corpus_cpu = corpus_accuracy(opts)
        rows = [
            Measurement(
                p,
                cpu[p],
                overall.get(p, {}),
                f"corpus: {corpus_cpu[p]:.2f} s/track" if corpus_cpu else "",
            )
            for p in PROFILES
        ]
        for extra in EXTRA_ROWS:
            rows.extend(extra(tracks, opts))
        print_table(rows, opts, described)
        if styles:
            print("\nAccuracy on the corpus by style:")
            print("\n".join(styles))
        if opts.memory:
            print("\nMemory of one worker:")
            print("\n".join(memory_report(folder, opts)))


if __name__ == "__main__":
    main()
