"""Cold ``beet clapquery`` wall time: a new prompt against a cached one.

Builds the tiny test CLAP model (tests/clap_fixtures.py) and a throw-away
beets library of a few synthesised tracks, embeds them with ``beet clap``,
then times whole ``beet clapquery`` processes (a fresh interpreter each
time, as a user runs them, with ``HF_HUB_OFFLINE=1``):

* a new prompt each run: the model is loaded to embed the text;
* the same prompt again: its vector comes from the prompt cache, and the
  command must not import torch;
* a cached Russian prompt, with ``translate`` naming a tiny Marian model
  (tests/translation_fixtures.py): its English from the translation
  cache, its vector from the prompt cache; it must cost what the cached
  English prompt does, and not import torch either;
* ``beet ls``: start-up of beets with the plugin, the floor for both.

Each is the median of ``--runs`` processes. A separate, untimed run of
each query with ``PYTHONPROFILEIMPORTTIME=1`` checks whether torch was
imported.

    python benchmarks/clap_query_cold.py [--runs 3] [--tracks 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from beets_audiofeatures.clap.embedder import ClapEmbedder
from tests.clap_fixtures import make_model, make_tokenizer
from tests.translation_fixtures import RUSSIAN, make_translation_model

BEET = Path(sys.executable).with_name("beet")
CACHED_PROMPT = "dusty jazz piano at night"


def make_tracks(folder: Path, count: int, seconds: float) -> None:
    """``count`` FLAC sines of different pitches, tagged by file name."""
    folder.mkdir(parents=True)
    for number in range(count):
        frequency = 220 * (number + 1)
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi",
             "-i", f"sine=frequency={frequency}:duration={seconds}",
             "-ac", "2", "-ar", "44100",
             str(folder / f"tone{number:02}.flac")],
            check=True,
        )  # fmt: skip


def write_config(root: Path, model: Path, translator: Path) -> Path:
    config = root / "config"
    config.mkdir()
    (config / "config.yaml").write_text(
        f"directory: {root / 'music'}\n"
        f"library: {root / 'library.db'}\n"
        "plugins: audiofeatures\n"
        "import: {copy: no, write: no}\n"
        "audiofeatures:\n"
        "  clap:\n"
        f"    model: {model}\n"
        f"    cache_dir: {root / 'clap-cache'}\n"
        f"    translate: {translator}\n"
        "    jobs: 1\n"
    )
    return config


def beet(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BEET), *args], env=env, check=True, capture_output=True, text=True
    )


def timed_beet(env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    done = beet(env, *args)
    seconds = time.perf_counter() - start
    if args[0] == "clapquery" and not done.stdout.strip():
        raise SystemExit(f"beet {' '.join(args)} found nothing")
    return seconds


def imports_torch(env: dict[str, str], *args: str) -> bool:
    """Whether ``beet *args`` imports torch (one untimed run)."""
    done = beet({**env, "PYTHONPROFILEIMPORTTIME": "1"}, *args)
    return any(
        line.rsplit("|", 1)[-1].strip() == "torch"
        for line in done.stderr.splitlines()
    )


def prepare(root: Path, tracks: int) -> dict[str, str]:
    """A library of ``tracks`` files, embedded with the tiny model."""
    ClapEmbedder._import()  # quiets transformers' progress bars
    model = make_model(root / "model", make_tokenizer(root / "tokenizer"))
    make_tracks(root / "incoming", tracks, seconds=30)
    translator = make_translation_model(root / "opus-mt-ru-en")
    config = write_config(root, model, translator)
    env = {**os.environ, "BEETSDIR": str(config), "HF_HUB_OFFLINE": "1"}
    beet(env, "import", "-A", "-q", str(root / "incoming"))
    beet(env, "clap")
    beet(env, "clapquery", CACHED_PROMPT)  # fills the prompt cache
    beet(env, "clapquery", RUSSIAN)  # and the translation cache
    return env


def measure(env: dict[str, str], runs: int) -> dict[str, list[float]]:
    return {
        "new": [
            timed_beet(env, "clapquery", f"new prompt {os.getpid()} {run}")
            for run in range(runs)
        ],
        "cached": [
            timed_beet(env, "clapquery", CACHED_PROMPT) for _ in range(runs)
        ],
        "translated": [
            timed_beet(env, "clapquery", RUSSIAN) for _ in range(runs)
        ],
        "ls": [timed_beet(env, "ls") for _ in range(runs)],
    }


def print_table(
    times: dict[str, list[float]], torch_loaded: dict[str, bool]
) -> None:
    labels = {
        "new": "clapquery, new prompt (model loads)",
        "cached": "clapquery, cached prompt",
        "translated": "clapquery, cached Russian prompt",
        "ls": "beet ls (start-up floor)",
    }
    print(
        f"\n{'command':<38}{'median s':>10}{'min s':>8}{'max s':>8}{'torch':>8}"
    )
    for key, label in labels.items():
        runs = times[key]
        loaded = torch_loaded.get(key)
        torch = "-" if loaded is None else "yes" if loaded else "no"
        print(
            f"{label:<38}{statistics.median(runs):>10.2f}{min(runs):>8.2f}"
            f"{max(runs):>8.2f}{torch:>8}"
        )
    new, cached, translated, floor = (
        statistics.median(times[k]) for k in labels
    )
    print(
        f"\nnew / cached: {new / cached:.1f}x; cached prompt costs "
        f"{cached - floor:+.2f} s over beet ls; loading the model costs "
        f"{new - cached:.2f} s; a cached translated prompt costs "
        f"{translated - cached:+.2f} s over a cached English one"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tracks", type=int, default=3)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="af-clap-query-"))
    load_before = os.getloadavg()[0]
    try:
        print(f"building a library of {args.tracks} tracks …", flush=True)
        env = prepare(root, args.tracks)
        print(f"timing {args.runs} runs of each …", flush=True)
        times = measure(env, args.runs)
        torch_loaded = {
            "new": imports_torch(env, "clapquery", "one more new prompt"),
            "cached": imports_torch(env, "clapquery", CACHED_PROMPT),
            "translated": imports_torch(env, "clapquery", RUSSIAN),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print_table(times, torch_loaded)
    verdict = (
        "does not import"
        if not (torch_loaded["cached"] or torch_loaded["translated"])
        else "IMPORTS"
    )
    print(f"a cached prompt {verdict} torch")
    print(
        f"\nmachine: {os.cpu_count()} cores, load {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )


if __name__ == "__main__":
    main()
