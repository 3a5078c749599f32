"""beets field types for the descriptor table.

One type object per kind and precision, shared by every field and by
the item and album tables: beets compares plugin field types by
identity, so shared objects never raise ``PluginConflictError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

import mediafile
from beets.dbcore import types
from beets.dbcore.query import FieldQuery, NumericQuery
from beets.exceptions import UserError

from beets_audiofeatures.essentia.descriptors import (
    AGGREGATED,
    DESCRIPTORS,
    Kind,
    svm_fields,
)
from beets_audiofeatures.keys import (
    SPELLINGS,
    key_pattern,
    not_a_key,
    parse_key,
    spell_key,
)

if TYPE_CHECKING:
    from beets.dbcore.db import Model
    from beets.dbcore.types import SQLiteType


class KeyQuery(FieldQuery[str]):
    """Keys, whatever the spelling of the pattern or the stored value:
    ``Abm`` finds ``G#m``, ``8A`` and ``1m`` find ``Am``, ``A`` finds only
    A major; ``8A~`` finds 8A and its Camelot neighbours, ``9A..10A`` a
    range round the wheel. A pattern that names no key is the user's one
    line, not an empty result."""

    def __init__(self, field_name: str, pattern: str, fast: bool = True):
        super().__init__(field_name, pattern, fast)
        keys = key_pattern(pattern)
        if keys is None:
            raise UserError(not_a_key(self.field_name, pattern))
        self.keys = keys

    def col_clause(self) -> tuple[str, Sequence[SQLiteType]]:
        spellings = sorted(
            {text for key in self.keys for text in key.spellings()}
        )
        marks = ", ".join("?" * len(spellings))
        return f"{self.field} IN ({marks})", spellings

    def match(self, obj: Model) -> bool:
        value = obj.get(self.field_name)
        return value is not None and parse_key(str(value)) in self.keys

    @classmethod
    def value_match(cls, pattern: str, value: Any) -> bool:
        keys = key_pattern(pattern)
        if value is None or keys is None:
            return False
        return parse_key(str(value)) in keys


class MeasuredQuery(NumericQuery):
    """beets' numeric query, where a value emptied by ``beet modify
    essentia_bpm=`` (stored as null) is no number in any range: beets'
    own compares it with the range and raises ``TypeError``."""

    def match(self, obj: Model) -> bool:
        if obj.get(self.field_name) is None:
            return False
        return super().match(obj)


class TempoQuery(MeasuredQuery):
    """Tempos as a DJ counts them: ``essentia_bpm:85~`` finds the tempos
    within ``TOLERANCE`` of 85 and of its half and double (42.5, 170),
    ``120..130~`` also 60..65 and 240..260. Without ``~``, beets' own
    numeric query."""

    #: Acc1's tolerance in the accuracy benchmark: two readings of one
    #: pulse.
    TOLERANCE = 0.04
    OCTAVES = (0.5, 1.0, 2.0)

    def __init__(self, field_name: str, pattern: str, fast: bool = True):
        octaves = pattern.endswith("~")
        super().__init__(field_name, pattern.removesuffix("~"), fast)
        self.pattern = pattern
        self.bands: list[tuple[float | None, float | None]] = []
        if octaves:
            low, high = self.rangemin, self.rangemax
            if self.point is not None:
                low = self.point * (1 - self.TOLERANCE)
                high = self.point * (1 + self.TOLERANCE)
            self.bands = [
                (None if low is None else low * factor,
                 None if high is None else high * factor)
                for factor in self.OCTAVES
            ]  # fmt: skip

    def match(self, obj: Model) -> bool:
        if not self.bands:
            return super().match(obj)
        value = obj.get(self.field_name)
        if value is None or value == "":
            return False
        tempo = float(value)
        return any(
            (low is None or tempo >= low) and (high is None or tempo <= high)
            for low, high in self.bands
        )

    def col_clause(self) -> tuple[str, Sequence[SQLiteType]]:
        if not self.bands:
            return super().col_clause()
        clauses, values = [], []
        for low, high in self.bands:
            bounds = []
            if low is not None:
                bounds.append(f"{self.field} >= ?")
                values.append(low)
            if high is not None:
                bounds.append(f"{self.field} <= ?")
                values.append(high)
            clauses.append(" AND ".join(bounds) or "1")
        either = " OR ".join(f"({clause})" for clause in clauses)
        return f"({either})", values


def _number(
    string: str, model_type: type[int] | type[float], field: str
) -> Any:
    """A typed number, or None for an emptied field; a value that is no
    number is refused with one line (beets would store it as empty, and
    the measurement would be lost without a word)."""
    if not string.strip():
        return None  # emptied on purpose
    try:
        return model_type(string)
    except ValueError:
        named = f"{field}: " if field else ""
        number = "a whole number" if model_type is int else "a number"
        raise UserError(f"{named}{string!r} is not {number}") from None


class MeasuredFloat(types.NullFloat):
    """A measured number: a query never trips on an emptied value, and
    ``beet modify`` refuses a value that is no number."""

    query = MeasuredQuery

    def __init__(self, digits: int, field: str = "") -> None:
        super().__init__(digits)
        self.field = field  # for the line that refuses a non-number

    def parse(self, string: str) -> float | None:
        return cast("float | None", _number(string, float, self.field))


class MeasuredInteger(types.NullInteger):
    """A counted number, as :class:`MeasuredFloat`."""

    query = MeasuredQuery

    def __init__(self, field: str = "") -> None:
        super().__init__()
        self.field = field

    def parse(self, string: str) -> int | None:
        return cast("int | None", _number(string, int, self.field))


class TempoType(MeasuredFloat):
    query = TempoQuery


def standard_spelling() -> str:
    return SPELLINGS[0]


class KeyType(types.MusicalKey):
    """A key as stored: read back as written (beets' own ``initial_key``
    type turns every value into sharps), and typed by a user (``beet
    modify essentia_key=8A``) in the configured ``key_spelling``."""

    query = KeyQuery  # type: ignore[assignment]
    #: The spelling a typed key gets: the plugin points it at the
    #: ``key_spelling`` setting, read (and checked) only when a key is
    #: typed.
    spelling: ClassVar[Callable[[], str]] = staticmethod(standard_spelling)

    def __init__(self, field: str) -> None:
        self.field = field  # for the line that refuses a non-key

    def parse(self, key: str) -> str | None:
        spelled = spell_key(key, type(self).spelling())
        if spelled is None:
            raise UserError(not_a_key(self.field, key))
        return spelled

    def normalize(self, key: Any) -> str | None:
        return None if key is None else str(key)

    def from_sql(self, sql_value: SQLiteType) -> str | None:
        if isinstance(sql_value, memoryview):
            sql_value = bytes(sql_value).decode("utf-8", "ignore")
        return self.normalize(sql_value)


INTEGER = MeasuredInteger()
_FLOATS = {digits: MeasuredFloat(digits) for digits in range(4)}


_BY_KIND: dict[Kind, types.Type[Any, Any]] = {
    Kind.INTEGER: INTEGER,
    Kind.STRING: types.STRING,
    Kind.DATE: types.DATE,
}


def type_for(kind: Kind, digits: int = 3) -> types.Type[Any, Any]:
    return _FLOATS[digits] if kind is Kind.FLOAT else _BY_KIND[kind]


#: One number type per descriptor field, to name the field when a typed
#: value is no number (made once: beets compares types by identity).
MEASURED_NUMBERS: dict[str, types.Type[Any, Any]] = {
    name: MeasuredFloat(d.digits, name)
    if d.kind is Kind.FLOAT
    else MeasuredInteger(name)
    for d in DESCRIPTORS
    if d.kind in (Kind.FLOAT, Kind.INTEGER) and d.unit != "BPM"
    for name in (d.field, *((d.album_field,) if d.album else ()))
}


#: One key type per key field, to name the field when a value is no key.
KEYS = {
    name: KeyType(name)
    for d in DESCRIPTORS
    if d.kind is Kind.KEY
    for name in (d.field, *((d.album_field,) if d.album else ()))
}

#: The tempo fields, track and album: ``~`` finds half and double.
TEMPOS = {
    name: TempoType(2, name)
    for d in DESCRIPTORS
    if d.unit == "BPM"
    for name in (d.field, *((d.album_field,) if d.album else ()))
}

ITEM_TYPES: dict[str, types.Type[Any, Any]] = {
    d.field: KEYS.get(d.field)
    or TEMPOS.get(d.field)
    or MEASURED_NUMBERS.get(d.field)
    or type_for(d.kind, d.digits)
    for d in DESCRIPTORS
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
    d.album_field: KEYS.get(d.album_field)
    or TEMPOS.get(d.album_field)
    or MEASURED_NUMBERS.get(d.album_field)
    or ITEM_TYPES[d.field]
    for d in AGGREGATED
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
