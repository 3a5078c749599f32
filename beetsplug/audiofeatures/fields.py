"""beets field types for the descriptor table.

One type object per kind and precision, shared by every field and by
the item and album tables: beets compares plugin field types by
identity, so shared objects never raise ``PluginConflictError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import mediafile
from beets.dbcore import types
from beets.dbcore.query import FieldQuery

from beets_audiofeatures.essentia.descriptors import (
    AGGREGATED,
    DESCRIPTORS,
    Kind,
    svm_fields,
)
from beets_audiofeatures.keys import normalize_key, parse_key


class KeyQuery(FieldQuery[str]):
    """Exact key match, whatever the spelling: ``Abm`` finds ``G#m``,
    ``8A`` and ``1m`` find ``Am``; ``A`` finds only A major."""

    def col_clause(self) -> tuple[str, Sequence[Any]]:
        return f"{self.field} = ?", [
            normalize_key(self.pattern) or self.pattern
        ]

    @classmethod
    def value_match(cls, pattern: str, value: Any) -> bool:
        if value is None:
            return False
        wanted = normalize_key(pattern)
        return wanted is not None and wanted == normalize_key(str(value))


class KeyType(types.MusicalKey):
    query = KeyQuery  # type: ignore[assignment]

    def parse(self, key: str) -> str | None:
        return normalize_key(key) or key


KEY = KeyType()
INTEGER = types.NullInteger()
_FLOATS = {digits: types.NullFloat(digits) for digits in range(4)}


_BY_KIND: dict[Kind, types.Type[Any, Any]] = {
    Kind.INTEGER: INTEGER,
    Kind.KEY: KEY,
    Kind.STRING: types.STRING,
    Kind.DATE: types.DATE,
}


def type_for(kind: Kind, digits: int = 3) -> types.Type[Any, Any]:
    return _FLOATS[digits] if kind is Kind.FLOAT else _BY_KIND[kind]


ITEM_TYPES: dict[str, types.Type[Any, Any]] = {
    d.field: type_for(d.kind, d.digits) for d in DESCRIPTORS
} | {name: type_for(kind) for name, kind in svm_fields().items()}
STRING = types.STRING
#: Class probabilities (classifier heads, zero-shot tags).
PROBABILITY = _FLOATS[3]

ITEM_TYPES |= {
    "essentia_classifiers": types.STRING,
    "essentia_svm_models": types.STRING,
    "essentia_moods": types.STRING,
    "clap_model": types.STRING,
    "clap_embedded": types.DATE,
    # A random name the track gets with its first vector; see
    # library_query.source_key.
    "clap_uid": types.STRING,
    # The file the last vector was computed from; see
    # library_query.source_key.
    "clap_file": types.STRING,
    # Never stored: set on the results of ``beet clapquery`` for -f.
    "clap_score": _FLOATS[3],
}

ALBUM_TYPES: dict[str, types.Type[Any, Any]] = {
    d.album_field: ITEM_TYPES[d.field] for d in AGGREGATED
}


#: The MOOD tag players read, filled from the mood classifiers.
MOOD_TAG = mediafile.MediaField(
    mediafile.MP3StorageStyle("TMOO"),
    mediafile.MP4StorageStyle("----:com.apple.iTunes:MOOD"),
    mediafile.StorageStyle("MOOD"),
    mediafile.ASFStorageStyle("WM/Mood"),
)


def key_code(code: str) -> Callable[[str], str]:
    """A template function (``%camelot{$essentia_key}``): the key in
    another notation, ``camelot`` or ``open_key``; empty for no key."""

    def render(text: str) -> str:
        key = parse_key(text) if text else None
        return str(getattr(key, code)) if key else ""

    return render
