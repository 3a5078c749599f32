"""``beet clap`` and ``beet clapquery``: embed tracks, search by prompt."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shlex
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import confuse
import numpy as np
from beets import logging as beets_logging
from beets import plugins, ui
from beets.dbcore.query import PathQuery
from beets.dbcore.queryparse import PARSE_QUERY_PART_REGEX
from beets.exceptions import UserError
from beets.library import Album, Item
from beets.util import displayable_path
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from beets_audiofeatures.audio_files import MissingToolError, require_ffmpeg
from beets_audiofeatures.clap.audio import CLAP_NEEDS, embed_tracks
from beets_audiofeatures.clap.embedder import ClapEmbedder
from beets_audiofeatures.clap.identity import tokenizer_identity
from beets_audiofeatures.clap.model import ModelError, ModelSpec
from beets_audiofeatures.clap.search import Ranking, rank
from beets_audiofeatures.clap.store import (
    EmbeddingStore,
    Index,
    atomic_save,
    stores,
)
from beets_audiofeatures.clap.zero_shot import (
    LabelSet,
    probabilities,
    tag_values,
)
from beets_audiofeatures.runner import (
    Failure,
    Stopped,
    StopSignals,
    Tally,
    progress_bar,
)
from beets_audiofeatures.vectors import unit
from beetsplug.audiofeatures.clap_settings import DEFAULTS as DEFAULTS
from beetsplug.audiofeatures.clap_settings import (
    EMBEDDING,
    QUERY,
    STORE,
    TAGS,
    ClapSettings,
    library_cache,
)
from beetsplug.audiofeatures.clap_settings import cache_dir as cache_dir
from beetsplug.audiofeatures.clap_settings import (
    tag_field_types as tag_field_types,
)
from beetsplug.audiofeatures.library_query import (
    CHUNK,
    UID,
    audio_fingerprint,
    dump_path,
    each_item,
    item_chunks,
    item_id,
    items_by_id,
    live_item,
    matching_ids,
    new_uid,
    source_key,
    source_keys,
    split_ids,
    user_query,
)

if TYPE_CHECKING:
    from beets.library import Library


class ClapOptions(Protocol):
    force: bool | None
    pretend: bool
    jobs: int | None
    dump: str | None
    stats: bool
    prune: bool
    tags: bool


def counted(number: int, noun: str = "track") -> str:
    """``1 track``, ``2 tracks``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


class ModelHolder:
    """Loads the model the first time it is needed, once."""

    def __init__(self, spec: ModelSpec, log: Any) -> None:
        self.spec = spec
        self.log = log
        self._embedder: ClapEmbedder | None = None

    def get(self) -> ClapEmbedder:
        if self._embedder is None:
            self.log.info("loading CLAP model {}", self.spec.model)
            try:
                self._embedder = ClapEmbedder(self.spec)
            except ModelError as exc:
                raise UserError(f"audiofeatures.clap: {exc}") from exc
        return self._embedder

    @functools.cached_property
    def tokenizer(self) -> str:
        """What makes the prompts' tokens, for the prompt cache's keys."""
        try:
            return tokenizer_identity(self.spec)
        except ModelError as exc:
            raise UserError(f"audiofeatures.clap: {exc}") from exc


def needs_embedding(item: Item, store: EmbeddingStore, force: bool) -> bool:
    """Whether the item lacks a vector of this store computed from its
    current file (another model's vector does not count)."""
    key = source_key(item)
    return force or key is None or not store.has(item_id(item), key)


def plan(
    items: Iterable[Item], store: EmbeddingStore, force: bool
) -> tuple[list[Item], Tally]:
    items = list(items)
    todo = [item for item in items if needs_embedding(item, store, force)]
    return todo, Tally(skipped=len(items) - len(todo))


class ClapRunner:
    """Embeds items and stores each vector as soon as it is computed."""

    def __init__(self, settings: ClapSettings, log: Any, lib: Library) -> None:
        self.settings = settings
        self.log = log
        self.signals = StopSignals()
        # Created on its first vector: a model that fails to load, or a
        # batch where every track fails, leaves no empty store behind.
        self.store = settings.store(lib)
        self.database = os.fsdecode(lib.path)
        self._opened = False
        self.model = ModelHolder(settings.spec, log)

    def check_tools(self) -> None:
        """Fail before anything is loaded if ffmpeg is missing or the
        store cannot be created."""
        try:
            require_ffmpeg(CLAP_NEEDS)
        except MissingToolError as exc:
            raise UserError(f"audiofeatures: {exc}") from exc
        self.check_cache()

    def check_cache(self) -> None:
        """Fail before the model loads if the store cannot be created:
        the nearest existing folder above it must be writable."""
        folder = self.store.folder
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise UserError(
                f"cannot create the CLAP cache in {self.settings.cache_dir}: "
                f"{folder} is not a writable folder"
            )

    def open_store(self) -> None:
        if self._opened:
            return
        try:
            self.store.open(self.settings.identity())
            describe_library(self.store.root, self.database)
        except OSError as exc:
            raise UserError(
                f"cannot create the CLAP cache in {self.settings.cache_dir}: "
                f"{exc.strerror or exc}"
            ) from exc
        self._opened = True

    def run(
        self,
        lib: Library,
        items: Sequence[Item],
        tally: Tally,
        bar: tqdm | None = None,
        fold_index: bool = True,
    ) -> None:
        """Embed ``items``; failures are logged and added to ``tally``.

        ``fold_index`` rewrites the search index at the end; the import
        stage leaves that to the end of the import (the journal keeps the
        index correct meanwhile)."""
        if not items:
            return
        self.check_tools()
        embedder = self.model.get()
        by_id = {item.id: item for item in items}
        tracks = [
            (
                item.id,
                os.fsdecode(os.path.abspath(item.path)),
                float(item.length or 0),
            )
            for item in items
        ]
        bar = bar or progress_bar(len(items), shown=False)
        try:
            with logging_redirect_tqdm([logging.getLogger("beets")]):
                for key, result in embed_tracks(
                    tracks,
                    embedder.embed_clips,
                    self.settings.policy,
                    decoders=self.settings.jobs,
                    batch_clips=self.settings.batch_size,
                ):
                    item = by_id[key]
                    if isinstance(result, Failure):
                        shown = displayable_path(item.path)
                        tally.failed.append((shown, result.reason))
                        self.log.error("{}: {}", shown, result.reason)
                    elif self.keep(lib, item, result):
                        tally.done += 1
                    else:
                        tally.note("discarded")
                    bar.update()
        finally:
            if fold_index:
                self.fold_index()

    def fold_index(self) -> None:
        """Bring the search index up to date; if that cannot be written
        now, the journal keeps it correct for the next reader."""
        if not self.store.folder.is_dir():  # nothing was ever stored
            return
        try:
            self.store.index()
        except OSError as exc:
            self.log.warning(
                "the CLAP index could not be updated now ({}); the next "
                "query will", exc.strerror or exc,
            )  # fmt: skip

    def dump(self, lib: Library, item: Item, vector: np.ndarray) -> None:
        if self.settings.dump is None:
            return
        target = dump_path(item, lib, self.settings.dump, ".npy")
        atomic_save(Path(os.fsdecode(target)), vector)

    def keep(self, lib: Library, loaded: Item, vector: np.ndarray) -> bool:
        """Store a track's vector, unless the track left the library
        during the run (storing it would bring it back); whether kept."""
        item = live_item(lib, loaded, self.log, "its vector is discarded")
        if item is None:
            return False
        if audio_fingerprint(item) != audio_fingerprint(loaded):
            # beet update read new audio at this path meanwhile
            self.log.warning(
                "{}: its audio changed during the run; its vector is "
                "discarded and the next beet clap embeds it again",
                displayable_path(item.path),
            )
            return False
        if not item.get(UID):
            item[UID] = new_uid()
        key = source_key(item)
        assert key is not None
        self.open_store()
        try:
            self.store.put(item_id(item), vector, key)
        except OSError as exc:  # a full disk, a read-only cache: stop
            raise UserError(
                f"cannot write to the CLAP cache {self.store.folder}: "
                f"{exc.strerror or exc}; the tracks embedded so far are kept"
            ) from exc
        if self.settings.dump:
            self.dump(lib, item, vector)
        item["clap_model"] = self.store.tag
        item["clap_embedded"] = time.time()
        with self.signals.storing():
            item.store()
        return True


def run_clap(
    view: confuse.ConfigView,
    log: Any,
    lib: Library,
    opts: ClapOptions,
    args: list[str],
) -> None:
    settings = ClapSettings(view, opts)
    if opts.stats or opts.prune:
        settings.require(*STORE)
        report_store(settings, lib, prune=opts.prune)
        return
    # --tags checks its label sets before any track is embedded.
    settings.require(*EMBEDDING, *(TAGS if opts.tags else ()))
    if opts.tags:
        require_label_sets(settings)
    ids = matching_ids(lib, args)
    store = settings.store(lib)
    # Items are loaded a chunk at a time: memory does not grow with
    # the size of the query.
    todo, skipped = split_ids(
        lib, ids, lambda item: needs_embedding(item, store, settings.force)
    )
    tally = Tally(skipped=skipped)
    model = settings.spec.model
    if opts.pretend:  # the plan is the output: stdout, like the items
        ui.print_(
            f"would embed {len(todo)} of {counted(len(ids))} with {model} "
            f"({counted(settings.policy.count, 'window')} each)"
            if todo
            else f"nothing to embed: {nothing_to_embed(ids, args, model)}"
        )
        for item in each_item(lib, todo):
            ui.print_(f"embed: {item}")
        return
    if not todo:
        log.info("nothing to embed: {}", nothing_to_embed(ids, args, model))
    runner = ClapRunner(settings, log, lib)
    if settings.dump:  # what is already embedded is dumped from the store
        waiting = set(todo)
        done = [number for number in ids if number not in waiting]
        for item in each_item(lib, done):
            key = source_key(item)
            if key and (vector := store.get(item_id(item), key)) is not None:
                runner.dump(lib, item, vector)
    if todo:
        runner.check_tools()
        log.info(
            "embedding {} with {} ({} already embedded)",
            counted(len(todo)), model, tally.skipped,
        )  # fmt: skip
        try:
            with runner.signals, progress_bar(len(todo)) as bar:
                for chunk in item_chunks(lib, todo):
                    runner.run(lib, chunk, tally, bar, fold_index=False)
        except Stopped as stop:
            ui.print_(tally.stopped(stop, "embedded"))
            raise SystemExit(stop.exit_code) from None
        finally:
            runner.fold_index()
        log.info("{}", tally.summary("embedded"))
    if opts.tags:
        tag_items(settings, log, lib, ids, runner.store, runner.model)
    if tally.failed:
        raise UserError(
            f"{len(tally.failed)} of {counted(len(todo))} could not be "
            "embedded; the reasons are above"
        )


def nothing_to_embed(
    ids: Sequence[int], args: Sequence[str], model: str
) -> str:
    if ids:
        return f"{counted(len(ids))} already embedded with {model}"
    if args:
        return f"no tracks match {shlex.join(args)}"
    return "the library has no tracks"


def describe_library(folder: Path, database: str) -> None:
    """Name the library database in its cache folder, for a person who
    finds the folder (the folder's name is a digest of the path)."""
    note = folder / "library.json"
    if not note.exists():
        folder.mkdir(parents=True, exist_ok=True)
        note.write_text(json.dumps({"database": database}, indent=2) + "\n")


def report_store(settings: ClapSettings, lib: Library, prune: bool) -> None:
    """``--stats`` / ``--prune``: how this library's stores match it.

    embedded: a vector of the configured model computed from the
    track's current file; stale: a vector from another file state (new
    audio at that path, or a removed track whose id beets gave to a new
    one); missing: no vector of this model; orphaned: a vector whose
    track left the library. ``--prune`` deletes stale and orphaned
    vectors in every store of this library, stores left empty (a model
    tried once, say), and the stores of earlier versions, which were not
    kept per library.
    """
    current = settings.store(lib)
    keys = source_keys(lib)
    with lib.transaction() as tx:
        ids = {row[0] for row in tx.query("SELECT id FROM items")}
    lines = [f"model {settings.model} (store {current.tag}):"]
    mine = [current, *(s for s in stores(current.root) if s.tag != current.tag)]
    current_vectors: dict[int, str] = {}
    for store in mine:
        vectors = store.disk_keys()
        orphaned = sorted(set(vectors) - ids)
        stale = sorted(
            i for i, key in vectors.items() if i in ids and keys.get(i) != key
        )
        embedded = len(vectors) - len(orphaned) - len(stale)
        if store is current:
            lines.append(
                f"  embedded {embedded}, missing {len(ids) - embedded}, "
                f"stale {len(stale)}, orphaned {len(orphaned)}"
            )
        elif store.folder.is_dir():
            line = (
                f"  other store {store.tag}: "
                f"{counted(embedded, 'current vector')}, {len(stale)} stale, "
                f"{len(orphaned)} orphaned"
            )
            if not vectors and not prune:
                line += " (empty: --prune removes it)"
            lines.append(line)
        if prune:
            lines.extend(prune_store(store, orphaned, stale))
            gone = {*orphaned, *stale}
            vectors = {i: k for i, k in vectors.items() if i not in gone}
        if store is current:
            current_vectors = vectors
    for old in stores(settings.cache_dir):  # before stores were per library
        if prune:
            shutil.rmtree(old.folder)
            lines.append(f"  removed the store {old.tag} of an earlier version")
        else:
            lines.append(
                f"  store {old.tag} of an earlier version: "
                f"{counted(len(old.disk_ids()), 'vector')}, not used "
                "(--prune removes it)"
            )
    if current.folder.is_dir():
        index = current.index()
        indexed = dict(
            zip(index.ids.tolist(), index.keys.tolist(), strict=True)
        )
        if indexed != current_vectors:
            index = current.rebuild()  # vector files changed behind its back
        lines.append(f"  index: {counted(len(index), 'vector')}")
    for line in lines:
        ui.print_(line)


def prune_store(
    store: EmbeddingStore, orphaned: list[int], stale: list[int]
) -> list[str]:
    """Remove a store's orphaned and stale vectors, and the store itself
    when nothing is left (the next vector makes it again); what was
    done, one line each."""
    lines: list[str] = []
    if not store.folder.is_dir():
        return lines
    for ids, what in ((orphaned, "orphaned"), (stale, "stale")):
        if ids:
            removed = store.discard(ids)
            lines.append(
                f"  pruned {counted(removed, f'{what} vector')} from "
                f"{store.tag}"
            )
    if not len(store.disk_ids()):
        shutil.rmtree(store.folder)
        lines.append(f"  removed the empty store {store.tag}")
    elif orphaned or stale:
        store.index()
    return lines


def forget_item(cache_dir: Path | None, item: Item) -> None:
    """An item left the library: its vectors leave every store of its
    library. Never fails (``beet rm`` goes on): what cannot be removed
    now is an orphan ``beet clap --prune`` removes."""
    if cache_dir is None or item._db is None:  # a malformed cache_dir
        return
    folder = library_cache(cache_dir, item._db)
    try:
        for store in stores(folder):
            store.discard([item_id(item)])
    except OSError as exc:
        beets_logging.getLogger("beets.audiofeatures").warning(
            "the CLAP vectors of {} stay in {} ({}); beet clap --prune "
            "removes them", item, folder, exc.strerror or exc,
        )  # fmt: skip


# -- clapquery ----------------------------------------------------------------


def prompt_vectors(
    store: EmbeddingStore, model: ModelHolder, prompts: Sequence[str]
) -> np.ndarray:
    """Text vectors, from the cache where possible: a repeated query never
    loads the model."""
    vectors: dict[str, np.ndarray] = {}
    tokenizer = model.tokenizer
    for text in prompts:
        if (vector := store.get_prompt(text, tokenizer)) is not None:
            vectors[text] = vector
    missing = [text for text in prompts if text not in vectors]
    if missing:
        for text, vector in zip(
            missing, model.get().embed_texts(missing), strict=True
        ):
            store.put_prompt(text, vector, tokenizer)
            vectors[text] = vector
    return np.stack([vectors[text] for text in prompts]).astype(np.float32)


def candidate_ids(lib: Library, query: Sequence[str], album: bool) -> list[int]:
    """The tracks a query leaves to rank (with ``-a``, the tracks of the
    albums it matches)."""
    if album:
        return [
            item_id(item) for a in lib.albums(list(query)) for item in a.items()
        ]
    return matching_ids(lib, query)


def logit_scale(store: EmbeddingStore, model: ModelHolder) -> float:
    """The model's logit scale, remembered beside its vectors."""
    if (scale := store.get_logit_scale()) is None:
        scale = model.get().logit_scale
        store.put_logit_scale(scale)
    return scale


def require_label_sets(settings: ClapSettings) -> tuple[LabelSet, ...]:
    if not settings.label_sets:
        raise UserError(
            "no zero-shot tags are configured: add label sets under "
            "audiofeatures.clap.tags (see the docs)"
        )
    return settings.label_sets


def tag_items(
    settings: ClapSettings,
    log: Any,
    lib: Library,
    ids: Sequence[int],
    store: EmbeddingStore,
    model: ModelHolder,
) -> None:
    """``--tags``: zero-shot labels for every item that has a vector."""
    sets = require_label_sets(settings)
    # No store yet: nothing has a vector (and reading the index of a
    # store that does not exist would create an empty one).
    index = store.index() if store.folder.is_dir() else None
    rows = (
        index.positions(np.array(ids, np.int64), source_keys(lib, ids))
        if index is not None
        else np.empty(0, np.int64)
    )
    if unembedded := len(ids) - len(rows):
        log.info(
            "{} of {} {} no vector and {} not tagged",
            unembedded, counted(len(ids)),
            "has" if unembedded == 1 else "have",
            "is" if unembedded == 1 else "are",
        )  # fmt: skip
    if index is None or not len(rows):
        return
    scale = logit_scale(store, model)
    prompts = [prompt_vectors(store, model, s.prompts) for s in sets]
    tagged = index.ids[rows]
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        vectors = np.asarray(index.matrix[part])
        values: list[dict[str, Any]] = [{} for _ in part]
        for label_set, prompt in zip(sets, prompts, strict=True):
            for row, probs in enumerate(probabilities(vectors, prompt, scale)):
                values[row].update(tag_values(label_set, probs))
        fields_of = dict(zip(index.ids[part].tolist(), values, strict=True))
        with lib.transaction():
            for chunk in item_chunks(lib, list(fields_of)):
                for item in chunk:
                    item.update(fields_of[item_id(item)])
                    item["clap_tags_model"] = store.tag
                    item.store()
    log.info(
        "tagged {} with {}",
        counted(len(tagged)), ", ".join(s.field for s in sets),
    )  # fmt: skip


# -- the clapquery command line ------------------------------------------------


def is_field(lib: Library, key: str) -> bool:
    """Whether beets knows ``key`` as a field: a fixed or typed field of
    items or albums, a named query, or a flexible field some item or
    album of this library has."""
    known = {
        *Item.all_keys(), *Album.all_keys(), *Item._types, *Album._types,
        *Item._queries, *Album._queries,
    }  # fmt: skip
    if key in known:
        return True
    with lib.transaction() as tx:
        return bool(
            tx.query(
                "SELECT 1 FROM item_attributes WHERE key = ? UNION ALL "
                "SELECT 1 FROM album_attributes WHERE key = ? LIMIT 1",
                (key, key),
            )
        )


def is_query_term(lib: Library, part: str) -> bool:
    """Whether an argument reads as a beets query term: ``field:value``
    with a field beets knows, a query prefix (``:regex``, ``=exact``, a
    plugin's), a negation (``^term``), a sort (``year+``), a path that
    exists, or the comma that joins alternatives."""
    text = part.strip()
    if text == ",":
        return True
    text = text.removesuffix(",")
    if not text:
        return False
    if text.startswith(("^", "-")) or PathQuery.is_path_query(text):
        return True
    if text.endswith(("+", "-")) and ":" not in text and len(text) > 1:
        return is_field(lib, text[:-1].lower())
    match = PARSE_QUERY_PART_REGEX.match(text)
    if match is None:  # it always matches
        return False
    key, term = match.group(2), match.group(3)
    prefixes = (":", "=~", "=", *plugins.queries())
    if term.startswith(prefixes):
        return True
    return key is not None and is_field(lib, key.lower())


def checked_prompt(text: str, where: str) -> str:
    if not text.strip():
        raise UserError(
            f'{where} is empty: give a sentence, such as "calm piano"'
        )
    return text


def split_arguments(
    lib: Library, opts: Any, args: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The prompts and the beets query in ``beet clapquery``'s arguments.

    The first argument is the prompt, unless ``--text`` or ``--like`` is
    given; every other argument is a query term. A prompt that reads as
    a query, or a query term that reads as a prompt, is an error that
    says how to write what was meant.
    """
    prompts = [checked_prompt(text, "--text") for text in opts.text or []]
    query = list(args)
    explicit = bool(prompts) or opts.like is not None
    if not explicit:
        if not query:
            raise UserError(
                'clapquery needs a PROMPT: beet clapquery "calm piano" '
                "[QUERY] (or --text PROMPT, --like QUERY)"
            )
        first = query.pop(0)
        if is_query_term(lib, first):
            shown = shlex.quote(first)
            raise UserError(
                f"{shown} is a beets query, not a prompt: give the prompt "
                f'first (beet clapquery "calm piano" {shown}), or use '
                f"--text {shown} to search for these words"
            )
        prompts.append(checked_prompt(first, "the prompt"))
    for part in query:
        if not is_query_term(lib, part):
            hint = (
                "with --text or --like, every argument is the query: give "
                f"the prompt as --text {shlex.quote(part)}"
                if explicit
                else "quote a prompt of several words "
                f'("{shlex.join([*prompts, part])}"), or add a prompt '
                f"with --text {shlex.quote(part)}"
            )
            raise UserError(
                f"{shlex.quote(part)} is not a beets query term "
                f"(field:value): {hint}"
            )
    return prompts, query


class Playlist:
    """The ``--m3u`` file. Checked before anything is printed, by creating
    its temporary file beside it: a folder, a missing folder or a place
    that cannot be written costs one line, and no folder is created."""

    def __init__(self, value: str) -> None:
        path = Path(value).expanduser()
        if path.is_dir():
            raise UserError(
                f"--m3u {value} is a folder: give the playlist's file "
                f"name, such as {path / 'clap.m3u'}"
            )
        if not path.parent.is_dir():
            raise UserError(
                f"--m3u {value}: the folder {path.parent} does not exist"
            )
        try:
            handle, tmp = tempfile.mkstemp(
                dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
            )
        except OSError as exc:
            raise UserError(
                f"--m3u {value}: cannot write in {path.parent} "
                f"({exc.strerror or exc})"
            ) from exc
        os.close(handle)
        self.path = path
        self.tmp = Path(tmp)

    def write(self, items: Iterable[Item]) -> None:
        lines = ["#EXTM3U"]
        for item in items:
            lines.append(
                f"#EXTINF:{round(item.length or 0)},{item.artist} - "
                f"{item.title}"
            )
            lines.append(os.fsdecode(os.path.abspath(item.path)))
        try:
            self.tmp.write_text(
                "\n".join(lines) + "\n",
                encoding="utf-8",
                errors="surrogateescape",
            )
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise UserError(
                f"cannot write the playlist {self.path}: {exc.strerror or exc}"
            ) from exc

    def discard(self) -> None:
        """Remove the temporary file (once written, there is none)."""
        with contextlib.suppress(OSError):
            self.tmp.unlink()


# -- clapquery ----------------------------------------------------------------


def run_clapquery(
    view: confuse.ConfigView, log: Any, lib: Library, opts: Any, args: list[str]
) -> None:
    prompts, query = split_arguments(lib, opts, args)
    negative = [checked_prompt(text, "--not") for text in opts.negative or []]
    if opts.like is not None and not opts.like.strip():
        raise UserError(
            "--like needs a beets query, such as --like 'title:Blue in Green'"
        )
    settings = ClapSettings(view, opts).require(*QUERY)
    store = settings.store(lib)
    if not store.folder.is_dir():
        raise UserError(
            f"no CLAP vectors for {settings.model} yet: run beet clap first"
        )
    index = store.index()
    if not len(index):
        raise UserError(
            f"no tracks are embedded with {settings.model}: run beet clap first"
        )
    # The playlist's place is checked before anything is printed.
    playlist = Playlist(opts.m3u) if opts.m3u else None
    try:
        shown = find_and_show(
            settings, log, lib, opts, (prompts, negative, query), store, index
        )
        if playlist is not None:
            playlist.write(shown)
    finally:
        if playlist is not None:
            playlist.discard()


def find_and_show(
    settings: ClapSettings,
    log: Any,
    lib: Library,
    opts: Any,
    words: tuple[list[str], list[str], list[str]],
    store: EmbeddingStore,
    index: Index,
) -> list[Item]:
    """Rank, print the results (a line saying why when there are none),
    and return the tracks shown."""
    prompts, negative, query = words
    model = ModelHolder(settings.spec, log)
    noun = "album" if opts.album else "track"

    def nothing(why: str) -> list[Item]:
        log.info("{}", why)
        if opts.json:  # still a JSON answer for scripts
            ui.print_("[]")
        return []

    rows = None
    if query:  # checked first: no match loads no model
        matching = candidate_ids(lib, query, opts.album)
        written = shlex.join(query)
        if not matching:
            return nothing(f"no {noun}s match {written}")
        rows = index.positions(
            np.array(matching, np.int64), source_keys(lib, matching)
        )
        if not len(rows):
            return nothing(
                (
                    f"the track matching {written} has no vector yet"
                    if len(matching) == 1
                    else f"none of the {len(matching)} tracks matching "
                    f"{written} has a vector yet"
                )
                + f": run beet clap {written}"
            )
        if unembedded := len(matching) - len(rows):
            log.info(
                "{} of the {} matching {} {} no vector yet (beet clap)",
                unembedded, counted(len(matching)), written,
                "has" if unembedded == 1 else "have",
            )  # fmt: skip
    targets = [prompt_vectors(store, model, prompts)] if prompts else []
    exclude = None
    if opts.like:
        with user_query([opts.like]):
            seeds = {item_id(i): source_key(i) for i in lib.items(opts.like)}
        if not seeds:
            raise UserError(f"--like {opts.like} matches no tracks")
        current = {i: key for i, key in seeds.items() if key}
        exclude = index.positions(np.fromiter(seeds, np.int64), current)
        if not len(exclude):
            raise UserError(
                f"none of the {counted(len(seeds))} --like {opts.like} "
                f"matches has a vector yet: run beet clap {opts.like}"
            )
        seed = np.asarray(index.matrix[exclude]).mean(axis=0)
        targets.append(unit(seed)[None])
    avoid = prompt_vectors(store, model, negative) if negative else None
    labels = prompts + ([f"like {opts.like}"] if opts.like else [])
    limit = opts.limit or settings.limit

    def ranked(candidates: int | None) -> Ranking:
        return rank(
            index, np.concatenate(targets), avoid=avoid, rows=rows,
            exclude=exclude, limit=candidates, min_score=opts.min_score,
        )  # fmt: skip

    if opts.album:  # albums need every track's score, from current vectors
        if rows is None:
            keys = source_keys(lib)
            rows = index.positions(np.fromiter(keys, np.int64), keys)
        albums = best_albums(lib, ranked(None), limit)
        shown = bool(albums)
        if shown or not opts.json:
            show_albums(albums, opts)
        items = [item for album, _, _ in albums for item in album.items()]
    else:
        # Some of the best vectors may belong to tracks that are gone:
        # ask for spares, and for everything if the spares run out.
        candidates = limit * 2 + 50
        found = _results(lib, index, ranked(candidates), limit)
        if len(found) < limit and candidates < len(index):
            found = _results(lib, index, ranked(None), limit)
        shown = bool(found)
        if shown or not opts.json:
            show_items(found, labels, opts)
        items = [item for item, _, _ in found]
    if not shown:
        return nothing(
            f"no {noun}s score {opts.min_score} or more"
            if opts.min_score is not None
            else f"no {noun}s besides the --like ones"
            if opts.like
            else f"no {noun}s to rank"
        )
    return items


def _results(
    lib: Library, index: Index, ranking: Ranking, limit: int
) -> list[tuple[Item, float, list[float]]]:
    """The best ``limit`` ranked tracks that are current, their items
    loaded a few hundred per query, best first."""
    found = []
    ids = ranking.ids.tolist()
    for start in range(0, len(ids), CHUNK):
        window = ids[start : start + CHUNK]
        items = items_by_id(lib, window)
        for offset, number in enumerate(window):
            item = items.get(number)
            # A vector whose item is gone, whose id beets gave to a new
            # track, or whose file has new audio, is not a result.
            if item is None or index.key(number) != source_key(item):
                continue
            row = start + offset
            scores = [float(s) for s in ranking.per_prompt[row]]
            found.append((item, float(ranking.scores[row]), scores))
            if len(found) == limit:
                return found
    return found


def score_detail(labels: Sequence[str], scores: Sequence[float]) -> str:
    """Each prompt's own score, when there are several:
    ``(piano 0.410 · strings 0.120)``."""
    if len(scores) < 2:
        return ""
    parts = (
        f"{label} {score:.3f}"
        for label, score in zip(labels, scores, strict=False)
    )
    return f"  ({' · '.join(parts)})"


def show_items(
    found: list[tuple[Item, float, list[float]]],
    labels: list[str],
    opts: Any,
) -> None:
    if opts.json:
        ui.print_(json.dumps([
            {
                "id": item.id,
                "path": displayable_path(item.path),
                "artist": item.artist,
                "album": item.album,
                "title": item.title,
                "score": round(score, 4),
                "scores": dict(zip(labels, (round(s, 4) for s in scores), strict=False)),
            }
            for item, score, scores in found
        ], indent=2, ensure_ascii=False))  # fmt: skip
        return
    for item, score, scores in found:
        item["clap_score"] = score
        if opts.format:
            ui.print_(format(item, opts.format))
        else:
            ui.print_(f"{score:.3f}  {item}{score_detail(labels, scores)}")


def best_albums(
    lib: Library, ranking: Ranking, limit: int
) -> list[tuple[Album, float, int]]:
    """The best ``limit`` albums by their tracks' mean score, with the
    number of their tracks ranked."""
    with lib.transaction() as tx:
        album_of: dict[int, int] = {
            row[0]: row[1]
            for row in tx.query(
                "SELECT id, album_id FROM items WHERE album_id IS NOT NULL"
            )
        }
    scores: dict[int, list[float]] = defaultdict(list)
    for number, score in zip(
        ranking.ids.tolist(), ranking.scores.tolist(), strict=False
    ):
        if number in album_of:
            scores[album_of[number]].append(score)
    best = sorted(scores, key=lambda a: -float(np.mean(scores[a])))[:limit]
    found = []
    for number in best:
        if (album := lib.get_album(number)) is not None:
            found.append(
                (album, float(np.mean(scores[number])), len(scores[number]))
            )
    return found


def show_albums(albums: list[tuple[Album, float, int]], opts: Any) -> None:
    if opts.json:
        ui.print_(json.dumps([
            {"id": album.id, "albumartist": album.albumartist,
             "album": album.album, "score": round(score, 4),
             "tracks": tracks}
            for album, score, tracks in albums
        ], indent=2, ensure_ascii=False))  # fmt: skip
        return
    for album, score, _ in albums:
        album["clap_score"] = score
        ui.print_(
            format(album, opts.format)
            if opts.format
            else f"{score:.3f}  {album}"
        )
