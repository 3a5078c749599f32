"""CLAP embedding as the runner drives it: which tracks lack a current
vector, the decode-and-embed loop, and storing each vector at once."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from beets_audiofeatures.atomic_files import atomic_save
from beets_audiofeatures.audio_files import (
    AudioCheck,
    FileIdentity,
    check_identity,
    file_identity,
    require_ffmpeg,
)
from beets_audiofeatures.clap.audio import CLAP_NEEDS, EmbeddingLoop, Track
from beets_audiofeatures.clap.prompts import ModelHolder
from beets_audiofeatures.clap.remote import ClapBatch, clap_report
from beets_audiofeatures.errors import CacheFolderError, CommandError
from beets_audiofeatures.runner import RemoteWork, Tally
from beets_audiofeatures.version import plugin_version
from beetsplug.audiofeatures.library_query import (
    CLAP_FILE,
    UID,
    claimed_uid,
    dump_path,
    file_record,
    item_id,
    recorded_file,
    source_key,
)
from beetsplug.audiofeatures.settings.clap import ClapSettings

if TYPE_CHECKING:
    from beets.library import Item, Library
    from beets.logging import BeetsLogger


#: Why a track is embedded (``-p`` names the second).
MISSING = "no current vector"
NEW_AUDIO = "new audio"


def describe_library(folder: Path, database: str) -> None:
    """Name the library database in its cache folder, for a person who
    finds the folder (the folder's name is a digest of the path)."""
    note = folder / "library.json"
    if not note.exists():
        folder.mkdir(parents=True, exist_ok=True)
        note.write_text(json.dumps({"database": database}, indent=2) + "\n")


class ClapAnalysis:
    """Embeds tracks with the configured model into this library's store.

    The store is created with its first vector: a model that fails to
    load, or a batch where every track fails, leaves no empty store."""

    verb = "embedded"
    doing = "embedding"
    result = "its vector is"
    batched = False  # each result is stored as soon as it is computed
    again = "the next beet clap embeds it again"

    def __init__(
        self, settings: ClapSettings, lib: Library, log: BeetsLogger
    ) -> None:
        self.settings = settings
        self.lib = lib
        self.log = log
        self.store = settings.store(lib)
        self.model = ModelHolder(
            settings.spec, lambda line: log.info("{}", line)
        )
        self.method = f"with {settings.spec.model}"
        self._opened = False
        #: record files while planning (a run that stores; never -p)
        self.settle = not getattr(settings.opts, "pretend", False)
        self._files: dict[int, FileIdentity] = {}

    def needs(self, item: Item) -> str:
        """Why the item needs a vector: it lacks one of this store
        computed from its current audio (another model's vector does not
        count), or its file holds new audio; empty: it has one."""
        key = source_key(item)
        if (
            self.settings.force
            or key is None
            or not self.store.has(item_id(item), key)
        ):
            return MISSING
        recorded, keyed = recorded_file(item.get(CLAP_FILE))
        if recorded is None:
            # Embedded before files were recorded: the vector stays
            # current, and the file it describes from now on is this one.
            with contextlib.suppress(OSError):
                self._record(item, file_identity(item.path), keyed=False)
            return ""
        check, now = check_identity(recorded, item.path)
        if check is AudioCheck.NEW_AUDIO:
            return NEW_AUDIO
        if now is not None:  # rewritten (tags): one stat next time
            self._record(item, now, keyed)
        return ""

    def _record(self, item: Item, identity: FileIdentity, keyed: bool) -> None:
        if self.settle:
            item[CLAP_FILE] = file_record(identity, keyed)
            item.store()

    def describe(self, need: str) -> str:
        return "" if need == MISSING else need

    def task(self, item: Item, need: str) -> Track:
        # The file as it is before it is decoded: new audio that lands
        # meanwhile makes the vector stale, never right.
        with contextlib.suppress(OSError):
            self._files[item_id(item)] = file_identity(item.path)
        path = os.fsdecode(os.path.abspath(item.path))
        return Track(path, float(item.length or 0))

    def executor(self) -> EmbeddingLoop:
        self.check_tools()
        settings = self.settings
        return EmbeddingLoop(
            lambda: self.model.get().audio_embedding(),
            settings.policy,
            decoders=settings.jobs,
            batch_clips=settings.batch_size,
        )

    def remote_work(self) -> RemoteWork[Track, np.ndarray]:
        """Embedding as cluster workers run it: the model once per worker
        process, a few tracks per task so their windows batch."""
        settings = self.settings
        per_track = max(1, settings.policy.count)
        return RemoteWork(
            name=f"CLAP ({settings.model})",
            factory=functools.partial(
                ClapBatch,
                settings.spec,
                settings.policy,
                settings.jobs,
                settings.batch_size,
            ),
            identity={
                "beets-audiofeatures": plugin_version(),
                "model": self.store.tag,
                "ffmpeg": "yes",
            },
            report=functools.partial(
                clap_report, settings.model, settings.pipeline
            ),
            batch=max(1, settings.batch_size // per_track),
            batched=True,
        )

    def check_store(self) -> None:
        """Fail before anything is loaded if the store cannot be created:
        the nearest existing folder above it must be writable."""
        folder = self.store.folder
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise CommandError(
                f"cannot create the CLAP cache in {self.settings.cache_dir}: "
                f"{folder} is not a writable folder"
            )

    def check_tools(self) -> None:
        """Fail before anything is loaded if ffmpeg is missing or the
        store cannot be created: the nearest existing folder above it
        must be writable."""
        require_ffmpeg(CLAP_NEEDS)
        self.check_store()

    def _open_store(self) -> None:
        if self._opened:
            return
        try:
            self.store.open(self.settings.identity())
            describe_library(self.store.root, os.fsdecode(self.lib.path))
        except OSError as exc:
            raise CommandError(
                f"cannot create the CLAP cache in {self.settings.cache_dir}: "
                f"{exc.strerror or exc}"
            ) from exc
        self._opened = True

    def keep(
        self, item: Item, need: str, vector: np.ndarray, tally: Tally
    ) -> None:
        self._open_store()
        # Locked from the uid to the stored item: another run embedding
        # the track at once files its vector under the same uid.
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(self.store.writing())
            except OSError as exc:
                raise self._unwritable(exc) from exc
            self._store(item, vector)

    def _unwritable(self, exc: OSError) -> CommandError:
        """A full disk, a read-only cache: the run stops."""
        return CommandError(
            f"cannot write to the CLAP cache {self.store.folder}: "
            f"{exc.strerror or exc}; the tracks embedded so far are kept"
        )

    def _store(self, item: Item, vector: np.ndarray) -> None:
        item[UID] = claimed_uid(self.lib, item)
        if file := self._files.pop(item_id(item), None):
            before, keyed = recorded_file(item.get(CLAP_FILE))
            # The same audio as an earlier, unkeyed vector keeps the key
            # other models' vectors of it are filed under.
            same = before is not None and before.digest == file.digest
            item[CLAP_FILE] = file_record(file, keyed or not same)
        elif CLAP_FILE in item:  # unknown: filed by the audio columns
            del item[CLAP_FILE]
        key = source_key(item)
        assert key is not None
        try:
            self.store.put(item_id(item), vector, key)
        except OSError as exc:
            raise self._unwritable(exc) from exc
        item["clap_model"] = self.store.tag
        item["clap_embedded"] = time.time()
        item.store()
        self.dump(item, vector)  # once recorded: a failed copy loses nothing

    def dump(self, item: Item, vector: np.ndarray) -> None:
        """``--dump``: the vector as a ``.npy`` file beside the others."""
        if self.settings.dump is None:
            return
        target = Path(
            os.fsdecode(dump_path(item, self.lib, self.settings.dump, ".npy"))
        )
        try:
            atomic_save(target, vector)
        except OSError as exc:  # a file where a folder goes, a full disk
            raise CommandError(
                f"--dump cannot write {target}: {exc.strerror or exc}; the "
                "vectors embedded so far are stored"
            ) from exc

    def close(self) -> None:
        """Bring the search index up to date; if that cannot be written
        now, the journal keeps it correct for the next reader."""
        if not self.store.folder.is_dir():  # nothing was ever stored
            return
        try:
            self.store.index()
        except (OSError, CacheFolderError) as exc:  # a full disk
            self.log.warning(
                "the CLAP index could not be updated now ({}); the next "
                "query will", getattr(exc, "strerror", None) or exc,
            )  # fmt: skip
