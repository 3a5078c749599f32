"""CLAP embedding throughput on the CPU, with randomly initialised models.

Builds three ``ClapModel``s with random weights and saves each with
``save_pretrained`` (plus a ``ClapProcessor`` and a small BPE tokenizer)
into a temporary folder, then loads them through ``ClapEmbedder`` as a
user's model folder would be loaded:

* ``fixture``: the tiny test model (tests/clap_fixtures.py);
* ``htsat-tiny``: the audio tower of the LAION 630k checkpoints;
* ``htsat-base``: the audio tower of ``laion/larger_clap_music`` and the
  LAION music checkpoints (the plugin's default model).

The text tower is kept small (it does not touch audio throughput); the
projection is 512-d as in the released models. For each model, at 1 and
2 torch threads (each setting in its own subprocess, because
``torch.set_num_threads`` holds per process), it measures the load time,
the feature extractor alone (log-mel in numpy) and ``embed_clips`` with
batches of 1 and of 8 ten-second clips; seconds per track assume 3
windows, the plugin's default.

End to end, ``clap_audio.embed_tracks`` embeds ``--tracks`` synthesised
FLAC files (a sine, ``--seconds`` long) with 3 windows per track,
2 decoder threads and batches of 9 clips (3 tracks), so ffmpeg decodes while the
model runs; the sequential baseline decodes every window first and then
embeds one clip at a time. Embedding the decoded clips in batches of 8,
with no decoding at all, is shown as the floor the pipeline can reach.
Medians of ``--repeats`` (``--quick``: 1) throughout.

``--routes`` measures only the routes instead: torch, onnx fp32 and onnx
int8 (``audiofeatures.clap.route``/``precision``) on ``--e2e-model``, at 1
and 2 threads, interleaved in one process, with the vector checks of
``check_route_vectors``. ``benchmarks/library_time.py`` calls the same
measurement as ``clap_route_rows(work_dir)``.

    python benchmarks/clap_throughput.py [--quick] [--tracks 8]
        [--seconds 180] [--e2e-model htsat-base] [--e2e-threads 2]
    python benchmarks/clap_throughput.py --routes [--repeats 3]
        [--audio FOLDER]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from beets_audiofeatures.clap.audio import (
    WindowPolicy,
    decode_clips,
    embed_tracks,
)
from beets_audiofeatures.clap.embedder import ClapEmbedder
from beets_audiofeatures.clap.mel import clip_features
from beets_audiofeatures.clap.model import CLIP_SAMPLES, SAMPLE_RATE, ModelSpec
from beets_audiofeatures.runner import Failure
from tests.clap_fixtures import make_model, make_tokenizer

WINDOWS = 3
BATCH = 8
PROJECTION = 512
#: Audio towers as in the LAION-CLAP releases (HTSAT config files).
TOWERS: dict[str, dict[str, Any]] = {
    "htsat-tiny": {
        "patch_embeds_hidden_size": 96,
        "depths": [2, 2, 6, 2],
        "num_attention_heads": [4, 8, 16, 32],
        "hidden_size": 768,
    },
    "htsat-base": {
        "patch_embeds_hidden_size": 128,
        "depths": [2, 2, 12, 2],
        "num_attention_heads": [4, 8, 16, 32],
        "hidden_size": 1024,
    },
}
SMALL_TEXT_TOWER = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 1,
    "intermediate_size": 96,
}
MODELS = ["fixture", *TOWERS]


# -- building the models (parent process) -------------------------------------


def save_tower_model(folder: Path, tokenizer_dir: Path, tower: str) -> Path:
    """A random ClapModel with a real-size audio tower, saved with its
    processor like a downloaded model folder."""
    import torch
    from transformers import (
        AutoTokenizer,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
    )

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = ClapConfig(
        audio_config={**TOWERS[tower], "enable_fusion": False},
        text_config={**SMALL_TEXT_TOWER, "vocab_size": len(tokenizer)},
        projection_dim=PROJECTION,
    )
    torch.manual_seed(0)
    ClapModel(config).save_pretrained(str(folder))
    features = ClapFeatureExtractor(
        frequency_min=50,
        frequency_max=14_000,
        truncation="rand_trunc",
        padding="repeatpad",
    )
    processor = ClapProcessor(feature_extractor=features, tokenizer=tokenizer)
    processor.save_pretrained(str(folder))
    return folder


def build_models(root: Path) -> dict[str, Path]:
    ClapEmbedder._import()  # quiets transformers' progress bars
    tokenizer_dir = make_tokenizer(root / "tokenizer")
    folders = {"fixture": make_model(root / "fixture", tokenizer_dir)}
    for tower in TOWERS:
        folders[tower] = save_tower_model(root / tower, tokenizer_dir, tower)
    return folders


def make_tracks(folder: Path, count: int, seconds: float) -> list[Path]:
    """``count`` stereo 44.1 kHz FLAC files of a 440 Hz sine."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "track000.flac"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
         "-i", f"sine=frequency=440:duration={seconds}",
         "-ac", "2", "-ar", "44100", str(source)],
        check=True,
    )  # fmt: skip
    tracks = [source]
    for number in range(1, count):
        copy = folder / f"track{number:03}.flac"
        shutil.copyfile(source, copy)
        tracks.append(copy)
    return tracks


# -- measuring (worker processes) ---------------------------------------------


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    return statistics.median(timed(call) for _ in range(repeats))


def noise_clips(count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal((count, CLIP_SAMPLES))).astype(np.float32)


def import_seconds() -> float:
    """Importing torch and transformers, paid once per process."""
    return timed(ClapEmbedder._import)


def measure_model(folder: Path, threads: int, repeats: int) -> dict[str, float]:
    """Load time, and seconds per clip for features, batch 1 and batch 8."""
    start = time.perf_counter()
    embedder = ClapEmbedder(ModelSpec(model=str(folder), threads=threads))
    load = time.perf_counter() - start
    one, eight = noise_clips(1), noise_clips(BATCH)
    embedder.embed_clips(one)  # warm-up: first-call allocations
    features = median_seconds(
        lambda: clip_features(embedder.features, eight, SAMPLE_RATE), repeats
    )
    return {
        "load": load,
        "features": features / BATCH,
        "batch1": median_seconds(lambda: embedder.embed_clips(one), repeats),
        "batch8": median_seconds(lambda: embedder.embed_clips(eight), repeats)
        / BATCH,
    }


def pipelined(
    embedder: ClapEmbedder, tracks: list[tuple[int, str, float]]
) -> float:
    """Wall time of ``embed_tracks`` as ``beet clap`` runs it."""
    start = time.perf_counter()
    for key, result in embed_tracks(
        tracks,
        embedder.embed_clips,
        WindowPolicy(count=WINDOWS),
        decoders=2,
        batch_clips=3 * WINDOWS,  # the plugin's default: whole tracks
    ):
        if isinstance(result, Failure):
            raise SystemExit(f"embed_tracks failed on {key}: {result.reason}")
    return time.perf_counter() - start


def decode_all(tracks: list[tuple[int, str, float]]) -> np.ndarray:
    """Every window of every track, one ffmpeg at a time."""
    policy = WindowPolicy(count=WINDOWS)
    return np.concatenate(
        [decode_clips(path, length, policy) for _, path, length in tracks]
    )


def embed_in_batches(
    embedder: ClapEmbedder, clips: np.ndarray, batch: int
) -> None:
    for row in range(0, len(clips), batch):
        embedder.embed_clips(clips[row : row + batch])


def end_to_end_once(
    embedder: ClapEmbedder, tracks: list[tuple[int, str, float]]
) -> dict[str, float]:
    """The sequential baseline (decode all, then embed batch 1), the
    decoded clips embedded in batches of 8 without decoding (the floor
    for the pipeline), and the pipeline."""
    decoded: list[np.ndarray] = []
    decode = timed(lambda: decoded.append(decode_all(tracks)))
    clips = decoded[0]
    return {
        "decode": decode,
        "embed1": timed(lambda: embed_in_batches(embedder, clips, 1)),
        "embed8": timed(lambda: embed_in_batches(embedder, clips, BATCH)),
        "pipelined": pipelined(embedder, tracks),
    }


def measure_end_to_end(
    folder: Path, threads: int, files: list[Path], seconds: float, repeats: int
) -> dict[str, float]:
    """Medians over ``repeats`` rounds, each mode once per round."""
    embedder = ClapEmbedder(ModelSpec(model=str(folder), threads=threads))
    embedder.embed_clips(noise_clips(1))
    tracks = [(key, str(path), seconds) for key, path in enumerate(files)]
    rounds = [end_to_end_once(embedder, tracks) for _ in range(repeats)]
    return {
        mode: statistics.median(r[mode] for r in rounds) for mode in rounds[0]
    }


# -- routes: torch, onnx fp32, onnx int8 --------------------------------------

#: Every route and precision, the torch route first (the baseline).
ROUTES = (("torch", "fp32"), ("onnx", "fp32"), ("onnx", "int8"))
#: Tracks in the store the top-10 check searches.
STORE_TRACKS = 1000
TOP = 10
#: ffmpeg sources that widen the windows' variety beyond drums + chords.
LAVFI_SOURCES = [
    "anoisesrc=color=pink:amplitude=0.3",
    "anoisesrc=color=brown:amplitude=0.5",
    "anoisesrc=color=white:amplitude=0.1",
    "sine=frequency=220,volume=0.5",
    "sine=frequency=1760,volume=0.3",
    "aevalsrc=0.3*sin(2*PI*(200+300*t)*t)",
    "aevalsrc=0.2*sin(2*PI*110*t)+0.2*sin(2*PI*165*t)+0.2*sin(2*PI*220*t)",
    "aevalsrc=0.3*sin(2*PI*80*t)*sin(2*PI*2*t)",
]


def route_towers(
    embedder: ClapEmbedder, threads: Sequence[int], export_dir: Path
) -> tuple[dict[tuple[str, int], Any], dict[str, float]]:
    """ONNX Runtime sessions of ``embedder``'s model, by precision and
    threads, and the seconds each precision's first export took (the
    one-off cost a user pays on the first run)."""
    from beets_audiofeatures.clap.digests import WeightDigests
    from beets_audiofeatures.clap.onnx_route import load_audio_tower
    from beets_audiofeatures.clap.sources import model_source

    weights = model_source(embedder.spec).identity(
        WeightDigests(export_dir / "digests.json")
    )
    towers: dict[tuple[str, int], Any] = {}
    export: dict[str, float] = {}
    for _route, precision in ROUTES[1:]:
        spec = replace(
            embedder.spec, route="onnx", precision=precision,
            export_dir=str(export_dir),
        )  # fmt: skip
        for count in threads:
            start = time.perf_counter()
            towers[precision, count] = load_audio_tower(
                embedder.model, spec, weights, count
            )
            export.setdefault(precision, time.perf_counter() - start)
    return towers, export


def embed_by_route(
    embedder: ClapEmbedder,
    tower: Any,
    clips: np.ndarray,
    threads: int,
) -> np.ndarray:
    """``embed_clips`` on the torch route (``tower`` None) or with the
    onnx session ``tower``, at ``threads``."""
    import torch

    torch.set_num_threads(threads)
    embedder.onnx = tower
    try:
        return embedder.embed_clips(clips)
    finally:
        embedder.onnx = None


def time_routes(
    embedder: ClapEmbedder,
    towers: dict[tuple[str, int], Any],
    threads: Sequence[int],
    batch: int,
    repeats: int,
) -> list[dict[str, Any]]:
    """Seconds per clip (wall and CPU) of every route at every thread
    count, interleaved: each round runs each of them once, so a busy
    spell of the machine falls on all of them alike."""
    clips = noise_clips(batch)
    cases = [
        (route, precision, count)
        for count in threads
        for route, precision in ROUTES
    ]
    walls: dict[tuple[str, str, int], list[float]] = {c: [] for c in cases}
    cpus: dict[tuple[str, str, int], list[float]] = {c: [] for c in cases}
    for route, precision, count in cases:  # warm-up: first-call costs
        tower = towers.get((precision, count)) if route == "onnx" else None
        embed_by_route(embedder, tower, clips[:1], count)
    for _ in range(repeats):
        for case in cases:
            route, precision, count = case
            tower = towers.get((precision, count)) if route == "onnx" else None
            cpu, wall = time.process_time(), time.perf_counter()
            embed_by_route(embedder, tower, clips, count)
            walls[case].append((time.perf_counter() - wall) / batch)
            cpus[case].append((time.process_time() - cpu) / batch)
    rows = []
    for case in cases:
        route, precision, count = case
        base = ("torch", "fp32", count)
        wall = statistics.median(walls[case])
        cpu = statistics.median(cpus[case])
        rows.append({
            "route": route, "precision": precision, "threads": count,
            "wall_s_per_clip": wall, "cpu_s_per_clip": cpu,
            "wall_s_per_track": wall * WINDOWS,
            "cpu_s_per_track": cpu * WINDOWS,
            "speedup_wall": statistics.median(walls[base]) / wall,
            "speedup_cpu": statistics.median(cpus[base]) / cpu,
        })  # fmt: skip
    return rows


def real_windows(folder: Path, audio: Path | None) -> np.ndarray:
    """10-s windows of real audio: 3 of each file in ``audio`` if given,
    else of synthesised drums-and-chords tracks (tests/synth.py) at
    several tempi and keys, and of ffmpeg's noise and tone sources."""
    from tests import synth

    policy = WindowPolicy(count=WINDOWS)
    files: list[Path] = []
    if audio is not None:
        files = sorted(p for p in audio.rglob("*") if p.is_file())
    else:
        folder.mkdir(parents=True, exist_ok=True)
        for bpm in (72, 96, 120, 138, 160, 176):
            for key in synth.PROGRESSIONS:
                files.append(
                    synth.make_wav(folder / f"{key}-{bpm}.wav", bpm, key, 36)
                )
        for number, source in enumerate(LAVFI_SOURCES):
            target = folder / f"lavfi-{number}.flac"
            subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
                 "-i", source, "-t", "36", "-ac", "2", "-ar", "44100",
                 str(target)],
                check=True,
            )  # fmt: skip
            files.append(target)
    windows = []
    for path in files:
        try:
            windows.append(decode_clips(str(path), 0, policy))
        except Exception as exc:  # a file that does not decode is skipped
            print(f"skipped {path}: {exc}", file=sys.stderr)
    return np.concatenate(windows)


def check_route_vectors(
    embedder: ClapEmbedder,
    towers: dict[tuple[str, int], Any],
    windows: np.ndarray,
    threads: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """How the onnx routes' vectors compare with the torch route's.

    Every window is embedded by each route: the cosine of each window's
    vector to the torch route's (least and median). A store of
    ``STORE_TRACKS`` tracks is then made, each track the re-normalised
    mean of 3 windows drawn at random (the plugin's track vector), from
    each route's window vectors with the same draws, and searched with
    the 10 prompts of the test captions through the text tower: how many
    prompts find the same top-10 tracks on the onnx route as on torch."""
    from beets_audiofeatures.vectors import unit_rows
    from tests.clap_fixtures import CAPTIONS

    by_route = {}
    for route, precision in ROUTES:
        tower = towers.get((precision, threads)) if route == "onnx" else None
        by_route[route, precision] = np.concatenate([
            embed_by_route(embedder, tower, windows[row : row + 9], threads)
            for row in range(0, len(windows), 9)
        ])  # fmt: skip
    rng = np.random.default_rng(seed)
    draws = np.array([
        rng.choice(len(windows), WINDOWS, replace=False)
        for _ in range(STORE_TRACKS)
    ])  # fmt: skip
    prompts = embedder.embed_texts(CAPTIONS)
    reference = by_route["torch", "fp32"]
    stores = {
        key: unit_rows(vectors[draws].mean(axis=1))
        for key, vectors in by_route.items()
    }

    def top(store: np.ndarray) -> list[set[int]]:
        scores = prompts @ store.T
        return [set(np.argsort(-row, kind="stable")[:TOP]) for row in scores]

    expected = top(stores["torch", "fp32"])
    # How close the model's vectors lie to each other (a random-weight
    # model's lie far closer than a trained one's): the errors below
    # matter in proportion to the distance to a window's nearest other.
    similar = reference @ reference.T
    distances = np.sqrt(np.maximum(0, 2 - 2 * similar))
    np.fill_diagonal(distances, np.inf)
    checks: dict[str, Any] = {
        "windows": len(windows),
        "tracks": STORE_TRACKS,
        "window_pair_cosine_median": float(
            np.median(similar[np.triu_indices(len(reference), 1)])
        ),
        "nearest_window_distance_median": float(
            np.median(distances.min(axis=1))
        ),
    }
    for key in ROUTES[1:]:
        cosines = (by_route[key] * reference).sum(axis=1)
        track_cosines = (stores[key] * stores["torch", "fp32"]).sum(axis=1)
        found = top(stores[key])
        error = by_route[key] - reference
        # A shift shared by every vector adds the same to every score.
        own = error - error.mean(axis=0)
        checks["/".join(key)] = {
            "window_cosine_min": float(cosines.min()),
            "window_cosine_median": float(np.median(cosines)),
            "track_cosine_min": float(track_cosines.min()),
            "error_median": float(np.median(np.linalg.norm(error, axis=1))),
            "unshared_error_median": float(
                np.median(np.linalg.norm(own, axis=1))
            ),
            "same_top10": sum(
                a == b for a, b in zip(expected, found, strict=True)
            ),
            "top10_overlap_mean": float(
                np.mean(
                    [len(a & b) for a, b in zip(expected, found, strict=True)]
                )
            ),
            "prompts": len(CAPTIONS),
        }
    return checks


def clap_route_rows(
    work_dir: Path,
    tower: str = "htsat-base",
    threads: Sequence[int] = (1, 2),
    repeats: int = 3,
    batch: int = 3 * WINDOWS,
    check_vectors: bool = True,
    audio: Path | None = None,
) -> dict[str, Any]:
    """The CLAP routes measured in this process, for this script and
    ``benchmarks/library_time.py``: a random-weight model with the
    ``tower`` audio tower is saved under ``work_dir`` (kept for reuse),
    exported to ONNX (fp32, int8), and timed in batches of ``batch``
    clips at each thread count, interleaved.

    Returns ``{"rows": [...], "export_s": {...}, "vectors": {...}}``:
    a row per route, precision and thread count with seconds per clip
    and per track (``WINDOWS`` windows; wall and CPU) and the speed-up
    over the torch route at the same threads; the first export's
    seconds per precision; and ``check_route_vectors`` (unless
    ``check_vectors`` is False) on windows of ``audio`` files or of
    synthesised ones."""
    ClapEmbedder._import()
    folder = work_dir / tower
    if not (folder / "config.json").is_file():
        tokenizer_dir = make_tokenizer(work_dir / "tokenizer")
        if tower == "fixture":
            make_model(folder, tokenizer_dir)
        else:
            save_tower_model(folder, tokenizer_dir, tower)
    embedder = ClapEmbedder(ModelSpec(model=str(folder), threads=threads[0]))
    towers, export = route_towers(embedder, threads, work_dir / "onnx")
    result: dict[str, Any] = {
        "model": tower,
        "rows": time_routes(embedder, towers, threads, batch, repeats),
        "export_s": export,
    }
    if check_vectors:
        windows = real_windows(work_dir / "windows", audio)
        result["vectors"] = check_route_vectors(
            embedder, towers, windows, threads[0]
        )
    return result


def print_routes(result: dict[str, Any]) -> None:
    print(
        f"\nCLAP routes, {result['model']} (random weights), "
        f"{WINDOWS} windows per track"
    )
    print(
        f"{'route':<12}{'threads':>8}{'wall s/trk':>12}{'CPU s/trk':>11}"
        f"{'x torch wall':>14}{'x torch CPU':>13}"
    )
    for row in result["rows"]:
        name = f"{row['route']} {row['precision']}"
        print(
            f"{name:<12}{row['threads']:>8}{row['wall_s_per_track']:>12.2f}"
            f"{row['cpu_s_per_track']:>11.2f}{row['speedup_wall']:>14.2f}"
            f"{row['speedup_cpu']:>13.2f}"
        )
    export = ", ".join(f"{k} {v:.1f} s" for k, v in result["export_s"].items())
    print(f"first export (once per model): {export}")
    checks = result.get("vectors")
    if checks:
        print(
            f"vectors vs torch: {checks['windows']} real windows, a store of "
            f"{checks['tracks']} tracks of {WINDOWS} windows each"
        )
        print(
            "  the torch route's windows: median cosine between two "
            f"{checks['window_pair_cosine_median']:.4f}, median distance to "
            f"the nearest other {checks['nearest_window_distance_median']:.4f}"
        )
        for key, check in checks.items():
            if isinstance(check, dict):
                print(
                    f"  {key}: window cosine min {check['window_cosine_min']:.5f}"
                    f" median {check['window_cosine_median']:.5f}, track "
                    f"cosine min {check['track_cosine_min']:.5f}; error "
                    f"{check['error_median']:.4f} "
                    f"({check['unshared_error_median']:.4f} not shared by "
                    f"all); same top-{TOP} for "
                    f"{check['same_top10']} of {check['prompts']} prompts, "
                    f"{check['top10_overlap_mean']:.1f} of {TOP} in common"
                )


def worker(args: argparse.Namespace) -> None:
    """One subprocess, one thread setting: JSON on stdout."""
    root = Path(args.root)
    result: dict[str, Any] = {"import": import_seconds()}
    if args.task == "models":
        for name in args.models:
            result[name] = measure_model(
                root / name, args.threads, args.repeats
            )
    else:
        files = sorted((root / "tracks").glob("*.flac"))
        result["e2e"] = measure_end_to_end(
            root / args.e2e_model, args.threads, files, args.seconds,
            args.repeats,
        )  # fmt: skip
    print(json.dumps(result))


def run_worker(
    root: Path, task: str, threads: int, args: argparse.Namespace
) -> Any:
    command = [
        sys.executable, __file__, "--worker", "--task", task,
        "--root", str(root), "--threads", str(threads),
        "--repeats", str(args.repeats), "--seconds", str(args.seconds),
        "--e2e-model", args.e2e_model, "--models", *args.models,
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        command, env=env, check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- reporting ----------------------------------------------------------------


def print_model_table(
    results: dict[int, dict[str, Any]], models: list[str]
) -> None:
    print(
        f"\n{'model':<12}{'threads':>8}{'load s':>8}{'mel s/clip':>12}"
        f"{'b1 s/clip':>11}{'b8 s/clip':>11}{'b1 s/trk':>10}"
        f"{'b8 s/trk':>10}{'b8 trk/min':>12}"
    )
    for name in models:
        for threads, measured in results.items():
            m = measured[name]
            print(
                f"{name:<12}{threads:>8}{m['load']:>8.2f}{m['features']:>12.3f}"
                f"{m['batch1']:>11.3f}{m['batch8']:>11.3f}"
                f"{m['batch1'] * WINDOWS:>10.2f}{m['batch8'] * WINDOWS:>10.2f}"
                f"{60 / (m['batch8'] * WINDOWS):>12.1f}"
            )
    imports = ", ".join(
        f"{r['import']:.1f} s at {threads} thread(s)"
        for threads, r in results.items()
    )
    print(
        f"(s/clip: one 10-s clip, log-mel features included; s/trk: "
        f"{WINDOWS} windows; mel: the feature extractor alone; load: "
        f"ClapEmbedder() after importing torch + transformers, which took "
        f"{imports})"
    )
    if len(results) == 2:
        one, two = results[1], results[2]
        for name in models:
            for batch in ("batch1", "batch8"):
                gain = one[name][batch] / two[name][batch]
                print(
                    f"{name} {batch.replace('batch', 'batch ')}: 2 threads "
                    f"{gain:.2f}x the speed of 1"
                )
            gain = one[name]["batch1"] / one[name]["batch8"]
            print(
                f"{name} at 1 thread: batch 8 {gain:.2f}x the speed of batch 1"
            )


def print_end_to_end(result: dict[str, float], tracks: int, label: str) -> None:
    sequential = result["decode"] + result["embed1"]
    rows = [
        ("sequential: decode all, then embed batch 1", sequential),
        ("  decoding alone (1 ffmpeg at a time)", result["decode"]),
        ("  embedding alone, batch 1", result["embed1"]),
        ("embedding alone, batch 8 (no decoding)", result["embed8"]),
        ("embed_tracks: decoders 2, batch 9", result["pipelined"]),
    ]
    print(f"\nend to end, {label}")
    print(f"{'path':<46}{'wall s':>9}{'s/track':>9}")
    for name, wall in rows:
        print(f"{name:<46}{wall:>9.2f}{wall / tracks:>9.2f}")
    hidden = result["decode"] + result["embed8"] - result["pipelined"]
    print(
        f"embed_tracks vs sequential: {sequential / result['pipelined']:.2f}x "
        f"faster; decoding hidden behind inference: {hidden:.1f} s of "
        f"{result['decode']:.1f} s (vs decode + batch-8 embedding)"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    parser.add_argument("--e2e-model", choices=MODELS, default="htsat-base")
    parser.add_argument("--e2e-threads", type=int, default=2)
    parser.add_argument(
        "--routes",
        action="store_true",
        help="only the routes: torch, onnx fp32 and onnx int8 on "
        "--e2e-model (htsat-base) at 1 and 2 threads, with the vector checks",
    )
    parser.add_argument(
        "--audio",
        type=Path,
        help="a folder of real audio files for the routes' vector checks",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 repeat, no htsat-base (end to end on htsat-tiny), "
        "4 tracks of 60 s",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--task", default="models", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument(
        "--threads", type=int, default=1, help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.quick and not args.worker:
        args.repeats = 1
        args.models = [m for m in args.models if m != "htsat-base"]
        if args.e2e_model == "htsat-base":
            args.e2e_model = "htsat-tiny"
        args.tracks, args.seconds = min(args.tracks, 4), min(args.seconds, 60)
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    if args.routes:
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="af-clap-routes-") as tmp:
            result = clap_route_rows(
                Path(tmp), args.e2e_model, repeats=args.repeats,
                audio=args.audio,
            )  # fmt: skip
        print_routes(result)
        print(
            f"\nmachine: {os.cpu_count()} cores, load {load_before:.2f} "
            f"before, {os.getloadavg()[0]:.2f} after; median of "
            f"{args.repeats}"
        )
        return
    root = Path(tempfile.mkdtemp(prefix="af-clap-throughput-"))
    load_before = os.getloadavg()[0]
    try:
        print("building random models …", flush=True)
        build_models(root)
        make_tracks(root / "tracks", args.tracks, args.seconds)
        by_threads = {}
        for threads in (1, 2):
            print(f"measuring at {threads} thread(s) …", flush=True)
            by_threads[threads] = run_worker(root, "models", threads, args)
        print("end to end …", flush=True)
        end_to_end = run_worker(root, "e2e", args.e2e_threads, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print_model_table(by_threads, args.models)
    print_end_to_end(
        end_to_end["e2e"],
        args.tracks,
        f"{args.tracks} tracks x {args.seconds:.0f} s, {WINDOWS} windows, "
        f"{args.e2e_model}, {args.e2e_threads} torch threads",
    )
    print(
        f"\nmachine: {os.cpu_count()} cores, load {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after; median of {args.repeats}"
    )


if __name__ == "__main__":
    main()
