"""The items of a beets query, a chunk at a time.

``lib.items()`` keeps every row of a result and, once iterated, every
``Item`` (about 5 KB each) until the result is dropped: on a 100k-track
library a command would carry half a gigabyte before its first track.
Here the query yields only ids (in SQL when beets can express it there),
and the items are fetched a chunk at a time from those ids.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from beets import context
from beets.dbcore.query import InQuery, ParsingError
from beets.library import Item
from beets.library.queries import parse_query_parts

from beets_audiofeatures.audio_files import FileIdentity
from beets_audiofeatures.errors import RequestError
from beets_audiofeatures.naming import folder_slug
from beetsplug.audiofeatures import input_limits

if TYPE_CHECKING:
    from beets.library import Album, Library

    from beets_audiofeatures.clap.index import SourceKeys

CHUNK = 500


def item_id(item: Item | Album) -> int:
    """The id of an item that comes from the library (it always has one)."""
    if item.id is None:
        raise ValueError(f"{item} is not in the library")
    return item.id


@contextlib.contextmanager
def user_query(query: Sequence[str]) -> Iterator[None]:
    """A query beets cannot parse, or one beyond the bounds SQLite
    takes (too many terms, a number beyond 64 bits), is the user's
    one-line error."""
    input_limits.query_terms(query, "the query")
    try:
        yield
    except ParsingError as exc:
        raise RequestError(
            f"invalid query {' '.join(query)!r}: {exc}"
        ) from None
    except OverflowError:  # SQLite's integers are 64-bit
        raise RequestError(
            f"invalid query {input_limits.shown_query(query)}: a number in it "
            f"is beyond {input_limits.MOST_INTEGER}"
        ) from None


def matching_albums(lib: Library, query: Sequence[str]) -> list[Album]:
    with user_query(query):
        return list(lib.albums(list(query)))


def matching_ids(lib: Library, query: Sequence[str]) -> list[int]:
    """Ids of the items ``query`` matches, ascending."""
    with user_query(query):
        return _matching_ids(lib, query)


def _matching_ids(lib: Library, query: Sequence[str]) -> list[int]:
    with context.music_dir(lib.directory):
        parsed, _sort = parse_query_parts(list(query), Item)
    where, values = parsed.clause()
    if where is None:  # a "slow" query: beets filters in Python
        return sorted(
            item.id for item in lib.items(list(query)) if item.id is not None
        )
    source = "items"
    if parsed.field_names & Item.other_db_fields:
        source += f" {Item.relation_join}"
    sql = (
        f"SELECT items.id FROM ({source}) WHERE {where} "
        "GROUP BY items.id ORDER BY items.id"
    )
    with lib.transaction() as tx:
        return [row[0] for row in tx.query(sql, values)]


def item_chunks(
    lib: Library, ids: Sequence[int], size: int = CHUNK
) -> Iterator[list[Item]]:
    """The items with these ids, ``size`` at a time, in id order."""
    ordered = sorted(ids)
    for start in range(0, len(ordered), size):
        chunk = ordered[start : start + size]
        wanted = set(chunk)
        found = lib.items(f"id:{chunk[0]}..{chunk[-1]}")
        yield sorted(
            (item for item in found if item.id in wanted),
            key=lambda item: item.id or 0,
        )


def items_by_id(lib: Library, ids: Sequence[int]) -> dict[int, Item]:
    """The items with these (scattered) ids, a few hundred per query;
    ids no longer in the library are left out."""
    found: dict[int, Item] = {}
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        # One ``id IN (...)``: half the time of as many ``id = ?`` ORed.
        query = InQuery("id", [int(number) for number in part])
        for item in lib.items(query):
            found[item_id(item)] = item
    return found


def item_fields(
    lib: Library, ids: Sequence[int], names: Sequence[str]
) -> dict[int, dict[str, Any]]:
    """These fields of the items with these ids (those still in the
    library), by id, as each ``Item`` gives them with ``with_album=False``
    (through beets' types; a flexible field a track lacks is None, and
    one is found by its exact name), read a few hundred per SQL query:
    no ``Item`` is built (building one costs more than reading the few
    fields a caller needs)."""
    fixed = [name for name in names if name in Item._fields]
    flexible = [name for name in names if name not in Item._fields]
    joins = "".join(
        f"LEFT JOIN item_attributes AS flex{n} ON flex{n}.entity_id = "
        f"items.id AND flex{n}.key = ? "
        for n in range(len(flexible))
    )
    columns = ", ".join(
        ["items.id", *(f"items.{name}" for name in fixed)]
        + [f"flex{n}.value" for n in range(len(flexible))]
    )
    kinds = [(name, Item._type(name)) for name in fixed]
    flexible_kinds = [(name, Item._type(name)) for name in flexible]
    found: dict[int, dict[str, Any]] = {}
    # a path's value is made absolute against this library's directory
    with lib.transaction() as tx, context.music_dir(lib.directory):
        for start in range(0, len(ids), CHUNK):
            part = [int(number) for number in ids[start : start + CHUNK]]
            rows = tx.query(
                f"SELECT {columns} FROM items {joins}WHERE items.id IN "
                f"({', '.join('?' * len(part))})",
                (*flexible, *part),
            )
            for number, *values in rows:
                fields = {
                    name: kind.from_sql(value)
                    for (name, kind), value in zip(
                        kinds, values[: len(fixed)], strict=True
                    )
                }
                for (name, kind), value in zip(
                    flexible_kinds, values[len(fixed) :], strict=True
                ):
                    fields[name] = (
                        None if value is None else kind.from_sql(value)
                    )
                found[number] = fields
    return found


def each_item(lib: Library, ids: Sequence[int]) -> Iterator[Item]:
    """The items with these ids, one by one, loaded a chunk at a time."""
    for chunk in item_chunks(lib, ids):
        yield from chunk


def audio_fingerprint(item: Item | Mapping[str, Any]) -> str:
    """The audio as beets last read it from the file: new audio at the
    same path (``beet update`` after a re-rip) changes it, a tag edit
    does not. Values computed from other audio are stale."""
    return (
        f"{item['format']} {item['samplerate']} Hz {item['channels']} ch "
        f"{item['bitdepth']} bit {item['bitrate']} bps "
        f"{float(item['length']):.3f} s"
    )


#: The fields a source key is made of: the plugin's name for the track,
#: the audio columns ``audio_fingerprint`` reads and the file the last
#: vector was computed from.
UID = "clap_uid"
AUDIO_FIELDS = (
    "format", "samplerate", "channels", "bitdepth", "bitrate", "length",
)  # fmt: skip
#: The file (``FileIdentity``) the track's last vector was computed from.
CLAP_FILE = "clap_file"
#: Marks a file recorded for a vector embedded before files were: that
#: vector's key holds no digest, and it keeps the key it was filed under.
UNKEYED = "unkeyed"


def new_uid() -> str:
    return uuid.uuid4().hex[:16]


def claimed_uid(lib: Library, item: Item) -> str:
    """The track's ``clap_uid`` as the library holds it now (another run
    may have given it one since ``item`` was read), else the one it
    has, else a new one."""
    with lib.transaction() as tx:
        rows = tx.query(
            "SELECT value FROM item_attributes WHERE entity_id = ? AND key = ?",
            (item_id(item), UID),
        )
    held = rows[0][0] if rows else None
    return str(held or item.get(UID, with_album=False) or new_uid())


def recorded_file(value: object) -> tuple[FileIdentity | None, bool]:
    """The file a ``clap_file`` value records, and whether the vector's
    key holds its audio digest."""
    if not isinstance(value, str):
        return None, False
    parts = value.split()
    keyed = parts[3:] != [UNKEYED]
    return FileIdentity.parse(" ".join(parts[:3])), keyed


def file_record(identity: FileIdentity, keyed: bool = True) -> str:
    return str(identity) + ("" if keyed else f" {UNKEYED}")


def source_key(item: Item | Mapping[str, Any]) -> str | None:
    """What a stored vector was computed from, in 16 hex digits: the
    track, by the random ``clap_uid`` it got with its first vector (an id
    SQLite hands to a new track after a removal, or the same id in
    another library, is another track), its audio
    (``audio_fingerprint``) and the digest of the audio in its file
    (``clap_file``: a re-ripped WAV, AIFF or constant-bitrate MP3 of the
    same length has the same audio columns). None before the track has
    a uid. A vector whose key is not the track's current one is stale."""
    # The track's own fields: an album never has them, and asking its
    # album (beets' default) costs a query per track.
    if isinstance(item, Item):
        uid = item.get(UID, with_album=False)
        recorded = item.get(CLAP_FILE, with_album=False)
    else:
        uid, recorded = item[UID], item.get(CLAP_FILE)
    if not uid:
        return None
    text = f"{uid} {audio_fingerprint(item)}"
    identity, keyed = recorded_file(recorded)
    if identity is not None and keyed and identity.digest:
        text += f" {identity.digest}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def source_keys(lib: Library, ids: Collection[int] | None = None) -> SourceKeys:
    """``source_key`` of every item (or of ``ids``) that has one, by id,
    in one SQL pass: the values go through beets' own types, as on an
    ``Item``."""
    # numpy's, loaded by the commands that read vectors, not by beet ls
    from beets_audiofeatures.clap.index import SourceKeys

    types = [Item._type(name) for name in AUDIO_FIELDS]
    columns = ", ".join(f"items.{name}" for name in AUDIO_FIELDS)
    wanted = None if ids is None else set(ids)
    keys = {}
    with lib.transaction() as tx:
        rows = tx.query(
            f"SELECT items.id, uid.value, file.value, {columns} FROM items "
            "JOIN item_attributes AS uid ON uid.entity_id = items.id "
            "AND uid.key = ? LEFT JOIN item_attributes AS file "
            "ON file.entity_id = items.id AND file.key = ?",
            (UID, CLAP_FILE),
        )
        for row in rows:
            if wanted is not None and row[0] not in wanted:
                continue
            values = {
                name: kind.from_sql(value)
                for name, kind, value in zip(
                    AUDIO_FIELDS, types, row[3:], strict=True
                )
            }
            if key := source_key({UID: row[1], CLAP_FILE: row[2], **values}):
                keys[row[0]] = key
    return SourceKeys(keys)


def library_name(database: str | bytes | os.PathLike[str]) -> str:
    """A folder name for a library database (``lib.path``): its file
    name and a digest of its full path, so two libraries never share a
    folder."""
    path = os.fsdecode(database)
    if path == ":memory:":
        return "memory"
    full = os.path.realpath(os.path.expanduser(path))
    stem = folder_slug(Path(full).stem, "library")
    return f"{stem}-{hashlib.sha256(full.encode()).hexdigest()[:10]}"


def dump_path(
    item: Item, lib: Library, dump_dir: Path, suffix: str = ".json"
) -> bytes:
    """Where ``--dump`` puts an item's output: the file's path relative to
    the library directory, under ``dump_dir``, with ``suffix`` added. A
    file outside the library directory (``copy: no`` imports) is mirrored
    by its whole absolute path."""
    path = os.path.realpath(item.path)
    root = os.path.join(os.path.realpath(lib.directory), b"")
    relative = path[len(root) :] if path.startswith(root) else path.lstrip(b"/")
    return os.path.join(os.fsencode(dump_dir), relative) + suffix.encode()
