"""The matrix (issue 24): every healthy file of ``tests/matrix_audio.py``'s
covering design gets right values from ``beet essentia`` (the default and
a light profile), a vector from ``beet clap`` and tags from ``beet clap
--tags``; a subset gets the same values and vectors through ``--cluster
local:2``; damaged files fail alone, each named with its reason, in runs
that store every healthy file.

The real ``beet`` runs on real on-disk libraries; each command runs once
per module and the tests read what it stored and said.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pytest
from beets.library import Item, Library

from beets_audiofeatures.clap.embedder import ClapEmbedder
from beets_audiofeatures.clap.model import ModelSpec
from beets_audiofeatures.clap.store import stores
from beetsplug.audiofeatures.library_query import source_keys
from beetsplug.audiofeatures.settings.clap import library_cache
from tests import synth
from tests.conftest import ClapAssets
from tests.matrix_audio import (
    DAMAGED,
    DESIGN,
    Damaged,
    Matrix,
    Row,
    uncovered_pairs,
)

pytestmark = pytest.mark.slow

#: Essentia's full extractor takes ~2 s a 45-s file and ~12 s a
#: four-minute one: the default profile, here and on the cluster, hears
#: the short rows (every format, rate and layout); the light profile all.
SHORT_ROWS = [row for row in DESIGN if row.seconds <= 14.5]
DEFAULT_PROFILE_ROWS = SHORT_ROWS
CLUSTER_ROWS = SHORT_ROWS
#: Files Essentia's full extractor never finishes: they get a run (and a
#: test) of their own, with a time limit.
SPINS = ("wavpack-garbled",)
#: Five seconds hold the first two chords of the 90-bpm tune (C, F): a
#: key is only asked of longer files, as the other tests do.
KEY_FROM = 14.5
MOODS = ("happy", "sad", "relaxed")
#: A command on a machine shared by other test runs may take long; one
#: that hangs must not hold the suite for ever.
COMMAND_TIMEOUT = 1200

#: Wrong results of today's code, by test and file: a fix turns the test
#: into an XPASS, which fails until its mark goes.
KNOWN: dict[tuple[str, str], str] = {}


def known(reason: str) -> pytest.MarkDecorator:
    """A wrong result of today's code: the test must fail on an
    assertion (a run that breaks in setup is an error, never an xfail)."""
    return pytest.mark.xfail(raises=AssertionError, strict=True, reason=reason)


def cases(test: str, files: Iterable[Row | Damaged]) -> list[object]:
    """``files`` as parameters named by file, each marked where ``KNOWN``
    says today's code gets it wrong."""
    return [
        pytest.param(
            file,
            id=file.name,
            marks=[known(KNOWN[test, file.name])]
            if (test, file.name) in KNOWN
            else [],
        )
        for file in files
    ]


@dataclass(frozen=True)
class Run:
    """What one ``beet`` command did."""

    status: int
    stderr: str

    def reasons(self, paths: dict[str, Path]) -> dict[str, str]:
        """The reason given for each file the run named as failed, by
        file name."""
        found = {}
        for name, path in paths.items():
            prefix = f"audiofeatures: {path}: "
            lines = [
                line.removeprefix(prefix)
                for line in self.stderr.splitlines()
                if line.startswith(prefix)
            ]
            if lines:
                assert len(lines) == 1, lines  # one line per failed file
                found[name] = lines[0]
        return found


class MatrixLibrary:
    """A real beets library on disk whose items are matrix files, with the
    plugin configured for the tiny CLAP model; ``beet`` runs on it."""

    def __init__(
        self, root: Path, clap: ClapAssets, files: dict[str, tuple[Path, Path]]
    ) -> None:
        """``files``: by name, the file and the healthy file whose tags
        beets recorded (a damaged file was whole when it was imported)."""
        self.paths = {name: path for name, (path, _) in files.items()}
        self.cache = root / "cache"
        tags = json.dumps({"mood": list(MOODS)})
        self.env, self.db = synth.library_config(
            root,
            "audiofeatures: {essentia: {jobs: 2}, clap: {"
            f"model: '{clap.model_dir}', cache_dir: '{self.cache}', "
            f"tags: {tags}}}}}\n",
        )
        self.env["HF_HUB_OFFLINE"] = "1"
        lib = Library(str(self.db), str(root / "music"))
        try:
            for name, (path, recorded) in files.items():
                item = Item.from_path(recorded)
                item.path = bytes(path)
                item.title = name
                lib.add(item)
        finally:
            lib._close()

    def beet(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> Run | None:
        """The command's outcome; None if it did not end within
        ``timeout`` seconds (it is stopped)."""
        # In a process group of its own: a run given up is stopped with
        # its workers and decoders at once (pool workers also end with
        # their parent, but ffmpeg and Dask processes need not).
        with subprocess.Popen(
            [synth.BEET, *args], env=self.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        ) as done:  # fmt: skip
            try:
                _, stderr = done.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(done.pid, signal.SIGKILL)
                done.communicate()
                return None
        if "Traceback" in stderr:  # not an assertion: never an xfail
            pytest.fail(
                f"beet {' '.join(args)} ended in a traceback:\n{stderr}"
            )
        return Run(done.returncode, stderr)

    def ran(self, *args: str) -> Run:
        """The command's outcome; it must end."""
        run = self.beet(*args)
        if run is None:
            pytest.fail(f"beet {' '.join(args)} did not end")
        return run

    def fields(self) -> dict[str, dict[str, str]]:
        """Each item's flexible fields as stored, by file name."""
        with sqlite3.connect(self.db) as db:
            rows = db.execute(
                "SELECT items.title, key, value FROM items "
                "LEFT JOIN item_attributes ON entity_id = items.id"
            ).fetchall()
        stored: dict[str, dict[str, str]] = {}
        for title, key, value in rows:
            stored.setdefault(title, {})
            if key is not None:
                stored[title][key] = value
        return stored

    def vectors(self) -> dict[str, np.ndarray]:
        """Each item's current vector, by file name (none if it has none)."""
        lib = Library(str(self.db))
        try:
            keys = source_keys(lib)
            found = stores(library_cache(self.cache, lib))
            titles = {item.id: item.title for item in lib.items()}
        finally:
            lib._close()
        vectors = {}
        for store in found:
            for number, key in keys.items():
                vector = store.get(number, key)
                if vector is not None:
                    vectors[titles[number]] = vector
        return vectors


def healthy(
    matrix: Matrix, rows: Iterable[Row]
) -> dict[str, tuple[Path, Path]]:
    return {row.name: (matrix.path(row), matrix.path(row)) for row in rows}


def damaged(matrix: Matrix) -> dict[str, tuple[Path, Path]]:
    return {d.name: (matrix.path(d), matrix.path(d.row)) for d in DAMAGED}


@dataclass
class Outcome:
    """A library after its commands ran: what each said, what is stored."""

    library: MatrixLibrary
    runs: dict[str, Run]

    @cached_property
    def fields(self) -> dict[str, dict[str, str]]:
        return self.library.fields()

    @cached_property
    def vectors(self) -> dict[str, np.ndarray]:
        return self.library.vectors()

    def reasons(self, command: str) -> dict[str, str]:
        return self.runs[command].reasons(self.library.paths)


@pytest.fixture(scope="module")
def every_file(
    tmp_path_factory: pytest.TempPathFactory, matrix: Matrix, clap: ClapAssets
) -> Outcome:
    """Every healthy and damaged file: the default profile (the short
    rows and the damaged files), CLAP and its tags."""
    library = MatrixLibrary(
        tmp_path_factory.mktemp("every"), clap,
        healthy(matrix, DESIGN) | damaged(matrix),
    )  # fmt: skip
    skipped = [
        f"^title:{name}"
        for name in [
            *(row.name for row in DESIGN if row not in DEFAULT_PROFILE_ROWS),
            *SPINS,
        ]
    ]
    return Outcome(
        library,
        {
            "essentia": library.ran("essentia", *skipped),
            "clap": library.ran("clap"),
            "tags": library.ran("clap", "--tags"),
        },
    )


@pytest.fixture(scope="module")
def light(
    tmp_path_factory: pytest.TempPathFactory, matrix: Matrix, clap: ClapAssets
) -> Outcome:
    library = MatrixLibrary(
        tmp_path_factory.mktemp("light"), clap,
        healthy(matrix, DESIGN) | damaged(matrix),
    )  # fmt: skip
    return Outcome(
        library,
        {"essentia": library.ran("essentia", "--profile", "rhythm,tonal")},
    )


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, matrix: Matrix, clap: ClapAssets
) -> Outcome:
    library = MatrixLibrary(
        tmp_path_factory.mktemp("cluster"), clap,
        healthy(matrix, CLUSTER_ROWS),
    )  # fmt: skip
    return Outcome(
        library,
        {
            "essentia": library.ran("essentia", "--cluster", "local:2"),
            "clap": library.ran("clap", "--cluster", "local:2"),
        },
    )


# -- the design ---------------------------------------------------------------


def test_every_pair_of_values_meets_in_some_file():
    assert uncovered_pairs(DESIGN) == []
    assert len({row.name for row in DESIGN}) == len(DESIGN) == 40


def test_a_missing_file_leaves_its_pairs_uncovered():
    dropped = DESIGN[0]
    missing = uncovered_pairs(DESIGN[1:])
    assert ("format", dropped.format.name, "length", dropped.seconds) in missing


PROBED = "stream=codec_name,sample_rate,channels:format=duration"


def probe(path: Path) -> dict[str, str]:
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-select_streams", "a:0",
            "-show_entries", PROBED, "-of", "json", str(path),
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = json.loads(out)
    return {
        k: str(v) for k, v in (found["streams"][0] | found["format"]).items()
    }


CODECS = {
    "vorbis": "vorbis", "flac": "flac", "wav": "pcm_s16le",
    "aiff": "pcm_s16be", "aac": "aac", "mp3-cbr": "mp3", "alac": "alac",
    "wavpack": "wavpack", "opus": "opus", "mp3-vbr": "mp3",
}  # fmt: skip


@pytest.mark.parametrize("row", cases("design", DESIGN))
def test_each_file_is_what_the_design_says(matrix: Matrix, row: Row):
    found = probe(matrix.path(row))
    assert found["codec_name"] == CODECS[row.format.name]
    assert int(found["sample_rate"]) == row.file_rate
    assert int(found["channels"]) == row.channels
    assert float(found["duration"]) == pytest.approx(row.seconds, abs=0.1)


# -- healthy files --------------------------------------------------------------


def assert_right_values(fields: dict[str, str], row: Row, profile: str) -> None:
    assert fields.get("essentia_profile") == profile, sorted(fields)
    assert float(fields["essentia_bpm"]) == pytest.approx(row.bpm, abs=2)
    if row.seconds >= KEY_FROM:
        assert fields["essentia_key"] == row.key


@pytest.mark.parametrize("row", cases("essentia", DEFAULT_PROFILE_ROWS))
def test_the_default_profile_gets_the_tempo_and_key(
    every_file: Outcome, row: Row
):
    assert row.name not in every_file.reasons("essentia")
    assert_right_values(every_file.fields[row.name], row, "stored")


@pytest.mark.parametrize("row", cases("light", DESIGN))
def test_the_light_profile_gets_the_tempo_and_key(light: Outcome, row: Row):
    assert row.name not in light.reasons("essentia")
    assert_right_values(light.fields[row.name], row, "rhythm,tonal")


@pytest.mark.parametrize("row", cases("clap", DESIGN))
def test_clap_stores_a_unit_vector(every_file: Outcome, row: Row):
    assert row.name not in every_file.reasons("clap")
    vector = every_file.vectors.get(row.name)
    assert vector is not None, "no vector"
    assert vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1, abs=1e-5)
    assert every_file.fields[row.name]["clap_model"]


@pytest.fixture(scope="module")
def mood_prompts(clap: ClapAssets) -> tuple[np.ndarray, float]:
    embedder = ClapEmbedder(ModelSpec(model=str(clap.model_dir)))
    prompts = embedder.embed_texts([f"{mood} music" for mood in MOODS])
    return prompts, float(embedder.logit_scale)


@pytest.mark.parametrize("row", cases("tags", DESIGN))
def test_tags_come_from_the_files_vector(
    every_file: Outcome, mood_prompts: tuple[np.ndarray, float], row: Row
):
    prompts, scale = mood_prompts
    vector = every_file.vectors.get(row.name)
    assert vector is not None, "no vector to tag"
    logits = scale * (prompts @ vector)
    expected = np.exp(logits - logits.max())
    expected /= expected.sum()
    fields = every_file.fields[row.name]
    got = [float(fields[f"clap_mood_{mood}"]) for mood in MOODS]
    np.testing.assert_allclose(got, expected, atol=1e-3)
    assert fields["clap_mood"] == MOODS[int(np.argmax(expected))]


@pytest.mark.parametrize("row", cases("cluster-essentia", CLUSTER_ROWS))
def test_the_cluster_stores_the_same_values(
    every_file: Outcome, cluster: Outcome, row: Row
):
    assert row.name not in cluster.reasons("essentia")
    here, there = every_file.fields[row.name], cluster.fields[row.name]
    values = [
        k
        for k in here
        if k.startswith("essentia_") and k != "essentia_analyzed"
    ]
    assert values
    assert {k: there.get(k) for k in values} == {k: here[k] for k in values}


@pytest.mark.parametrize("row", cases("cluster-clap", CLUSTER_ROWS))
def test_the_cluster_stores_the_same_vector(
    every_file: Outcome, cluster: Outcome, row: Row
):
    assert row.name not in cluster.reasons("clap")
    here, there = (
        every_file.vectors.get(row.name),
        cluster.vectors.get(row.name),
    )
    assert here is not None
    assert there is not None
    assert float(here @ there) >= 0.9999


# -- damaged files --------------------------------------------------------------

CUT = r"truncated: the audio stops at \d+\.\d s of the 14\.5 s the library expects"
UNREADABLE = r"could not decode it: .*(Invalid data found|moov atom not found|End of file)"
#: CLAP's word for audio that breaks off mid-file (Essentia counts what
#: decodes and calls it short).
GAP = r"damaged: the audio breaks off at \d+\.\d s and the file goes on to 14\.5 s"


def expected_reason(file: Damaged) -> str | None:
    """What a command says about ``file``; None where the decoders read
    it anyway (MP3 frames and FLAC frames are found without the file's
    first 4 KiB)."""
    if file.damage == "headless":
        if file.row.format.name in ("mp3-cbr", "mp3-vbr", "flac"):
            return None
        return UNREADABLE
    if file.damage == "truncated" and file.row.format.suffix == ".m4a":
        return UNREADABLE  # the index of the samples (moov) is at the end
    if file.damage == "garbled":
        return f"{CUT}|{GAP}"
    return CUT


def assert_fails_alone(
    outcome: Outcome, command: str, file: Damaged, stored: Callable[[], bool]
) -> None:
    reasons = outcome.reasons(command)
    wanted = expected_reason(file)
    if wanted is None:
        assert file.name not in reasons
        assert stored()
        return
    assert file.name in reasons, "not named as failed"
    assert "\n" not in reasons[file.name]
    assert re.search(wanted, reasons[file.name]), reasons[file.name]
    assert not stored()
    assert outcome.runs[command].status == 1


@pytest.mark.parametrize(
    "file",
    cases("damaged-essentia", [d for d in DAMAGED if d.name not in SPINS]),
)
def test_a_damaged_file_fails_alone_in_essentia(
    every_file: Outcome, file: Damaged
):
    assert_fails_alone(
        every_file, "essentia", file,
        lambda: "essentia_bpm" in every_file.fields[file.name],
    )  # fmt: skip


@pytest.mark.parametrize("file", cases("damaged-light", DAMAGED))
def test_a_damaged_file_fails_alone_in_the_light_profile(
    light: Outcome, file: Damaged
):
    assert_fails_alone(
        light, "essentia", file,
        lambda: "essentia_bpm" in light.fields[file.name],
    )  # fmt: skip


@pytest.mark.parametrize("file", cases("damaged-clap", DAMAGED))
def test_a_damaged_file_fails_alone_in_clap(every_file: Outcome, file: Damaged):
    assert_fails_alone(
        every_file, "clap", file,
        lambda: file.name in every_file.vectors
        or "clap_model" in every_file.fields[file.name],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("outcome", "command", "verb"),
    [
        ("every_file", "essentia", "analysed"),
        ("light", "essentia", "analysed"),
        ("every_file", "clap", "embedded"),
    ],
)
def test_a_run_with_damaged_files_names_each_and_ends_in_one_line(
    request: pytest.FixtureRequest, outcome: str, command: str, verb: str
):
    done: Outcome = request.getfixturevalue(outcome)
    reasons = done.reasons(command)
    failing = {
        d.name
        for d in DAMAGED
        if expected_reason(d) is not None and d.name not in SPINS
    }
    assert failing <= set(reasons)
    run = done.runs[command]
    assert run.status == 1
    summary = [
        line for line in run.stderr.splitlines() if line.startswith("error: ")
    ]
    assert len(summary) == 1
    assert re.fullmatch(
        rf"error: {len(reasons)} of \d+ tracks could not be {verb}; "
        "the reasons are above",
        summary[0],
    ), summary


def test_a_file_musicextractor_cannot_finish_fails_alone_in_time(
    tmp_path: Path, matrix: Matrix, clap: ClapAssets
):
    (spinning,) = [d for d in DAMAGED if d.name in SPINS]
    (row,) = [
        r for r in SHORT_ROWS if r.format.name == "wavpack" and r.seconds == 5
    ]
    library = MatrixLibrary(
        tmp_path, clap,
        healthy(matrix, [row]) | {spinning.name: (matrix.path(spinning), matrix.path(spinning.row))},
    )  # fmt: skip
    # a 14.5-s file takes Essentia about a second; MusicExtractor spins
    # on this one (the default stored profile finds it truncated at once)
    run = library.beet("essentia", "--profile", "music", timeout=60)
    assert run is not None, "beet essentia did not end within 60 s"
    assert spinning.name in run.reasons(library.paths)
    assert "essentia_bpm" not in library.fields()[spinning.name]
    assert "essentia_bpm" in library.fields()[row.name]
