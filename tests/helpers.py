"""Test bases shared by the test modules: a real on-disk beets library
with the plugin loaded, real audio, and (``ClapHelper``) a tiny real
CLAP model."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import ClassVar
from unittest.mock import Mock, patch

import beets.ui
import numpy as np
import pytest
from beets.library import Item
from beets.test.helper import IOMixin, PluginTestHelper

from beets_audiofeatures.clap.store import EmbeddingStore, stores
from beetsplug.audiofeatures.library_query import item_id, source_key
from beetsplug.audiofeatures.settings.clap import library_cache
from tests.conftest import Audio, ClapAssets


class AudioFeaturesHelper(IOMixin, PluginTestHelper):
    plugin: ClassVar[str] = "audiofeatures"
    db_on_disk: ClassVar[bool] = True

    @pytest.fixture(autouse=True)
    def _audio(
        self, setup: None, audio: Audio, caplog: pytest.LogCaptureFixture
    ) -> None:
        self.audio = audio
        self.caplog = caplog
        self.config["audiofeatures"]["essentia"]["jobs"] = 1

    def add_track(self, source: Path, **fields: object) -> Item:
        """Copy a real file into the library, as ``beet import`` would."""
        target = (
            self.lib_path / f"{fields.get('title', source.stem)}{source.suffix}"
        )
        shutil.copy(source, target)
        try:
            item = Item.from_path(target)
        except Exception:  # not readable by mediafile: still a library item
            item = Item(path=target, length=15.0)
        item.update(fields)
        item.add(self.lib)
        return item

    def item(self, number: int) -> Item:
        """The library's current copy of the item (the test fails if it
        is not in the library)."""
        item = self.lib.get_item(number)
        assert item is not None, f"no item {number} in the library"
        return item

    def fails(self, *args: str, printed: tuple[str, ...] = ("",)) -> str:
        """Run a command as the ``beet`` program does; check that it
        prints nothing (or one of ``printed``) and exits with status 1,
        and return its one error line."""
        self.io.getoutput()
        self.caplog.clear()
        sys.argv = ["beet", *args]
        with (
            patch.object(self.lib, "_close", Mock()),
            patch("beets.ui._open_library", return_value=self.lib),
            pytest.raises(SystemExit) as stop,
        ):
            beets.ui.main(list(args))
        assert stop.value.code == 1
        assert self.io.getoutput() in printed
        errors = [
            record.getMessage()
            for record in self.caplog.records
            if record.levelno >= logging.ERROR
        ]
        assert len(errors) == 1, errors
        assert "Traceback" not in self.caplog.text
        line = errors[0]
        assert "\n" not in line
        return line.removeprefix("error: ")

    def essentia(self, *args: str) -> None:
        self.run_command("essentia", *args)


class ClapHelper(AudioFeaturesHelper):
    @pytest.fixture(autouse=True)
    def _clap(
        self,
        _audio: None,
        clap: ClapAssets,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        self.caplog = caplog
        self.assets = clap
        self.cache = tmp_path / "cache"
        settings = self.config["audiofeatures"]["clap"]
        settings["model"] = str(clap.model_dir)
        settings["cache_dir"] = str(self.cache)
        settings["jobs"] = 1
        settings["windows"] = 2

    def clap(self, *args: str) -> None:
        self.run_command("clap", *args)

    def query(self, *args: str) -> str:
        self.io.getoutput()  # drop what earlier commands printed
        self.run_command("clapquery", *args)
        return self.io.getoutput()

    def logged(self) -> list[str]:
        """The plugin's log lines since the last call."""
        lines = [
            record.getMessage().removeprefix("audiofeatures: ")
            for record in self.caplog.records
            if record.name == "beets.audiofeatures"
        ]
        self.caplog.clear()
        return lines

    @property
    def stores(self) -> Path:
        """This library's folder in the cache."""
        return library_cache(self.cache, self.lib)

    def store(self) -> EmbeddingStore:
        (store,) = stores(self.stores)
        return store

    def vector(
        self, number: int, store: EmbeddingStore | None = None
    ) -> np.ndarray:
        """The item's current vector (the test fails if it has none)."""
        key = source_key(self.item(number))
        assert key is not None, f"item {number} has no clap_uid"
        vector = (store or self.store()).get(number, key)
        assert vector is not None, f"item {number} has no current vector"
        return vector

    def library(self) -> dict[str, int]:
        """A few tracks: the same music in three formats, and another."""
        a = self.audio
        return {
            title: item_id(self.add_track(source, title=title, artist="synth"))
            for title, source in [
                ("a-flac", a.a120_flac), ("a-mp3", a.a120_mp3),
                ("a-ogg", a.a120_ogg), ("c-mp3", a.c90_mp3),
            ]
        }  # fmt: skip
