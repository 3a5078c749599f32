"""Peak memory of ``beet essentia -j 2`` and ``beet clap`` as libraries grow.

For each size N of ``--sizes`` (default 250, 1000, 2000) this builds a
fresh throw-away beets library of N tiny tracks (one 2-second FLAC sine
made by ffmpeg, hard-linked or copied N times under distinct names, in
folders of ten imported as albums with ``beet import -A -q``), then runs
the real ``beet`` executable, as a user would, with ``HF_HUB_OFFLINE=1``:

* ``beet essentia -j 2`` with the light ``rhythm`` profile;
* ``beet clap`` with the tiny random CLAP model of the tests
  (tests/clap_fixtures.py, built offline), one window per track and two
  decoders.

While each command runs, its whole process tree (beets itself, the
spawned Essentia workers, ffmpeg decoders, multiprocessing's resource
tracker) is sampled every ``--interval`` seconds. On Linux the samples
come from /proc: ``VmRSS`` of every process, summed for the tree total,
and ``VmHWM`` (the kernel's own high-water mark), which gives each
process's true peak even between samples; elsewhere psutil is used if
it is installed. A child caught between fork and exec (as each ffmpeg
is, for an instant) still shows its parent's memory and command line;
such samples are skipped, or the parent's RSS would count twice. After each command the library is checked: every item
must have been analysed or embedded.

The table shows wall time, items per second, the peak RSS of the
``beet`` process itself, the largest single child, and the peak sum
over the tree. Memory use is bounded when the peaks do not grow with
the number of items: the closing lines compare the largest size with
the smallest, and call growth under 20 % bounded.

    .venv/bin/python benchmarks/load_memory.py [--sizes 250 1000 2000]
        [--interval 0.1] [--keep]

It needs ffmpeg and the project's environment (essentia, torch,
transformers). The defaults take several minutes on two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BEET = Path(sys.executable).with_name("beet")
PROC = Path("/proc")
BOUNDED_GROWTH = 20.0  # per cent, largest size against the smallest
TRACKS_PER_ALBUM = 10
MB = 1024 * 1024


# -- sampling the process tree -------------------------------------------


@dataclass
class ProcSample:
    """One process at one moment: resident and peak resident bytes."""

    rss: int
    hwm: int
    label: str


def _label(cmdline: list[str], name: str) -> str:
    """A short kind for a child process, to group the peaks by."""
    joined = " ".join(cmdline)
    if "resource_tracker" in joined:
        return "resource tracker"
    if "multiprocessing" in joined:
        return "worker"
    return name or "?"


def _proc_status(pid: int) -> dict[str, str]:
    fields: dict[str, str] = {}
    with open(PROC / str(pid) / "status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _kib(value: str | None) -> int:
    return int(value.split()[0]) * 1024 if value else 0


def _proc_parents() -> dict[int, int]:
    """Every process's parent, from the ``ppid`` in /proc/*/stat."""
    parents: dict[int, int] = {}
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat")) as stat:
                # "pid (comm) state ppid ..."; comm may hold spaces
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents[int(entry.name)] = ppid
    return parents


def _descendants(root: int, parents: dict[int, int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def sample_proc(root: int) -> dict[int, ProcSample]:
    """``root`` and its descendants, read from /proc.

    A child caught between fork (or vfork) and exec still shows its
    parent's memory, and would count it twice; it shows its parent's
    command line too, so such children are left out. The command line is
    read before the status: once it differs, the exec has happened."""
    parents = _proc_parents()
    cmdlines: dict[int, bytes] = {}
    for pid in _descendants(root, parents):
        with contextlib.suppress(OSError):  # exited meanwhile
            cmdlines[pid] = (PROC / str(pid) / "cmdline").read_bytes()
    samples: dict[int, ProcSample] = {}
    for pid, raw in cmdlines.items():
        if pid != root and raw == cmdlines.get(parents[pid]):
            continue  # not exec'd yet
        try:
            status = _proc_status(pid)
        except OSError:
            continue
        if "VmRSS" not in status:  # a zombie
            continue
        rss = _kib(status.get("VmRSS"))
        samples[pid] = ProcSample(
            rss,
            max(rss, _kib(status.get("VmHWM"))),
            _label(raw.decode(errors="replace").split("\0"), status["Name"]),
        )
    return samples


def sample_psutil(root: int) -> dict[int, ProcSample]:
    """The same through psutil, where there is no /proc (no high-water)."""
    import psutil

    samples: dict[int, ProcSample] = {}
    try:
        top = psutil.Process(root)
        procs = [top, *top.children(recursive=True)]
    except psutil.Error:
        return samples
    cmdlines: dict[int, list[str]] = {}
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            cmdlines[proc.pid] = proc.cmdline()
    for proc in procs:
        if proc.pid not in cmdlines:
            continue
        try:
            parent = proc.ppid()
            if proc.pid != root and cmdlines[proc.pid] == cmdlines.get(parent):
                continue  # between fork and exec, as in sample_proc
            rss = proc.memory_info().rss
            label = _label(cmdlines[proc.pid], proc.name())
        except psutil.Error:
            continue
        samples[proc.pid] = ProcSample(rss, rss, label)
    return samples


def choose_sampler() -> tuple[str, Callable[[int], dict[int, ProcSample]]]:
    if (PROC / "self" / "status").exists():
        return "/proc VmRSS + VmHWM", sample_proc
    try:
        import psutil  # noqa: F401
    except ImportError:
        raise SystemExit("needs Linux /proc or psutil") from None
    return "psutil RSS", sample_psutil


# -- one measured command --------------------------------------------------


@dataclass
class Run:
    size: int
    command: str
    wall: float
    parent_peak: int = 0
    tree_peak: int = 0
    child_peaks: dict[int, tuple[str, int]] = field(default_factory=dict)
    samples: int = 0

    @property
    def rate(self) -> float:
        return self.size / self.wall if self.wall else 0.0

    def biggest_child(self) -> int:
        return max((peak for _, peak in self.child_peaks.values()), default=0)

    def children_summary(self) -> str:
        groups: dict[str, list[int]] = {}
        for label, peak in self.child_peaks.values():
            groups.setdefault(label, []).append(peak)
        if not groups:
            return "no child processes seen"
        return "; ".join(
            f"{len(peaks)} {label}: peak "
            + (
                "/".join(f"{p / MB:.0f}" for p in sorted(peaks))
                if len(peaks) <= 4
                else f"{max(peaks) / MB:.0f} (max)"
            )
            + " MB"
            for label, peaks in sorted(groups.items())
        )


def measured(
    size: int,
    args: list[str],
    env: dict[str, str],
    log: Path,
    sampler: Callable[[int], dict[int, ProcSample]],
    interval: float,
) -> Run:
    """Run ``beet *args`` and follow its process tree until it exits."""
    run = Run(size, "beet " + " ".join(args), 0.0)
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(BEET), *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        while True:
            samples = sampler(proc.pid)
            if samples:
                run.samples += 1
                run.tree_peak = max(
                    run.tree_peak, sum(s.rss for s in samples.values())
                )
            for pid, sample in samples.items():
                if pid == proc.pid:
                    run.parent_peak = max(run.parent_peak, sample.hwm)
                else:
                    _, before = run.child_peaks.get(pid, ("", 0))
                    run.child_peaks[pid] = (
                        sample.label,
                        max(before, sample.hwm),
                    )
            if proc.poll() is not None:
                break
            time.sleep(interval)
        run.wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{run.command} failed ({proc.returncode}):\n{tail}")
    return run


# -- building the libraries ------------------------------------------------


def make_model(root: Path) -> Path:
    """The tests' tiny random CLAP model, saved as a folder."""
    from beets_audiofeatures.clap.embedder import ClapEmbedder
    from tests.clap_fixtures import make_model as tiny_model
    from tests.clap_fixtures import make_tokenizer

    ClapEmbedder._import()  # quiets transformers' progress bars
    return tiny_model(root / "model", make_tokenizer(root / "tokenizer"))


def make_source(root: Path) -> Path:
    source = root / "tone.flac"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi",
         "-i", "sine=frequency=440:duration=2", "-ac", "2", "-ar", "44100",
         str(source)],
        check=True,
    )  # fmt: skip
    return source


def fill(folder: Path, source: Path, count: int) -> None:
    """``count`` copies of ``source``, ten to a folder (an album each)."""
    for number in range(count):
        album = folder / f"album{number // TRACKS_PER_ALBUM:04}"
        album.mkdir(parents=True, exist_ok=True)
        target = album / f"track{number:05}.flac"
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)


def write_config(root: Path, model: Path) -> Path:
    config = root / "config"
    config.mkdir()
    (config / "config.yaml").write_text(
        f"directory: {root / 'music'}\n"
        f"library: {root / 'library.db'}\n"
        "plugins: audiofeatures\n"
        # the copies have no tags: all albums look like one duplicate
        "import: {copy: no, write: no, duplicate_action: keep}\n"
        "audiofeatures:\n"
        "  essentia:\n"
        "    profile: rhythm\n"
        "    jobs: 2\n"
        "  clap:\n"
        f"    model: {model}\n"
        f"    cache_dir: {root / 'clap-cache'}\n"
        "    jobs: 2\n"
        "    windows: 1\n"
    )
    return config


def beet(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BEET), *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(
            f"beet {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def count_with(env: dict[str, str], field_name: str, expected: str) -> int:
    """How many items have ``field_name`` set to ``expected``."""
    shown = beet(env, "ls", "-f", f"${field_name}")
    return sum(line.strip() == expected for line in shown.splitlines())


def count_filled(env: dict[str, str], field_name: str) -> int:
    shown = beet(env, "ls", "-f", f"${field_name}")
    return sum(bool(line.strip()) for line in shown.splitlines())


def one_size(
    root: Path,
    size: int,
    source: Path,
    model: Path,
    sampler: Callable[[int], dict[int, ProcSample]],
    interval: float,
) -> list[Run]:
    library = root / f"library-{size}"
    library.mkdir()
    fill(library / "incoming", source, size)
    config = write_config(library, model)
    env = {**os.environ, "BEETSDIR": str(config), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    beet(env, "import", "-A", "-q", str(library / "incoming"))
    imported = len(beet(env, "ls", "-f", "$id").split())
    print(
        f"  {size}: imported {imported} items in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    if imported != size:
        raise SystemExit(f"imported {imported} items, not {size}")

    runs = []
    runs.append(
        measured(
            size, ["essentia", "-j", "2"], env,
            library / "essentia.log", sampler, interval,
        )
    )  # fmt: skip
    analysed = count_with(env, "essentia_profile", "rhythm")
    if analysed != size:
        raise SystemExit(f"beet essentia analysed {analysed} of {size}")
    print(f"  {size}: beet essentia {runs[-1].wall:.1f} s", flush=True)

    runs.append(
        measured(size, ["clap"], env, library / "clap.log", sampler, interval)
    )
    embedded = count_filled(env, "clap_model")
    if embedded != size:
        raise SystemExit(f"beet clap embedded {embedded} of {size}")
    print(f"  {size}: beet clap {runs[-1].wall:.1f} s", flush=True)
    shutil.rmtree(library, ignore_errors=True)
    return runs


# -- report ------------------------------------------------------------------


def print_table(runs: list[Run]) -> None:
    print(
        f"\n{'items':>6}  {'command':<22}{'wall s':>8}{'items/s':>9}"
        f"{'parent MB':>11}{'child MB':>10}{'tree MB':>9}{'samples':>9}"
    )
    for run in runs:
        print(
            f"{run.size:>6}  {run.command:<22}{run.wall:>8.1f}"
            f"{run.rate:>9.1f}{run.parent_peak / MB:>11.0f}"
            f"{run.biggest_child() / MB:>10.0f}{run.tree_peak / MB:>9.0f}"
            f"{run.samples:>9}"
        )
    print(
        "\nparent: peak RSS of the beet process; child: the largest single"
        " child;\ntree: the largest sum of RSS over the whole tree at one"
        " sample\n"
    )
    for run in runs:
        print(f"{run.size:>6}  {run.command}: {run.children_summary()}")


def growth(small: int, large: int) -> float:
    return (large - small) / small * 100 if small else 0.0


def print_verdict(runs: list[Run]) -> bool:
    """The largest size against the smallest, per command; True if bounded."""
    sizes = sorted({run.size for run in runs})
    if len(sizes) < 2:
        print("\none size only: nothing to compare")
        return True
    low, high = sizes[0], sizes[-1]
    bounded = True
    print()
    for command in dict.fromkeys(run.command for run in runs):
        first, last = (
            next(r for r in runs if r.command == command and r.size == n)
            for n in (low, high)
        )
        tree = growth(first.tree_peak, last.tree_peak)
        parent = growth(first.parent_peak, last.parent_peak)
        span = (high - low) / 1000
        ok = tree < BOUNDED_GROWTH
        bounded &= ok
        print(
            f"{command}: peak RSS grew by {tree:.1f} % from {low} to {high}"
            f" items ({(last.tree_peak - first.tree_peak) / MB / span:+.1f}"
            " MB per 1000 items): "
            + ("bounded" if ok else "NOT bounded")
            + f" (limit {BOUNDED_GROWTH:.0f} %)"
        )
        print(
            f"  the beet process alone: {parent:+.1f} % "
            f"({(last.parent_peak - first.parent_peak) / MB / span:+.1f} MB"
            " per 1000 items)"
            + ("" if parent < BOUNDED_GROWTH else ", grows with the items")
        )
    return bounded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[250, 1000, 2000]
    )
    parser.add_argument(
        "--interval", type=float, default=0.1, help="seconds between samples"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder"
    )
    args = parser.parse_args()
    if any(size < 1 for size in args.sizes):
        parser.error("sizes must be 1 or more")
    sizes = sorted(set(args.sizes))

    how, sampler = choose_sampler()
    root = Path(tempfile.mkdtemp(prefix="af-load-memory-"))
    load_before = os.getloadavg()
    runs: list[Run] = []
    try:
        print(f"building the tiny CLAP model in {root} …", flush=True)
        model = make_model(root)
        source = make_source(root)
        for size in sizes:
            print(f"library of {size} items …", flush=True)
            runs += one_size(root, size, source, model, sampler, args.interval)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    print_table(runs)
    bounded = print_verdict(runs)
    load_after = os.getloadavg()
    print(
        f"\nsampled with {how} every {args.interval} s; machine: "
        f"{os.cpu_count()} cores, load average "
        f"{' '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{' '.join(f'{x:.2f}' for x in load_after)} after"
    )
    if not bounded:
        print("memory grows with the number of items")


if __name__ == "__main__":
    main()
