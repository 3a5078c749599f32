"""The on-disk store of CLAP vectors: one ``.npy`` per track plus an index.

Layout, one folder per model + audio pipeline (its *tag*), so vectors of
different models never mix::

    <root>/<tag>/model.json           what made these vectors
    <root>/<tag>/.beets-audiofeatures the plugin's mark: its own folder
    <root>/<tag>/vectors/0012/12345.<key>.npy  item 12345, a unit vector
    <root>/<tag>/journal              "+12345 <key>" / "-12345", per change
    <root>/<tag>/index.json           the index's generation (``index``)
    <root>/<tag>/index-<gen>.*        all vectors as one matrix, their
                                      ids and keys, rows masked since
    <root>/<tag>/prompts/<sha>.npy    cached text vectors

A vector's *key* names what it was computed from (the caller's digest
of the track's file state): a vector whose key is not the track's
current one is stale and is never used as current. An item holds at
most one vector per store; storing a new one replaces the old file.

Every file is written to a temporary name and renamed into place, so a
crash leaves either the old or the new file. A vector is written before
its journal line, and the journal is replayed into the index by the next
reader, so the index never misses a finished vector; replaying twice is
harmless. Changes are appended to the index (the item's old row masked)
until they pass a share of it; then it is merged into a new generation.
Writers hold a file lock; the index matrix is memory-mapped.

An empty index is a valid index. A damaged one (unreadable, cut short,
out of step with its journal, or of another dimension than the vectors)
is rebuilt from the vector files with one warning, and a vector file
that cannot be read, or whose size differs from the store's, is removed
so the next ``beet clap`` embeds that track again.

Only folders holding the plugin's mark (or, made before the mark, a
``model.json`` whose digest is the folder's own name) count as stores:
``stores`` lists nothing else, so ``--prune`` never removes a folder of
another program.

A cache that cannot be written (read-only) is still searched: the
journal is folded into the saved index in memory, with no lock taken
(``index(write=False)``, which ``--pretend`` uses too). A full disk is
one line (``CacheFolderError``).

Nothing here imports beets: items are known by their integer ids and
keys, which also means no path from the library ever becomes a path in
the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
from filelock import FileLock

from ..atomic_files import atomic_save, atomic_write_text
from ..errors import READ_ONLY, CacheFolderError
from .engine import ScanOptions
from .identity import model_tag
from .index import (
    KEY_DTYPE,
    DamagedIndexError,
    Index,
    append_index,
    as_index,
    dim,
    is_key,
    load_index,
    read_journal,
    write_index,
)

SHARD = 1000
#: Indexes below this many rows are rewritten whole on every change.
MERGE_MIN_ROWS = 20_000
#: Appended plus masked rows, as a share of the base, that make the
#: next change a merge into a new generation.
MERGE_SHARE = 0.05
#: Rows gathered at a time by a merge.
MERGE_CHUNK = 100_000
log = logging.getLogger(__name__)
#: The file that marks a folder as a store the plugin made.
MARK = ".beets-audiofeatures"
MARK_TEXT = "a CLAP vector store of beets-audiofeatures\n"


def _warn(message: str) -> None:
    """One line on the log (beets' own when beets runs: the plugin routes
    the core's log there)."""
    log.warning("%s", message)


class EmbeddingStore:
    """Vectors of one model + pipeline, keyed by beets item id."""

    def __init__(
        self, root: Path, tag: str, scan: ScanOptions | None = None
    ) -> None:
        self.root = Path(root)
        self.tag = tag
        self.scan = scan or ScanOptions()
        self.folder = self.root / tag
        self._lock = FileLock(str(self.folder / ".lock"))

    # -- per-track vectors ----------------------------------------------

    def open(self, identity: dict[str, Any]) -> EmbeddingStore:
        """Create the folders, mark them as the plugin's and record what
        makes these vectors."""
        (self.folder / "vectors").mkdir(parents=True, exist_ok=True)
        if not is_marked(self.folder):
            atomic_write_text(self.folder / MARK, MARK_TEXT)
        description = self.folder / "model.json"
        if not description.exists():
            atomic_write_text(
                description, json.dumps(identity, indent=2, sort_keys=True)
            )
        return self

    def vector_path(self, item_id: int, key: str = "") -> Path:
        number = int(item_id)
        if number < 0:
            raise ValueError(f"not an item id: {item_id}")
        if not is_key(key):
            raise ValueError(f"not a vector key: {key!r}")
        name = f"{number}.{key}.npy" if key else f"{number}.npy"
        return self.folder / "vectors" / f"{number // SHARD:04d}" / name

    def put(self, item_id: int, vector: np.ndarray, key: str = "") -> None:
        """Store the item's vector (computed from ``key``), replacing the
        one it had."""
        vector = np.asarray(vector, np.float32)
        if vector.ndim != 1 or not np.isfinite(vector).all():
            raise ValueError(
                f"bad vector for item {item_id}: shape {vector.shape}"
            )
        path = self.vector_path(item_id, key)
        # Locked: two runs storing the item at once under two keys would
        # each remove the other's file, and leave none.
        with self.writing():
            atomic_save(path, vector)
            for old in self._files_of(int(item_id)).values():
                if old != path:
                    old.unlink(missing_ok=True)
            self._journal([f"+{int(item_id)} {key}".rstrip()])

    def writing(self) -> FileLock:
        """The store's writers' lock (across processes; a holder may take
        it again): what a caller must decide with no other run changing
        the store in between."""
        return self._lock

    def get(self, item_id: int, key: str = "") -> np.ndarray | None:
        """The item's vector computed from ``key``; None if there is none."""
        return _load(self.vector_path(item_id, key))

    def has(self, item_id: int, key: str = "") -> bool:
        return self.vector_path(item_id, key).is_file()

    def discard(self, item_ids: Iterable[int]) -> int:
        """Delete the vectors of these items; how many items had one."""
        removed = []
        for item_id in item_ids:
            files = self._files_of(int(item_id))
            for path in files.values():
                path.unlink(missing_ok=True)
            if files:
                removed.append(f"-{int(item_id)}")
        if removed:
            self._journal(removed)
        return len(removed)

    def _files_of(self, item_id: int) -> dict[str, Path]:
        """The item's vector files by key (one, but for a crash between
        writing a new file and removing the old)."""
        shard = self.vector_path(item_id).parent
        try:
            entries = list(os.scandir(shard))
        except FileNotFoundError:
            return {}
        prefix = f"{item_id}."
        return {
            parsed[1]: Path(entry.path)
            for entry in entries
            if entry.name.startswith(prefix)
            and (parsed := _vector_name(entry.name))
            and parsed[0] == item_id
        }

    def _newest_key(self, item_id: int) -> str | None:
        """The key of the item's newest vector file, None without one."""
        dated = []
        for key, path in self._files_of(item_id).items():
            with contextlib.suppress(OSError):
                dated.append((path.stat().st_mtime, key))
        return max(dated)[1] if dated else None

    def disk_keys(self, tidy: bool = True) -> dict[int, str]:
        """Every item with a vector file, and its key. An item left with
        two files (a crash between writing the new one and removing the
        old) keeps the newer (the older is removed, unless ``tidy`` is
        False)."""
        found: dict[int, tuple[float, str]] = {}
        vectors = self.folder / "vectors"
        if not vectors.is_dir():
            return {}
        for shard in os.scandir(vectors):
            if not shard.is_dir():
                continue
            for entry in os.scandir(shard.path):
                if (parsed := _vector_name(entry.name)) is None:
                    continue
                item_id, key = parsed
                with contextlib.suppress(OSError):
                    when = entry.stat().st_mtime
                    if item_id in found:
                        older, other = sorted([found[item_id], (when, key)])
                        if tidy:
                            self.vector_path(item_id, older[1]).unlink(
                                missing_ok=True
                            )
                        found[item_id] = other
                    else:
                        found[item_id] = (when, key)
        return {item_id: key for item_id, (_, key) in found.items()}

    def disk_ids(self) -> np.ndarray:
        """Item ids that have a vector file, sorted."""
        return np.array(sorted(self.disk_keys()), np.int64)

    def _journal(self, lines: list[str]) -> None:
        with self._lock, open(self.folder / "journal", "ab+") as journal:
            # A crash mid-line leaves a fragment: end it first.
            journal.seek(0, os.SEEK_END)
            if journal.tell():
                journal.seek(-1, os.SEEK_END)
                if journal.read(1) != b"\n":
                    journal.write(b"\n")
            journal.write(("\n".join(lines) + "\n").encode())
            journal.flush()
            os.fsync(journal.fileno())

    # -- the index ------------------------------------------------------

    def index(self, write: bool = True) -> Index:
        """The up-to-date index: the journal folded into the saved one,
        or a full rebuild (with a warning) when the saved one is
        damaged. A saved index with nothing to fold is read without the
        lock, so readers never wait for a writer's merge. Without
        ``write``, or when the cache is read-only, the folding is done
        in memory and nothing is written or locked."""
        if not write:
            return self._index_in_memory()
        try:
            saved = load_index(self.folder, self.scan)
            if saved is not None and self._is_current(*saved):
                return saved[0]
        except DamagedIndexError:
            pass  # perhaps a writer's merge in between: look again, locked
        try:
            with self._lock:
                try:
                    return self._current_index()
                except DamagedIndexError as exc:
                    index = self._write(*self._scan())
                    _warn(
                        f"the CLAP index in {self.folder} was damaged "
                        f"({exc}); rebuilt it from the {len(index)} vector "
                        "files"
                    )
                    return index
        except OSError as exc:
            if exc.errno in READ_ONLY:
                return self._index_in_memory()
            if exc.errno is None:
                raise
            raise CacheFolderError.of(self.folder, exc) from exc

    def rebuild(self) -> Index:
        try:
            with self._lock:
                return self._write(*self._scan())
        except OSError as exc:
            raise CacheFolderError.of(self.folder, exc) from exc

    def _index_in_memory(self) -> Index:
        """The index as the next writer would fold it, built in memory:
        nothing is written, removed or locked."""
        try:
            saved = load_index(self.folder, self.scan)
            if saved is None:
                return Index(*self._scan(tidy=False))
            index, offset = saved
            size = self._journal_size()
            if offset > size:
                raise DamagedIndexError(
                    "its journal is shorter than it records"
                )
            if offset == size:
                return index
            added, removed = read_journal(self.folder, offset)
            new = self._added_vectors(added)
            _check_dimension(index, new)
            masked = index.positions(
                np.fromiter(set(added) | removed, np.int64)
            )
            return _appended(index, new, masked)
        except DamagedIndexError as exc:
            index = Index(*self._scan(tidy=False))
            _warn(
                f"the CLAP index in {self.folder} is damaged ({exc}) and "
                f"cannot be rebuilt now: searched its {len(index)} vector "
                "files instead"
            )
            return index

    def _write(
        self, ids: np.ndarray, matrix: np.ndarray, keys: np.ndarray
    ) -> Index:
        return write_index(self.folder, ids, matrix, keys, self.scan)

    def _is_current(self, index: Index, offset: int) -> bool:
        """Whether the saved index holds the whole journal, with the
        kind of scan copy asked for."""
        return offset == self._journal_size() and self._has_wanted_scan(index)

    def _has_wanted_scan(self, index: Index) -> bool:
        return index.scan_kind == self.scan.wanted(index.base)

    def _journal_size(self) -> int:
        try:
            return (self.folder / "journal").stat().st_size
        except FileNotFoundError:
            return 0

    def _current_index(self) -> Index:
        saved = load_index(self.folder, self.scan)
        size = self._journal_size()
        if saved is None:  # never written: nothing to warn about
            return self._write(*self._scan())
        index, offset = saved
        if offset > size:
            raise DamagedIndexError("its journal is shorter than it records")
        if self._is_current(index, offset):
            return index
        added, removed = read_journal(self.folder, offset)
        new = self._added_vectors(added)
        _check_dimension(index, new)
        masked = index.positions(np.fromiter(set(added) | removed, np.int64))
        if should_merge(
            index, len(new[0]), len(masked)
        ) or not self._has_wanted_scan(index):
            return self._write(*_merged(index, masked, new))
        return append_index(self.folder, new, masked, size, self.scan)

    def _scan(
        self, tidy: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every vector file read into a new index. Files that cannot be
        read, or whose size is not the store's (the most common one), are
        removed (left alone, unless ``tidy``): their tracks count as not
        embedded and are embedded again by the next run."""
        found: dict[int, np.ndarray] = {}
        bad = []
        keys = self.disk_keys(tidy)
        for item_id, key in keys.items():
            vector = self.get(item_id, key)
            if _is_vector(vector):
                found[item_id] = vector
            else:
                bad.append(item_id)
        sizes = Counter(len(vector) for vector in found.values())
        if len(sizes) > 1:
            size = sizes.most_common(1)[0][0]
            bad += [i for i, vector in found.items() if len(vector) != size]
            found = {i: v for i, v in found.items() if len(v) == size}
        if bad and tidy:
            for item_id in bad:
                self.vector_path(item_id, keys[item_id]).unlink(missing_ok=True)
            _warn(
                f"removed {len(bad)} damaged vector files from {self.folder} "
                f"(items {_some(sorted(bad))}); beet clap embeds them again"
            )
        ids = sorted(found)
        return as_index(ids, [found[i] for i in ids], [keys[i] for i in ids])

    def _added_vectors(
        self, added: dict[int, str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The vectors the journal added (ids, rows, keys; sorted by id):
        each from its file, or from the file that replaced it since."""
        new_ids = []
        new_rows = []
        new_keys = []
        for item_id, key in sorted(added.items()):
            vector = self.get(item_id, key)
            if vector is None and not self.has(item_id, key):
                # Replaced again since (its line follows), or removed
                # (its "-" line follows).
                newer = self._newest_key(item_id)
                if newer is None:
                    continue
                key, vector = newer, self.get(item_id, newer)
            if not _is_vector(vector):
                raise DamagedIndexError(
                    f"the vector file of item {item_id} cannot be read"
                )
            new_ids.append(item_id)
            new_rows.append(vector)
            new_keys.append(key)
        try:
            return as_index(new_ids, new_rows, new_keys)
        except ValueError as exc:
            raise DamagedIndexError(str(exc)) from exc

    # -- prompts ----------------------------------------------------------

    def get_logit_scale(self) -> float | None:
        try:
            return float(
                json.loads((self.folder / "logit_scale.json").read_text())
            )
        except (OSError, ValueError):
            return None

    def put_logit_scale(self, value: float) -> None:
        """Remember the model's logit scale, if the cache can be written
        (a read-only or full one works without)."""
        with contextlib.suppress(OSError):
            atomic_write_text(
                self.folder / "logit_scale.json", json.dumps(value)
            )

    def prompt_path(self, text: str, tokenizer: str = "") -> Path:
        """Where a prompt's vector is cached: by its text and what made
        its tokens (the weights are the store's)."""
        source = f"{tokenizer}\n{text}" if tokenizer else text
        digest = hashlib.sha256(source.encode()).hexdigest()[:32]
        return self.folder / "prompts" / f"{digest}.npy"

    def get_prompt(self, text: str, tokenizer: str = "") -> np.ndarray | None:
        return _load(self.prompt_path(text, tokenizer))

    def put_prompt(
        self, text: str, vector: np.ndarray, tokenizer: str = ""
    ) -> None:
        """Cache a prompt's vector, if the cache can be written (a
        read-only or full one computes it again next time)."""
        with contextlib.suppress(OSError):
            atomic_save(
                self.prompt_path(text, tokenizer),
                np.asarray(vector, np.float32),
            )


def should_merge(index: Index, added: int, masked: int) -> bool:
    """Whether folding changes writes a new generation rather than
    appending: always for a small index (rewriting it costs less than a
    scan of its appended rows), and once the appended and masked rows
    pass ``MERGE_SHARE`` of the base."""
    rows = index.size + added
    if rows < MERGE_MIN_ROWS:
        return True
    waste = index.appended + added + (index.size - len(index)) + masked
    return waste > MERGE_SHARE * index.base


def _merged(
    index: Index,
    masked: np.ndarray,
    new: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The index's live rows less ``masked``, and the new rows, sorted
    by id. The matrix is gathered once into its place, a part at a time:
    a million rows are 2 GB, and concatenating and then reordering them
    held three copies."""
    keep = (
        np.ones(index.size, bool) if index.live is None else index.live.copy()
    )
    keep[masked] = False
    ids, rows, keys = new
    if not keep.any():  # an empty index fits any dimension
        return ids, rows, keys
    kept = np.flatnonzero(keep)
    all_ids = np.concatenate([index.ids[kept], ids])
    order = np.argsort(all_ids, kind="stable")
    # Where each row comes from: a row of the index, or (past its size)
    # one of the new rows.
    sources = np.concatenate([kept, index.size + np.arange(len(ids))])[order]
    matrix = np.empty((len(sources), dim(index.matrix)), np.float32)
    for start in range(0, len(sources), MERGE_CHUNK):
        part = sources[start : start + MERGE_CHUNK]
        target = matrix[start : start + MERGE_CHUNK]
        old = part < index.size
        target[old] = index.matrix[part[old]]
        if len(ids):
            target[~old] = rows[part[~old] - index.size]
    all_keys = np.concatenate([index.keys[kept], keys]).astype(KEY_DTYPE)
    return all_ids[order], matrix, all_keys[order]


def stores(root: Path) -> Iterator[EmbeddingStore]:
    """Every model's store under a cache directory: the folders the
    plugin made, and no other."""
    if Path(root).is_dir():
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False) and is_store(
                Path(entry.path)
            ):
                yield EmbeddingStore(Path(root), entry.name)


def is_marked(folder: Path) -> bool:
    """Whether the folder holds the plugin's mark."""
    try:
        return (folder / MARK).read_text(encoding="utf-8") == MARK_TEXT
    except (OSError, ValueError):
        return False


def is_store(folder: Path) -> bool:
    """Whether the plugin made this folder as a store: it holds the
    mark, or (a store made before the mark) a ``model.json`` whose
    digest is the folder's name, which no other program's folder has."""
    if is_marked(folder):
        return True
    try:
        identity = json.loads((folder / "model.json").read_text("utf-8"))
        return isinstance(identity, dict) and model_tag(identity) == folder.name
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _check_dimension(
    index: Index, new: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    if len(new[0]) and len(index) and new[1].shape[1] != dim(index.matrix):
        raise DamagedIndexError(
            f"new vectors have {new[1].shape[1]} values, the index "
            f"{dim(index.matrix)}"
        )


def _appended(
    index: Index,
    new: tuple[np.ndarray, np.ndarray, np.ndarray],
    masked: np.ndarray,
) -> Index:
    """The index with the rows ``new`` appended and ``masked`` masked,
    in memory (what ``append_index`` writes)."""
    ids, rows, keys = new
    if not index.size:
        return Index(ids, rows, keys)
    live = np.ones(index.size + len(ids), bool)
    if index.live is not None:
        live[: index.size] = index.live
    live[masked] = False
    matrix = index.matrix
    if len(ids):  # a copy: the saved rows cannot be extended in place
        matrix = np.concatenate([np.asarray(index.matrix), rows])
    return Index(
        np.concatenate([index.ids, ids]),
        matrix,
        np.concatenate([index.keys, keys]).astype(KEY_DTYPE),
        None if live.all() else live,
        index.base,
        index.engine,
    )


def _load(path: Path) -> np.ndarray | None:
    """A saved array, or None when it is missing or unreadable."""
    try:
        array: np.ndarray = np.load(path)
    except (OSError, ValueError):
        return None
    return array


def _is_vector(vector: np.ndarray | None) -> TypeGuard[np.ndarray]:
    return (
        vector is not None
        and vector.ndim == 1
        and len(vector) > 0
        and vector.dtype.kind == "f"
        and bool(np.isfinite(vector).all())
    )


def _vector_name(name: str) -> tuple[int, str] | None:
    """``12345.<key>.npy`` (or ``12345.npy``) as (item id, key)."""
    stem, _dot, rest = name.partition(".")
    key, _dot, ext = rest.rpartition(".")
    if ext != "npy" or not stem.isdigit() or not is_key(key):
        return None
    return int(stem), key


def _some(ids: list[int], shown: int = 5) -> str:
    text = ", ".join(map(str, ids[:shown]))
    return text + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
