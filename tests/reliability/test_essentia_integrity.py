"""Every value ``beet essentia`` stores belongs to the track and the
audio it came from, through the real ``beet`` on real on-disk libraries:
a track removed during a run, new audio at the same path, a concurrent
``beet modify -w``, paths that never end, bad queries and a file cut
short after import."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from mediafile import MediaFile

from tests import synth
from tests.conftest import Audio
from tests.synth import BEET


def beet(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [BEET, *args], env=env, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert "Traceback" not in run.stderr, run.stderr
    return run


def rows(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def attribute(db: Path, item: int, key: str) -> object:
    found = rows(
        db, "SELECT value FROM item_attributes WHERE entity_id = ? AND key = ?",
        item, key,
    )  # fmt: skip
    return found[0][0] if found else None


def number(db: Path, item: int, key: str) -> float:
    """A stored number (the test fails if the item has none)."""
    value = attribute(db, item, key)
    assert isinstance(value, (int, float, str)), value
    return float(value)


def item_id(db: Path, sql: str) -> int:
    """The one id ``sql`` selects (``SELECT MAX(id) ...``)."""
    ((found,),) = rows(db, sql)
    assert isinstance(found, int), found
    return found


def paths(db: Path, music: Path) -> list[Path]:
    found = []
    for (p,) in rows(db, "SELECT path FROM items ORDER BY id"):
        assert isinstance(p, bytes), p  # beets stores paths as BLOBs
        found.append(music / os.fsdecode(p))
    return found


def start_and_wait_for_one(
    env: dict[str, str], db: Path, *args: str
) -> subprocess.Popen[str]:
    run = subprocess.Popen(
        [BEET, "essentia", *args], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not rows(
        db, "SELECT 1 FROM item_attributes WHERE key = 'essentia_analyzed'"
    ):
        time.sleep(0.02)
    return run


@pytest.fixture
def library(tmp_path: Path, audio: Audio) -> tuple[dict[str, str], Path]:
    return synth.library_of_copies(
        tmp_path, audio.a120_wav, 4, "{essentia: {jobs: 1, profile: rhythm}}"
    )


def test_a_track_removed_during_a_run_stays_removed(library, tmp_path, audio):
    env, db = library
    last = item_id(db, "SELECT MAX(id) FROM items")
    run = start_and_wait_for_one(env, db)
    assert beet(env, "rm", "-f", f"id:{last}").returncode == 0
    _out, err = run.communicate(timeout=120)
    assert run.returncode == 0
    assert "removed from the library during the run" in err
    assert (
        rows(db, "SELECT * FROM item_attributes WHERE entity_id = ?", last)
        == []
    )

    # beets gives the id to the next import: it inherits nothing
    incoming = tmp_path / "new"
    synth.make_track(incoming / "new.flac", 90, "C", seconds=12)
    beet(env, "import", "-A", "-q", "-s", str(incoming))
    assert rows(db, "SELECT MAX(id) FROM items")[0][0] == last
    assert attribute(db, last, "essentia_bpm") is None
    assert "would analyse 1 of 4 tracks" in beet(env, "essentia", "-p").stdout


def test_new_audio_at_the_same_path_is_analysed_again(library, tmp_path):
    env, db = library
    beet(env, "essentia")
    first = item_id(db, "SELECT MIN(id) FROM items")
    assert number(db, first, "essentia_bpm") == pytest.approx(120, abs=1)
    (path,) = paths(db, tmp_path / "music")[:1]
    synth.make_track(path, 90, "C", seconds=12)  # a re-rip, same name
    beet(env, "update")

    plan = beet(env, "essentia", "-p")
    assert "would analyse 1 of 4 tracks" in plan.stdout
    beet(env, "essentia")
    assert number(db, first, "essentia_bpm") == pytest.approx(90, abs=1)


def test_a_concurrent_tag_edit_survives_the_run(library, tmp_path):
    env, db = library
    last = item_id(db, "SELECT MAX(id) FROM items")
    run = start_and_wait_for_one(env, db, "-w", "-f")
    assert (
        beet(
            env, "modify", "-y", "-M", "-w", f"id:{last}", "comments=Edited"
        ).returncode
        == 0
    )
    run.communicate(timeout=120)
    assert run.returncode == 0
    assert rows(db, "SELECT comments FROM items WHERE id = ?", last) == [
        ("Edited",)
    ]
    assert rows(db, "SELECT bpm FROM items WHERE id = ?", last) == [(120,)]
    path = paths(db, tmp_path / "music")[-1]
    assert MediaFile(path).comments == "Edited"  # not undone by our write
    # When ``beet modify`` read the track before the run stored it and
    # wrote the file after, beets itself wrote its older view of the tags
    # (a race between two beets commands that the run cannot see); the
    # library holds both values, so beets' own ``write`` brings the file
    # in line without losing either.
    assert beet(env, "write", f"id:{last}").returncode == 0
    tags = MediaFile(path)
    assert (tags.comments, tags.bpm) == ("Edited", 120)


def test_a_fifo_and_a_link_to_dev_zero_fail_at_once(library, tmp_path):
    env, db = library
    fifo, zero, *_ = paths(db, tmp_path / "music")
    fifo.unlink()
    os.mkfifo(fifo)
    zero.unlink()
    zero.symlink_to("/dev/zero")
    started = time.monotonic()
    run = beet(env, "essentia")
    assert time.monotonic() - started < 60
    assert run.returncode == 1
    assert f"{fifo}: not a regular file: a FIFO" in run.stderr
    assert f"{zero}: not a regular file: a character device" in run.stderr
    assert "2 of 4 tracks could not be analysed" in run.stderr


@pytest.mark.parametrize("command", ["essentia", "clap"])
@pytest.mark.parametrize("query", ["title::[", "essentia_bpm:fast"])
def test_a_bad_query_is_one_line(library, command, query):
    env, _db = library
    run = beet(env, command, query)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: invalid query '{query}'")


def test_a_file_cut_short_says_what_the_library_expected(library, tmp_path):
    env, db = library
    cut = paths(db, tmp_path / "music")[0]
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) * 3 // 10])
    run = beet(env, "essentia")
    assert run.returncode == 1
    (line,) = [x for x in run.stderr.splitlines() if "truncated" in x]
    assert line.startswith(
        f"audiofeatures: {cut}: truncated: the audio stops at 4."
    )
    assert line.endswith("s of the 15.0 s the library expects")
