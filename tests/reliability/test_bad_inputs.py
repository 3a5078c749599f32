"""Every kind of bad input, through both commands: the bad track fails
alone with its path and the reason, everything else is stored, the exit
status says so, and nothing is written for the failed track."""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from beets.exceptions import UserError
from beets.library import Item

from beetsplug.audiofeatures.library_query import item_id
from tests import synth
from tests.conftest import Audio
from tests.helpers import ClapHelper

OK = None


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Audio, Path], Path]  # the file (or folder) to add
    essentia: str | None  # reason, or OK
    clap: str | None
    length: float | None = None  # as beets recorded it, if not the file's


def _copy(source: str, name: str) -> Callable[[Audio, Path], Path]:
    def make(audio: Audio, folder: Path) -> Path:
        target = folder / name
        shutil.copy(getattr(audio, source), target)
        return target

    return make


def _bytes(name: str, data: bytes) -> Callable[[Audio, Path], Path]:
    def make(audio: Audio, folder: Path) -> Path:
        target = folder / name
        target.write_bytes(data)
        return target

    return make


def _truncated(source: str, name: str) -> Callable[[Audio, Path], Path]:
    def make(audio: Audio, folder: Path) -> Path:
        return synth.truncate(getattr(audio, source), folder / name, 0.3)

    return make


def _short(audio: Audio, folder: Path) -> Path:
    return synth.make_track(folder / "short.flac", seconds=0.5)


def _folder(audio: Audio, folder: Path) -> Path:
    target = folder / "a folder.flac"
    target.mkdir()
    return target


def _missing(audio: Audio, folder: Path) -> Path:
    return folder / "gone.flac"


def _odd_name(name: bytes) -> Callable[[Audio, Path], Path]:
    def make(audio: Audio, folder: Path) -> Path:
        target = os.path.join(os.fsencode(folder), name)
        shutil.copy(os.fsencode(audio.a120_flac), target)
        return Path(os.fsdecode(target))

    return make


CASES = [
    Case("empty", _copy("empty", "empty.flac"), "file is empty", "file is empty"),
    Case("random bytes", _bytes("noise.mp3", os.urandom(40_000)), "ffmpeg", "could not decode"),
    Case("text as mp3", _copy("text", "notes.mp3"), "ffmpeg", "could not decode"),
    Case("truncated wav", _truncated("a120_wav", "cut.wav"), "truncated", "truncated", 15.0),
    Case("truncated flac", _truncated("a120_flac", "cut.flac"), "truncated", "truncated", 15.0),
    Case("truncated mp3", _truncated("a120_mp3", "cut.mp3"), "truncated", "truncated", 15.0),
    Case("silent", _copy("silence", "silent.wav"), "silent", "silent"),
    Case("half a second", _short, OK, OK),
    Case("six channels", _copy("six_channels", "six.wav"), OK, OK),
    Case("opus", _copy("opus", "x.opus"), OK, OK),
    Case("a folder", _folder, "not a regular file: a directory", "not a regular file: a directory", 15.0),
    Case("missing", _missing, "file not found", "file not found", 15.0),
    Case("non-UTF-8 name", _odd_name(b"caf\xe9 \xff.flac"), OK, OK),
    Case("leading dash", _odd_name(b"-i $(touch pwned) 'x'.flac"), OK, OK),
]  # fmt: skip


class BadInputs(ClapHelper):
    def add_cases(self, folder: Path) -> dict[str, Item]:
        items = {}
        for case in CASES:
            path = case.make(self.audio, folder)
            try:
                item = Item.from_path(path)
            except Exception:  # not readable by mediafile
                item = Item(path=os.fsencode(path), length=15.0)
            if case.length is not None:
                item.length = case.length
            item.title = case.name
            item.add(self.lib)
            items[case.name] = item
        return items

    def check(
        self,
        items: dict[str, Item],
        caplog: pytest.LogCaptureFixture,
        outcome: Callable[[Case], str | None],
        done_field: str,
    ) -> None:
        for case in CASES:
            item = self.item(item_id(items[case.name]))
            reason = outcome(case)
            if reason is OK:
                assert done_field in item, case.name
                continue
            assert done_field not in item, case.name
            shown = os.fsdecode(item.path)
            line = next(
                (r.getMessage() for r in caplog.records
                 if r.getMessage().startswith(shown)),
                "",
            )  # fmt: skip
            assert line, f"{case.name}: no message names {shown}"
            assert re.search(reason, line), f"{case.name}: {line}"
        assert not Path("pwned").exists()


class TestEssentia(BadInputs):
    def test_each_bad_input_fails_alone(self, tmp_path, caplog):
        items = self.add_cases(tmp_path)
        failing = sum(case.essentia is not OK for case in CASES)
        with (
            caplog.at_level(logging.INFO),
            pytest.raises(UserError, match=f"{failing} of {len(CASES)} tracks"),
        ):
            self.essentia("--profile", "rhythm,lowlevel")
        self.check(
            items, caplog, lambda case: case.essentia, "essentia_analyzed"
        )


class TestClap(BadInputs):
    def test_each_bad_input_fails_alone(self, tmp_path, caplog):
        items = self.add_cases(tmp_path)
        failing = sum(case.clap is not OK for case in CASES)
        with (
            caplog.at_level(logging.INFO),
            pytest.raises(UserError, match=f"{failing} of {len(CASES)} tracks"),
        ):
            self.clap()
        self.check(items, caplog, lambda case: case.clap, "clap_model")
        store = self.store()
        stored = {int(i) for i in store.index().ids}
        for case in CASES:
            assert (items[case.name].id in stored) == (case.clap is OK), (
                case.name
            )
