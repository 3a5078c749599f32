"""``beet clap --stats`` / ``--prune``, and a removed track's vectors
leaving every store of its library (``beet rm``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from beets import logging as beets_logging
from beets import ui

from beets_audiofeatures.clap.index import Index
from beets_audiofeatures.clap.search import measured_recall
from beets_audiofeatures.clap.store import EmbeddingStore, is_store, stores
from beets_audiofeatures.errors import CacheFolderError
from beets_audiofeatures.runner import count
from beetsplug.audiofeatures.library_query import item_id, source_keys
from beetsplug.audiofeatures.settings.clap import ClapSettings, library_cache

if TYPE_CHECKING:
    from beets.library import Item, Library


def report_store(
    settings: ClapSettings, lib: Library, prune: bool, pretend: bool = False
) -> None:
    """``--stats`` / ``--prune``: how this library's stores match it.

    embedded: a vector of the configured model computed from the
    track's current file; stale: a vector from another file state (new
    audio at that path, or a removed track whose id beets gave to a new
    one); missing: no vector of this model; orphaned: a vector whose
    track left the library. ``--prune`` deletes stale and orphaned
    vectors in every store of this library, stores left empty (a model
    tried once, say), and the stores of earlier versions, which were not
    kept per library; only folders the plugin marked as its stores
    (``stores``). With ``pretend`` it says what it would delete and
    changes nothing: no file of the cache is written or removed.
    """
    current = settings.store(lib)
    try:
        lines = _report(settings, lib, current, prune, pretend)
    except OSError as exc:  # a full disk, a read-only cache
        raise CacheFolderError.of(current.root, exc) from exc
    for line in lines:
        ui.print_(line)


def _report(
    settings: ClapSettings,
    lib: Library,
    current: EmbeddingStore,
    prune: bool,
    pretend: bool,
) -> list[str]:
    keys = source_keys(lib)
    with lib.transaction() as tx:
        ids = {row[0] for row in tx.query("SELECT id FROM items")}
    lines = [f"model {settings.model} (store {current.tag}):"]
    mine = [current, *(s for s in stores(current.root) if s.tag != current.tag)]
    current_vectors: dict[int, str] = {}
    for store in mine:
        vectors = store.disk_keys(tidy=not pretend)
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
                f"{count(embedded, 'current vector')}, {len(stale)} stale, "
                f"{len(orphaned)} orphaned"
            )
            if not vectors and not prune:
                line += " (empty: --prune removes it)"
            lines.append(line)
        if prune:
            gone = {*orphaned, *stale}
            left = {i: k for i, k in vectors.items() if i not in gone}
            if pretend:
                lines.extend(pretend_prune(store, orphaned, stale, left))
            else:
                lines.extend(prune_store(store, orphaned, stale))
            vectors = left
        if store is current:
            current_vectors = vectors
    for old in stores(settings.cache_dir):  # before stores were per library
        if prune and pretend:
            lines.append(
                f"  would remove the store {old.tag} of an earlier version"
            )
        elif prune:
            shutil.rmtree(old.folder)
            lines.append(f"  removed the store {old.tag} of an earlier version")
        else:
            lines.append(
                f"  store {old.tag} of an earlier version: "
                f"{count(len(old.disk_keys()), 'vector')}, not used "
                "(--prune removes it)"
            )
    if current.folder.is_dir():
        index = current.index(write=not pretend)
        if index.item_keys() != current_vectors and not pretend:
            index = current.rebuild()  # vector files changed behind its back
        lines.append(
            f"  index: {count(len(index), 'vector')}{scan_line(index)}"
        )
    return lines


def scan_line(index: Index) -> str:
    """What the index's scan copy is, and for an inverted file (which is
    not exact) its recall, measured now."""
    if index.scan_kind != "ivf":
        return ""
    scan = index.engine
    lists = scan.shards[0].nlist
    return (
        f", an inverted file of {lists:,} groups scanning {scan.nprobe}: "
        f"recall@50 {measured_recall(index):.3f} over 20 queries "
        "(raise audiofeatures.clap.nprobe for more)"
    )


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
                f"  pruned {count(removed, f'{what} vector')} from {store.tag}"
            )
    if not len(store.disk_ids()) and is_store(store.folder):
        shutil.rmtree(store.folder)
        lines.append(f"  removed the empty store {store.tag}")
    elif orphaned or stale:
        store.index()
    return lines


def pretend_prune(
    store: EmbeddingStore,
    orphaned: list[int],
    stale: list[int],
    left: dict[int, str],
) -> list[str]:
    """What ``prune_store`` would do, one line each; nothing is done."""
    lines: list[str] = []
    if not store.folder.is_dir():
        return lines
    for ids, what in ((orphaned, "orphaned"), (stale, "stale")):
        if ids:
            lines.append(
                f"  would prune {count(len(ids), f'{what} vector')} from "
                f"{store.tag}"
            )
    if not left:
        lines.append(f"  would remove the empty store {store.tag}")
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
