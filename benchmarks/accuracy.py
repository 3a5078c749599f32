"""Key and tempo accuracy of every candidate method, side by side, on the
rendered score corpus (``benchmarks/corpus``: exact symbolic truth).

Each track is decoded once; every method runs on the same audio and its
CPU time is measured. Methods:

* ``music:<profile>`` — Essentia's MusicExtractor (what the ``music``
  profile runs) and its ``tonal.key_<profile>`` keys; ``music:bpm`` its
  tempo;
* ``keyex:<profile>`` — the standalone ``KeyExtractor`` with each key
  profile, its default HPCP settings;
* ``music-hpcp:<profile>`` — ``Key`` on the mean of the 36-bin HPCP
  frames MusicExtractor already computed (no extra decoding);
* ``vote`` — the most common key of a few strong methods;
* ``plugin:music`` and ``plugin:tonal`` — what the plugin stores with
  the ``music`` and light ``tonal`` profiles, by its own code
  (``key_estimation``), with the default key profile;
* tempo: ``RhythmExtractor2013`` (multifeature, degara),
  ``PercivalBpmEstimator``, librosa's ``beat_track`` as beets' own
  ``autobpm`` calls it, and an octave rule on top of the best.

Printed: MIREX weighted key score, exact key accuracy, tempo Acc1 / Acc2
and CPU seconds per track; then, for the shipped key method, the score
on tracks left with a key when keys below a strength are dropped.

    python benchmarks/accuracy.py [--jobs 2] [--limit N] [--results FILE]
        [--plugin-only EARLIER]

Results per track are kept in ``--results`` (JSON), so a rerun only
analyses new tracks and ``--score`` re-scores without analysing.
``--plugin-only`` reruns only the plugin's own methods (a few minutes),
taking the bare methods' results from an earlier results file.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from beets_audiofeatures.essentia import key_estimation  # noqa: E402
from beets_audiofeatures.essentia.profiles import resolve_profile  # noqa: E402
from beets_audiofeatures.essentia.stored import StoredPipeline  # noqa: E402
from beets_audiofeatures.essentia.tuning import estimate_tuning  # noqa: E402

CORPUS = HERE / "corpus"
KEY_PROFILES = (
    "edma", "edmm", "bgate", "krumhansl", "temperley", "shaath", "noland",
    "braw", "diatonic", "tonictriad", "thpcp", "gomez",
)  # fmt: skip
MUSIC_KEYS = ("edma", "krumhansl", "temperley")
HPCP_KEYS = ("edma", "bgate", "temperley", "shaath")
VOTERS = ("keyex:edma", "keyex:bgate", "keyex:shaath", "keyex:temperley")
#: KeyExtractor with other HPCP settings (36 bins as MusicExtractor's
#: tonal frames, a longer frame, another weighting).
KEYEX_OPTIONS: dict[str, dict[str, int | str]] = {
    "hpcp36": {"hpcpSize": 36},
    "frame8192": {"frameSize": 8192, "hopSize": 4096},
    "squared": {"weightType": "squaredCosine"},
}
KEYEX_VARIANTS = {
    f"keyex-{label}:{profile}": {"profileType": profile, **options}
    for profile in ("edma", "bgate", "temperley")
    for label, options in KEYEX_OPTIONS.items()
}
#: What the plugin shipped before this benchmark.
OLD_KEY = "music:edma"
NAMES = {
    "C": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "F": 5,
    "F#": 6, "Gb": 6, "G": 7, "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10,
    "B": 11,
}  # fmt: skip


# -- scoring ------------------------------------------------------------------


def parse_key(text: str) -> tuple[int, str] | None:
    """``"F# minor"`` → (6, "minor")."""
    parts = text.split()
    if len(parts) != 2 or parts[0] not in NAMES:
        return None
    return NAMES[parts[0]], parts[1]


def mirex(truth: str, estimate: str | None) -> float:
    """MIREX weighted key score: 1 same key, 0.5 a fifth above, 0.3 the
    relative key, 0.2 the parallel key, else 0."""
    ref, est = parse_key(truth), parse_key(estimate or "")
    if ref is None or est is None:
        return 0.0
    (rt, rm), (et, em) = ref, est
    if (rt, rm) == (et, em):
        return 1.0
    if rm == em and (et - rt) % 12 == 7:
        return 0.5
    if rm == "major" and em == "minor" and (et - rt) % 12 == 9:
        return 0.3
    if rm == "minor" and em == "major" and (et - rt) % 12 == 3:
        return 0.3
    if rm != em and rt == et:
        return 0.2
    return 0.0


def tempo_hits(truth: float, estimate: float | None) -> tuple[bool, bool]:
    """Acc1 (within 4 %) and Acc2 (also at 2, 3, 1/2 or 1/3 times)."""
    if not estimate:
        return False, False
    close = [abs(estimate - truth * f) <= 0.04 * truth * f
             for f in (1, 2, 3, 1 / 2, 1 / 3)]  # fmt: skip
    return close[0], any(close)


def octave_rule(bpm: float | None) -> float | None:
    """Fold a tempo into 70–190 BPM, the range most music is felt in."""
    if not bpm:
        return bpm
    while bpm < 70:
        bpm *= 2
    while bpm >= 190:
        bpm /= 2
    return bpm


# -- analysis (one worker process per core) -----------------------------------

_es: Any = None


def _essentia() -> Any:
    global _es
    if _es is None:
        import essentia

        essentia.log.infoActive = False
        essentia.log.warningActive = False
        import essentia.standard

        _es = essentia.standard
    return _es


T = TypeVar("T")


def _timed(results: dict[str, Any], name: str, run: Callable[[], T]) -> T:
    start = time.process_time()
    value = run()
    results.setdefault("cpu", {})[name] = time.process_time() - start
    return value


def analyse(path: str, earlier: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every method on one file: ``{"key": {...}, "strength": {...},
    "tempo": {...}, "cpu": {...}}``; with the results of an ``earlier``
    run, only the plugin's own methods, the rest taken from those."""
    es = _essentia()
    out: dict[str, Any] = {"key": {}, "strength": {}, "tempo": {}}
    audio = _timed(
        out, "decode", lambda: es.MonoLoader(filename=path, sampleRate=44100)()
    )

    def music() -> tuple[Any, Any]:
        pool, frames = es.MusicExtractor()(path)
        return pool, frames

    pool, frames = _timed(out, "music", music)
    for profile in MUSIC_KEYS:
        prefix = f"tonal.key_{profile}"
        out["key"][f"music:{profile}"] = (
            f"{pool[prefix + '.key']} {pool[prefix + '.scale']}"
        )
        out["strength"][f"music:{profile}"] = float(pool[prefix + ".strength"])
    out["tempo"]["music:bpm"] = float(pool["rhythm.bpm"])
    _plugin(es, out, path, audio, pool, frames)
    if earlier is not None:
        return _with_earlier(earlier, out)

    hpcp = frames["tonal.hpcp"].mean(axis=0)

    def hpcp_key(profile: str) -> Any:
        return es.Key(
            profileType=profile, pcpSize=36, numHarmonics=4, slope=0.6,
            usePolyphony=True, useThreeChords=True,
        )(hpcp.astype("float32"))  # fmt: skip

    def key_extractor(**options: int | str) -> Any:
        return es.KeyExtractor(**options)(audio)

    def rhythm2013(method: str) -> Any:
        return es.RhythmExtractor2013(method=method)(audio)[0]

    for profile in HPCP_KEYS:
        key, scale, strength, _ = _timed(
            out, f"music-hpcp:{profile}", partial(hpcp_key, profile)
        )
        out["key"][f"music-hpcp:{profile}"] = f"{key} {scale}"
        out["strength"][f"music-hpcp:{profile}"] = float(strength)

    for profile in KEY_PROFILES:
        key, scale, strength = _timed(
            out, f"keyex:{profile}", partial(key_extractor, profileType=profile)
        )
        out["key"][f"keyex:{profile}"] = f"{key} {scale}"
        out["strength"][f"keyex:{profile}"] = float(strength)

    for name, options in KEYEX_VARIANTS.items():
        key, scale, strength = _timed(
            out, name, partial(key_extractor, **options)
        )
        out["key"][name] = f"{key} {scale}"
        out["strength"][name] = float(strength)

    for method in ("multifeature", "degara"):
        bpm = _timed(out, f"rhythm2013:{method}", partial(rhythm2013, method))
        out["tempo"][f"rhythm2013:{method}"] = float(bpm)
    out["tempo"]["percival"] = float(
        _timed(out, "percival", lambda: es.PercivalBpmEstimator()(audio))
    )
    out["tempo"]["librosa"] = _librosa_tempo(out, path)
    return out


def _plugin(
    es: Any, out: dict[str, Any], path: str, audio: Any, pool: Any, frames: Any
) -> None:
    """The plugin's own methods (``plugin:*``), by its own code, and the
    stored profile on the detuned copy."""
    tuning = _timed(out, "tuning", partial(estimate_tuning, audio))
    tonal = _timed(
        out, "plugin:tonal",
        lambda: key_estimation.key_extractor(
            es, audio, key_estimation.DEFAULT_PROFILE, tuning
        ),
    )  # fmt: skip
    out["cpu"]["plugin:tonal"] += out["cpu"]["tuning"]
    raw_tuning = float(pool["tonal.tuning_frequency"])
    music_key = key_estimation.most_confident(
        key_estimation.key_extractor(
            es, audio, key_estimation.DEFAULT_PROFILE, tuning
        ),
        key_estimation.hpcp_key(
            es, frames["tonal.hpcp"],
            key_estimation.semitones_off(raw_tuning, tuning),
        ),
    )  # fmt: skip
    out["tuning"] = {"music": raw_tuning, "plugin": tuning}
    for name, found in (("plugin:tonal", tonal), ("plugin:music", music_key)):
        out["key"][name] = f"{found.key} {found.scale}"
        out["strength"][name] = found.strength
    out["cpu"]["plugin:music"] = (
        out["cpu"]["music"] + out["cpu"]["decode"] + out["cpu"]["plugin:tonal"]
    )

    stored = _timed(out, "plugin:stored", partial(_stored, path))
    out["key"]["plugin:stored"] = stored["key"]
    out["strength"]["plugin:stored"] = stored["strength"]
    out["tempo"]["plugin:stored"] = stored["bpm"]
    out["tuning"]["stored"] = stored["tuning"]
    out["detuned"] = _detuned(es, path)


def _with_earlier(
    earlier: dict[str, Any], fresh: dict[str, Any]
) -> dict[str, Any]:
    """An earlier run's results with the plugin's methods rerun: the bare
    methods do not change with the plugin's code."""
    merged = {name: dict(earlier.get(name, {})) for name in fresh}
    for name, values in fresh.items():
        if isinstance(values, dict) and name not in ("detuned", "tuning"):
            merged[name].update(values)
        else:
            merged[name] = values
    return merged


def _stored(path: str) -> dict[str, Any]:
    """What the default ``stored`` profile stores (its decode included)."""
    import essentia.standard as es

    with tempfile.TemporaryDirectory() as tmp:
        values = StoredPipeline(
            resolve_profile("stored"), es, Path(tmp)
        ).extract(path, ("rhythm", "tonal"), None)
    return {
        "key": f"{values['tonal.key.key']} {values['tonal.key.scale']}",
        "strength": float(values["tonal.key.strength"]),
        "bpm": float(values["rhythm.bpm"]),
        "tuning": float(values["tonal.tuning_frequency"]),
    }


def detuning(track: str) -> tuple[int, str]:
    """Each track's detuned copy: 10 to 50 cents up or down, as another
    playback speed (pitch and tempo together) or pitch alone; fixed by
    the track's name, so every run detunes alike."""
    seed = zlib.crc32(track.encode())
    cents = (10 + seed % 41) * (1 if seed >> 8 & 1 else -1)
    return cents, "speed" if seed >> 9 & 1 else "pitch"


def _detuned(es: Any, path: str) -> dict[str, Any]:
    """The stored key, and bare KeyExtractor's, on the detuned copy."""
    cents, kind = detuning(Path(path).stem)
    with tempfile.TemporaryDirectory() as tmp:
        copy = str(Path(tmp) / "detuned.wav")
        effect = (
            ["speed", f"{cents}c"] if kind == "speed" else ["pitch", str(cents)]
        )
        subprocess.run(["sox", path, copy, *effect], check=True)
        stored = _stored(copy)
        audio = es.MonoLoader(filename=copy, sampleRate=44100)()
    key, scale, _ = es.KeyExtractor(
        profileType=key_estimation.DEFAULT_PROFILE, **key_estimation.FRAME
    )(audio)
    return {
        "cents": cents,
        "kind": kind,
        "tuning": stored["tuning"],
        "key": {
            "plugin:stored": stored["key"],
            "keyex-440:bgate": f"{key} {scale}",
        },
    }


def _librosa_tempo(out: dict[str, Any], path: str) -> float:
    """As beets' ``autobpm`` plugin computes it (its decode included)."""
    import librosa
    import numpy as np

    def run() -> float:
        y, sr = librosa.load(path, res_type="kaiser_fast")
        tempo, _ = librosa.beat.beat_track(y=y, sr=sr)
        return float(np.atleast_1d(tempo)[0])

    return _timed(out, "librosa", run)


def _worker(
    job: tuple[dict[str, str], dict[str, Any] | None],
) -> tuple[str, dict[str, Any] | str]:
    row, earlier = job
    try:
        return row["track"], analyse(
            str(CORPUS / "audio" / f"{row['track']}.flac"), earlier
        )
    except Exception as exc:  # one bad track never stops the run
        return row["track"], f"{type(exc).__name__}: {exc}"


# -- the table ----------------------------------------------------------------


def key_table(
    rows: list[dict[str, str]], results: dict[str, Any]
) -> list[tuple[str, float, float, int, float]]:
    """(method, MIREX, exact, tracks, CPU s) for every key method."""
    with_key = [r for r in rows if r["key"] and r["track"] in results]
    methods = sorted({m for r in with_key for m in results[r["track"]]["key"]})
    table = []
    for method in [*methods, "vote"]:
        scores = [mirex(r["key"], estimate(results[r["track"]], method))
                  for r in with_key]  # fmt: skip
        table.append((
            method,
            100 * sum(scores) / len(scores),
            100 * sum(s == 1 for s in scores) / len(scores),
            len(scores),
            cpu(results, with_key, method),
        ))  # fmt: skip
    return sorted(table, key=lambda t: -t[1])


def estimate(result: dict[str, Any], method: str) -> str | None:
    keys: dict[str, str] = result["key"]  # "C major" by method
    if method == "vote":
        votes = Counter(keys[m] for m in VOTERS)
        best, count = votes.most_common(1)[0]
        return best if count > 1 else keys[VOTERS[0]]
    return keys.get(method)


def cpu(
    results: dict[str, Any], rows: Iterable[dict[str, str]], method: str
) -> float:
    """Mean CPU seconds per track of a method (MusicExtractor's keys and
    tempo come with the whole extractor)."""
    name = "music" if method.startswith("music:") else method
    if method.startswith("music-hpcp:"):
        name = "music"  # the HPCP comes with the whole extractor
    if method == "vote":
        return sum(cpu(results, rows, m) for m in VOTERS)
    if method.startswith("octave:"):
        name = method.removeprefix("octave:")
    times: list[float] = [
        results[r["track"]]["cpu"].get(name, 0.0) for r in rows
    ]
    return sum(times) / max(len(times), 1)


def tempo_table(
    rows: list[dict[str, str]], results: dict[str, Any]
) -> list[tuple[str, float, float, int, float]]:
    with_tempo = [r for r in rows if r["tempo"] and r["track"] in results]
    methods = sorted(
        {m for r in with_tempo for m in results[r["track"]]["tempo"]}
    )
    table = []
    for method in [*methods, *(f"octave:{m}" for m in methods)]:
        hits = []
        for r in with_tempo:
            found = results[r["track"]]["tempo"]
            bpm = (
                octave_rule(found[method.removeprefix("octave:")])
                if method.startswith("octave:")
                else found[method]
            )
            hits.append(tempo_hits(float(r["tempo"]), bpm))
        table.append((
            method,
            100 * sum(a for a, _ in hits) / len(hits),
            100 * sum(b for _, b in hits) / len(hits),
            len(hits),
            cpu(results, with_tempo, method.replace("music:bpm", "music")),
        ))  # fmt: skip
    return sorted(table, key=lambda t: (-t[1], -t[2]))


def threshold_table(
    rows: list[dict[str, str]], results: dict[str, Any], method: str
) -> list[tuple[float, float, int]]:
    """MIREX on the tracks whose strength reaches each threshold."""
    with_key = [r for r in rows if r["key"] and r["track"] in results]
    table = []
    for threshold in (0.0, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8):
        kept = [
            r for r in with_key
            if results[r["track"]]["strength"][method] >= threshold
        ]  # fmt: skip
        scores = [mirex(r["key"], estimate(results[r["track"]], method))
                  for r in kept]  # fmt: skip
        table.append((
            threshold,
            100 * sum(scores) / max(len(scores), 1),
            len(kept),
        ))  # fmt: skip
    return table


def by_style(
    rows: list[dict[str, str]], results: dict[str, Any], methods: list[str]
) -> list[str]:
    lines = []
    for style in sorted({r["style"] for r in rows}):
        mine = [r for r in rows if r["style"] == style and r["key"]
                and r["track"] in results]  # fmt: skip
        if not mine:
            continue
        parts = []
        for method in methods:
            scores = [mirex(r["key"], estimate(results[r["track"]], method))
                      for r in mine]  # fmt: skip
            parts.append(f"{method} {100 * sum(scores) / len(scores):.1f}")
        lines.append(f"  {style} ({len(mine)}): " + ", ".join(parts))
    return lines


def detuned_lines(
    rows: list[dict[str, str]], results: dict[str, Any]
) -> list[str]:
    """MIREX in tune and detuned, on the tracks with key truth."""
    with_key = [
        r for r in rows if r["key"] and "detuned" in results[r["track"]]
    ]
    lines = [f"\nDetuned copies ({len(with_key)} tracks, 10-50 cents)"]
    in_tune = {
        "plugin:stored": "plugin:stored",
        "keyex-440:bgate": "keyex:bgate",
    }
    for method, tuned_method in in_tune.items():
        for kind in ("speed", "pitch", None):
            mine = [
                r for r in with_key
                if kind in (None, results[r["track"]]["detuned"]["kind"])
            ]  # fmt: skip
            if not mine:
                continue
            tune = [
                mirex(r["key"], estimate(results[r["track"]], tuned_method))
                for r in mine
            ]
            off = [
                mirex(r["key"], results[r["track"]]["detuned"]["key"][method])
                for r in mine
            ]
            lines.append(
                f"  {method:16} {kind or 'all':6} ({len(mine)}): in tune "
                f"{100 * sum(tune) / len(mine):5.1f}, detuned "
                f"{100 * sum(off) / len(mine):5.1f}"
            )
    return lines


BANDS = ((10, 20), (20, 30), (30, 40), (40, 45), (45, 51))


def band_lines(
    rows: list[dict[str, str]], results: dict[str, Any]
) -> list[str]:
    """The stored key in tune and detuned, by how far the copy is off."""
    lines = ["  plugin:stored by cents off (in tune -> detuned):"]
    for low, high in BANDS:
        mine = [
            r for r in rows
            if r["key"] and "detuned" in results[r["track"]]
            and low <= abs(results[r["track"]]["detuned"]["cents"]) < high
        ]  # fmt: skip
        if not mine:
            continue
        tune = sum(mirex(r["key"], results[r["track"]]["key"]["plugin:stored"])
                   for r in mine)  # fmt: skip
        off = sum(
            mirex(
                r["key"], results[r["track"]]["detuned"]["key"]["plugin:stored"]
            )
            for r in mine
        )
        lines.append(
            f"    {low}-{min(high, 50)} ({len(mine)}): "
            f"{100 * tune / len(mine):5.1f} -> {100 * off / len(mine):5.1f}"
        )
    return lines + _unambiguous_line(rows, results)


def cents(hz: float) -> float:
    """A tuning frequency as cents off 440 Hz."""
    return 1200 * math.log2(hz / key_estimation.REFERENCE)


#: A copy this near the quarter tone, its track's own tuning added, is
#: as near one semitone's grid as the other's: no key is the right one.
QUARTER_TONE_MARGIN = 2


def _unambiguous_line(
    rows: list[dict[str, str]], results: dict[str, Any]
) -> list[str]:
    """The stored key in tune and detuned on the copies whose whole
    offset from 440 Hz (the track's own tuning plus the detuning) is
    clear of the quarter tone by ``QUARTER_TONE_MARGIN`` cents."""
    limit = 50 - QUARTER_TONE_MARGIN
    mine = [
        results[r["track"]] | {"truth": r["key"]} for r in rows
        if r["key"] and "tuning" in results[r["track"]].get("detuned", {})
        and abs(cents(results[r["track"]]["tuning"]["stored"])
                + results[r["track"]]["detuned"]["cents"]) < limit
    ]  # fmt: skip
    if not mine:
        return []
    tune = sum(mirex(r["truth"], r["key"]["plugin:stored"]) for r in mine)
    off = sum(
        mirex(r["truth"], r["detuned"]["key"]["plugin:stored"]) for r in mine
    )
    line = (
        f"    offset under {limit} cents ({len(mine)}): "
        f"{100 * tune / len(mine):5.1f} -> {100 * off / len(mine):5.1f}"
    )
    return [line]


def tuning_lines(
    rows: list[dict[str, str]], results: dict[str, Any]
) -> list[str]:
    """The stored profile's tuning estimate against the known detuning
    (cents): the in-tune tracks' own (truth 0, as far as the soundfont's
    samples are in tune), the copies', and the copy's estimate less the
    track's, which leaves only the estimator's error."""
    mine = [
        results[r["track"]] for r in rows
        if r["key"] and "tuning" in results[r["track"]].get("detuned", {})
    ]  # fmt: skip
    if not mine:
        return []

    def fold(c: float) -> float:
        return (c + 50) % 100 - 50

    tune = [cents(r["tuning"]["stored"]) for r in mine]
    copy = [
        fold(cents(r["detuned"]["tuning"]) - r["detuned"]["cents"])
        for r in mine
    ]
    relative = [fold(c - t) for c, t in zip(copy, tune, strict=True)]
    crossed = sum(
        abs(cents(r["detuned"]["tuning"]) - r["detuned"]["cents"]) > 50
        for r in mine
    )
    lines = [f"  tuning estimate error, cents ({len(mine)} tracks):"]
    for name, errors in (
        ("in tune", tune), ("detuned", copy), ("detuned - in tune", relative)
    ):  # fmt: skip
        mean = sum(errors) / len(errors)
        spread = math.sqrt(sum((e - mean) ** 2 for e in errors) / len(errors))
        over = 100 * sum(abs(e) > 5 for e in errors) / len(errors)
        lines.append(
            f"    {name:18} mean {mean:+5.1f} sd {spread:4.1f} "
            f"|error| > 5: {over:4.1f} %"
        )
    lines.append(f"    detuned copies read across the fold: {crossed}")
    return lines


def relative_lines(
    rows: list[dict[str, str]], results: dict[str, Any], methods: list[str]
) -> list[str]:
    lines = []
    for style in sorted({r["style"] for r in rows}):
        mine = [r for r in rows if r["style"] == style and r["key"]]
        if not mine:
            continue
        parts = []
        for method in methods:
            relative = sum(
                mirex(r["key"], estimate(results[r["track"]], method)) == 0.3
                for r in mine
            )
            parts.append(f"{method} {100 * relative / len(mine):.1f} %")
        lines.append(f"  {style} ({len(mine)}): " + ", ".join(parts))
    return lines


def report(rows: list[dict[str, str]], results: dict[str, Any]) -> None:
    keys = key_table(rows, results)
    print(f"\nKey ({keys[0][3]} tracks with key truth)")
    print(f"{'method':24} {'MIREX':>6} {'exact':>6} {'CPU s':>6}")
    for method, score, exact, _n, seconds in keys:
        print(f"{method:24} {score:6.1f} {exact:6.1f} {seconds:6.2f}")
    tempos = tempo_table(rows, results)
    print(f"\nTempo ({tempos[0][3]} tracks with tempo truth)")
    print(f"{'method':24} {'Acc1':>6} {'Acc2':>6} {'CPU s':>6}")
    for method, acc1, acc2, _n, seconds in tempos:
        print(f"{method:24} {acc1:6.1f} {acc2:6.1f} {seconds:6.2f}")
    shipped = ["plugin:stored", "plugin:music", "plugin:tonal"]
    best = next(m for m, *_ in keys if m not in ("vote", *shipped))
    print("\nBy style (MIREX): before, the best other method, and shipped")
    print("\n".join(by_style(rows, results, [OLD_KEY, best, *shipped])))
    for method in shipped:
        print(f"\n{method}: keys kept when the strength is at least")
        for threshold, score, kept in threshold_table(rows, results, method):
            mark = (
                "  (default min_key_strength)"
                if threshold == key_estimation.DEFAULT_MIN_STRENGTH
                else ""
            )
            print(
                f"  {threshold:4.2f}: MIREX {score:5.1f} on {kept} tracks{mark}"
            )
    print("\n".join(detuned_lines(rows, results)))
    print("\n".join(band_lines(rows, results)))
    print("\n".join(tuning_lines(rows, results)))
    print(
        "\nRelative-key confusions (share of tracks read as the relative key)"
    )
    print("\n".join(relative_lines(rows, results, [best, *shipped])))
    decode = cpu(results, rows, "decode")
    print(f"\ndecode (MonoLoader, shared by the bare methods): {decode:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument(
        "--results", type=Path, default=CORPUS / "audio" / "results.json"
    )
    parser.add_argument("--score", action="store_true", help="no analysis")
    parser.add_argument(
        "--plugin-only", type=Path, metavar="EARLIER",
        help="rerun only the plugin's methods (and the detuned copies), "
        "the bare methods' results taken from an earlier --results file",
    )  # fmt: skip
    opts = parser.parse_args()
    earlier: dict[str, Any] = (
        json.loads(opts.plugin_only.read_text()) if opts.plugin_only else {}
    )
    with open(CORPUS / "manifest.csv", newline="") as handle:
        rows = [
            r for r in csv.DictReader(handle)
            if (CORPUS / "audio" / f"{r['track']}.flac").exists()
        ]  # fmt: skip
    if opts.limit:
        rows = rows[: opts.limit]
    if not rows:
        sys.exit("no rendered tracks: run benchmarks/corpus/build.py render")
    results: dict[str, Any] = {}
    if opts.results.exists():
        results = json.loads(opts.results.read_text())
    todo = [
        (r, earlier.get(r["track"]) if opts.plugin_only else None)
        for r in rows
        if r["track"] not in results
        and (not opts.plugin_only or r["track"] in earlier)
    ]
    if todo and not opts.score:
        start = time.perf_counter()
        with multiprocessing.Pool(opts.jobs) as pool:
            for n, (track, result) in enumerate(
                pool.imap_unordered(_worker, todo), 1
            ):
                if isinstance(result, str):
                    print(f"{track}: {result}", file=sys.stderr)
                    continue
                results[track] = result
                if n % 10 == 0 or n == len(todo):
                    opts.results.write_text(json.dumps(results))
                    print(f"  {n}/{len(todo)} analysed", file=sys.stderr)
        print(
            f"analysed {len(todo)} tracks in "
            f"{time.perf_counter() - start:.0f} s", file=sys.stderr,
        )  # fmt: skip
    report([r for r in rows if r["track"] in results], results)


if __name__ == "__main__":
    main()
