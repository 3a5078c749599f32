"""Seconds per track of Essentia's trained-classifier routes next to the
plain ``music`` profile.

Synthesises N tracks with ffmpeg (a sine, a different pitch per track,
mixed with white noise; stereo FLAC, 44.1 kHz), writes the four
discogs-effnet heads (mood_happy, mood_sad, danceability,
genre_discogs400) and their extractor with the tests' model builder
(``tests/essentia_models.py``), then measures, all in one process with
one worker and on the same files:

* the ``music`` profile alone (``Analyzer`` with ``AnalysisJob(path)``);
* the ONNX route alone: ``descriptors=False, classify=True`` (decode at
  16 kHz, Essentia's mel front end, onnxruntime on one thread);
* ``music`` and the ONNX classifiers together;
* the TensorFlow route alone (essentia-tensorflow's own algorithms):
  run by this script in ``.venv-tf`` as a subprocess
  (``--worker tensorflow``) and skipped if that venv is missing;

and splits the ONNX route into decoding (``Classifiers.load``), the mel
front end (``OnnxRoute.mel_frames``) and the rest (patching, model
inference, averaging). Times are wall clock per track (mean over the
tracks) with the process CPU time next to them; building the
``Analyzer`` is timed apart, as a worker pays it once per run. The
first three rows take turns on each file, so a drifting load hits them
alike.

CAVEAT: the models are the tests' tiny random stand-ins. The heads have
the real shapes, but the extractor is a mean over each patch's frames
and two dense layers, not an EfficientNet, so the model-inference share
is a floor: real discogs-effnet inference costs more (it could not be
measured here: no network to essentia.upf.edu). Decoding, the front
end, patching and the heads are the real costs.

    python benchmarks/classifier_routes.py [--tracks 6] [--seconds 180]
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
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from beets_audiofeatures.essentia.classifiers import (
    Classifiers,
    OnnxRoute,
    pad_to_patch,
)
from beets_audiofeatures.essentia.extraction import (
    AnalysisJob,
    Analyzer,
    ClassifierSpec,
    import_essentia,
)
from beets_audiofeatures.essentia.heads import (
    EXTRACTORS,
    ModelFiles,
)
from beets_audiofeatures.essentia.profiles import resolve_profile

ROOT = Path(__file__).resolve().parent.parent
HEADS = (
    "mood_happy-discogs-effnet-1",
    "mood_sad-discogs-effnet-1",
    "danceability-discogs-effnet-1",
    "genre_discogs400-discogs-effnet-1",
)
TOP = 10
TF_PYTHON = ROOT / ".venv-tf" / "bin" / "python"
CAVEAT = (
    "CAVEAT: tiny random stand-in models. The extractor is a mean over\n"
    "each patch's frames and two dense layers, not an EfficientNet, so\n"
    "'inference' is a floor: real discogs-effnet inference costs more\n"
    "(not measured: no network to essentia.upf.edu). Decoding, the mel\n"
    "front end, patching and the heads are real costs."
)


def make_tracks(folder: Path, tracks: int, seconds: float) -> list[Path]:
    """``tracks`` stereo FLACs: a sine (a semitone higher each track)
    mixed with noise."""
    folder.mkdir(parents=True)
    files = []
    for n in range(tracks):
        target = folder / f"track{n:03}.flac"
        frequency = 220 * 2 ** (n / 12)
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error",
             "-f", "lavfi", "-i", f"sine=frequency={frequency:.2f}:duration={seconds}",
             "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:a=0.05",
             "-filter_complex", "amix=inputs=2", "-ac", "2", "-ar", "44100",
             str(target)],
            check=True,
        )  # fmt: skip
        files.append(target)
    return files


def timed(call: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and process-CPU seconds of ``call()``, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return time.perf_counter() - wall, time.process_time() - cpu, result


Route = tuple[Callable[[], Analyzer], Callable[[Path], AnalysisJob]]


def run_analyzers(
    routes: dict[str, Route], files: list[Path]
) -> dict[str, dict[str, Any]]:
    """Build each route's analyser (after Essentia's import), then run
    them in turn on each file, so drifting load hits all alike; the
    times, and the values of the first file."""
    import_essentia()
    results: dict[str, dict[str, Any]] = {}
    analyzers = {}
    for name, (make, _job) in routes.items():
        setup, _cpu, analyzers[name] = timed(make)
        results[name] = {"setup": setup, "wall": [], "cpu": [], "values": {}}
    for number, path in enumerate(files, start=1):
        print(f"  track {number}/{len(files)}", flush=True)
        for name, (_make, job) in routes.items():
            wall, cpu, result = timed(partial(analyzers[name], job(path)))
            results[name]["wall"].append(wall)
            results[name]["cpu"].append(cpu)
            results[name]["values"] = results[name]["values"] or result.values
    return results


def onnx_split(
    models: Path, files: list[Path]
) -> tuple[dict[str, list[float]], int]:
    """Per-track seconds of decoding, the mel front end and the rest of
    the ONNX route; and the number of patches per track (first file)."""
    es = import_essentia()
    classifiers = Classifiers(es, ModelFiles(models, HEADS), "onnx", TOP)
    route = classifiers.run
    assert isinstance(route, OnnxRoute)
    mel_seconds: list[float] = []
    plain_mel_frames = route.mel_frames

    def mel_frames(audio: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        frames = plain_mel_frames(audio)
        mel_seconds.append(time.perf_counter() - start)
        return frames

    route.mel_frames = mel_frames  # type: ignore[method-assign]
    size, hop = EXTRACTORS["discogs-effnet-bs64-1"].patch
    split: dict[str, list[float]] = {"decode": [], "mel": [], "rest": []}
    patches = 0
    for path in files:
        decode, _cpu, audio = timed(partial(classifiers.load, str(path)))
        mel_seconds.clear()
        total, _cpu, _values = timed(partial(classifiers, audio))
        split["decode"].append(decode)
        split["mel"].append(sum(mel_seconds))
        split["rest"].append(total - sum(mel_seconds))
        if not patches:
            frames = len(pad_to_patch(audio, size)) // 256
            patches = len(range(0, frames - size + 1, hop))
    return split, patches


def tensorflow_worker(models: Path, workdir: Path, files: list[Path]) -> None:
    """The TensorFlow route alone, and its decode/model split; JSON on
    the last line of stdout."""
    spec = ClassifierSpec(ModelFiles(models, HEADS), "tensorflow", TOP)
    job = partial(AnalysisJob, descriptors=False, classify=True)
    (result,) = run_analyzers(
        {
            "tensorflow": (
                lambda: Analyzer(resolve_profile("rhythm"), str(workdir), spec),
                lambda path: job(os.fsencode(path)),
            )
        },
        files,
    ).values()
    classifiers = Classifiers(
        import_essentia(), ModelFiles(models, HEADS), "tensorflow", TOP
    )
    decode, model = [], []
    for path in files:
        seconds, _cpu, audio = timed(partial(classifiers.load, str(path)))
        decode.append(seconds)
        seconds, _cpu, _values = timed(partial(classifiers, audio))
        model.append(seconds)
    result["split"] = {"decode": decode, "model": model}
    print(json.dumps(result, default=float))


def tensorflow_row(
    models: Path, workdir: Path, files: list[Path]
) -> dict[str, Any] | str:
    """The worker's results, or why there are none."""
    if not TF_PYTHON.exists():
        return f"skipped: {TF_PYTHON.parent.parent} does not exist"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [str(TF_PYTHON), __file__, "--worker", "tensorflow",
         "--models", str(models), "--workdir", str(workdir),
         *map(str, files)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"failed (exit {proc.returncode}): {tail}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def largest_difference(
    a: dict[str, Any], b: dict[str, Any]
) -> tuple[float, int]:
    """The largest gap between the probabilities both routes report,
    and how many there are."""
    shared = [k for k in a.keys() & b.keys() if isinstance(a[k], int | float)]
    gaps = [abs(a[k] - b[k]) for k in shared]
    return max(gaps, default=float("nan")), len(gaps)


def mean(values: list[float]) -> float:
    return statistics.fmean(values)


def print_table(rows: dict[str, dict[str, Any] | str]) -> None:
    print(
        f"\n{'route (1 process, 1 worker)':<34}{'s/track':>9}{'cpu s':>8}"
        f"{'min':>7}{'max':>7}{'setup s':>9}{'vs music':>10}"
    )
    baseline = rows["music profile"]
    assert isinstance(baseline, dict)
    music = mean(baseline["wall"])
    for label, row in rows.items():
        if isinstance(row, str):
            print(f"{label:<34}{row}")
            continue
        wall = mean(row["wall"])
        print(
            f"{label:<34}{wall:>9.2f}{mean(row['cpu']):>8.2f}"
            f"{min(row['wall']):>7.2f}{max(row['wall']):>7.2f}"
            f"{row['setup']:>9.2f}{wall / music:>9.2f}x"
        )
    print(
        "(s/track: mean wall clock; cpu s: process CPU time, all threads; "
        "setup: building the Analyzer after Essentia's import, once per "
        "worker)"
    )


def print_split(title: str, split: dict[str, list[float]]) -> None:
    total = sum(mean(v) for v in split.values())
    print(f"\n{title}")
    for part, seconds in split.items():
        print(
            f"  {part:<44}{mean(seconds):>7.3f} s{mean(seconds) / total:>7.1%}"
        )
    print(f"  {'total':<44}{total:>7.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument(
        "--worker", choices=["tensorflow"], help=argparse.SUPPRESS
    )
    parser.add_argument("--models", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tensorflow_worker(args.models, args.workdir, args.files)
        return

    from tests.essentia_models import write_models

    root = Path(tempfile.mkdtemp(prefix="af-classifier-routes-"))
    load_before = os.getloadavg()[0]
    try:
        print(
            f"generating {args.tracks} tracks of {args.seconds:.0f} s …",
            flush=True,
        )
        files = make_tracks(root / "tracks", args.tracks, args.seconds)
        models = write_models(root / "models", list(HEADS))
        workdir = root / "work"
        music = resolve_profile("music")
        rhythm = resolve_profile("rhythm")
        onnx = ClassifierSpec(ModelFiles(models, HEADS), "onnx", TOP)

        def job(descriptors: bool, classify: bool) -> Callable[[Path], Any]:
            return lambda path: AnalysisJob(
                os.fsencode(path), descriptors=descriptors, classify=classify
            )

        print("music, ONNX, music + ONNX, interleaved per track:", flush=True)
        rows: dict[str, dict[str, Any] | str] = {}
        rows |= run_analyzers(
            {
                "music profile": (
                    lambda: Analyzer(music, str(workdir)),
                    job(True, False),
                ),
                "ONNX classifiers alone": (
                    lambda: Analyzer(rhythm, str(workdir), onnx),
                    job(False, True),
                ),
                "music + ONNX classifiers": (
                    lambda: Analyzer(music, str(workdir), onnx),
                    job(True, True),
                ),
            },
            files,
        )
        print("TensorFlow route (.venv-tf) …", flush=True)
        rows["TensorFlow classifiers alone"] = tensorflow_row(
            models, workdir, files
        )
        print("ONNX split …", flush=True)
        split, patches = onnx_split(models, files)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(
        f"\n{args.tracks} tracks of {args.seconds:.0f} s; heads: "
        f"{', '.join(h.split('-')[0] for h in HEADS)} (top {TOP} genres); "
        f"{patches} patches of 128 mel frames per track"
    )
    print_table(rows)
    combined = rows["music + ONNX classifiers"]
    alone = rows["music profile"]
    assert isinstance(combined, dict)
    assert isinstance(alone, dict)
    added = mean(combined["wall"]) - mean(alone["wall"])
    print(
        f"\nadding the ONNX classifiers to the music profile: "
        f"+{added:.2f} s/track ({added / mean(alone['wall']):+.0%})"
    )
    print_split(
        "ONNX route split, s/track (mean) and share:",
        {
            "decode (MonoLoader, 16 kHz)": split["decode"],
            "mel front end (TensorflowInputMusiCNN)": split["mel"],
            "patching + inference + averaging": split["rest"],
        },
    )
    tensorflow = rows["TensorFlow classifiers alone"]
    if isinstance(tensorflow, dict):
        print_split(
            "TensorFlow route split, s/track (mean) and share:",
            {
                "decode (MonoLoader, 16 kHz)": tensorflow["split"]["decode"],
                "front end + inference (essentia-tensorflow)": tensorflow[
                    "split"
                ]["model"],
            },
        )
        onnx_values = rows["ONNX classifiers alone"]
        assert isinstance(onnx_values, dict)
        gap, compared = largest_difference(
            onnx_values["values"], tensorflow["values"]
        )
        print(
            f"\nONNX vs TensorFlow, first track: largest difference "
            f"{gap:.4f} over {compared} probabilities"
        )
    print(f"\n{CAVEAT}")
    print(
        f"\nmachine: {os.cpu_count()} cores, load {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )


if __name__ == "__main__":
    main()
