"""Musical keys: one parser for every spelling users and DJ tools write.

A key is a pitch class (0 = C … 11 = B) and a mode. ``str(key)`` spells
it the way beets spells ``initial_key`` (sharps, ``m`` for minor:
``C#m``); :meth:`Key.spelled` spells it as a user chooses (``sharps``,
``flats`` or ``standard``, the spelling of printed scores: ``Bb``,
``Ebm``). Keys are read from note names with sharps or flats (``Abm``,
``G♯ minor``), from the Camelot wheel (``8A``) and from Open Key notation
(``1m``); a query pattern may also name a key with its Camelot neighbours
(``8A~``) or a range round the wheel (``9A..10A``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
#: The names key signatures use: the enharmonic with fewer accidentals
#: (Db major: five flats, not seven sharps), and F# for F# major (six
#: sharps or six flats), as most DJ software writes it.
_STANDARD_MAJOR = (
    "C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
)  # fmt: skip
_STANDARD_MINOR = (
    "C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B",
)  # fmt: skip
#: The values of the ``key_spelling`` setting; the first is the default.
SPELLINGS = ("standard", "sharps", "flats")
#: What a key (``beet modify``) or a key query may be, for error lines.
ACCEPTED = (
    "a note name (Am, F#, Bb minor), Camelot (8A) or Open Key (1m); a "
    "query also takes a key with its Camelot neighbours (8A~) or a range "
    "round one ring of the wheel (9A..10A, 12A..1A)"
)
_NATURALS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTALS = {"#": 1, "♯": 1, "sharp": 1, "b": -1, "♭": -1, "flat": -1}

_NOTE_RE = re.compile(
    r"^(?P<note>[a-g])\s*(?P<acc>#|♯|b|♭|sharp|flat)?\s*"
    r"(?P<mode>m|min|minor|maj|major|dur|moll)?$"
)
_CAMELOT_RE = re.compile(r"^(?P<num>1[0-2]|0?[1-9])\s*(?P<letter>[ab])$")
_OPEN_KEY_RE = re.compile(r"^(?P<num>1[0-2]|0?[1-9])\s*(?P<letter>[md])$")


class Key(NamedTuple):
    pitch: int  # 0 = C
    minor: bool

    def __str__(self) -> str:
        return NOTE_NAMES[self.pitch] + ("m" if self.minor else "")

    def spelled(self, spelling: str) -> str:
        """The key in one of :data:`SPELLINGS`: ``sharps`` (``A#m``, as
        ``str``), ``flats`` (``Bbm``, ``Gb``) or ``standard`` (``Bbm``,
        ``F#``)."""
        if spelling == "flats":
            names = FLAT_NAMES
        elif spelling == "standard":
            names = _STANDARD_MINOR if self.minor else _STANDARD_MAJOR
        else:
            names = NOTE_NAMES
        return names[self.pitch] + ("m" if self.minor else "")

    def spellings(self) -> set[str]:
        """Every way :meth:`spelled` writes the key."""
        return {self.spelled(spelling) for spelling in SPELLINGS}

    @property
    def camelot(self) -> str:
        """Camelot wheel code: ``8A`` for A minor, ``8B`` for C major."""
        # Moving a fifth up the circle moves one step on the wheel;
        # A minor and C major sit at 8.
        anchor = 9 if self.minor else 0
        step = (self.pitch - anchor) * 7 % 12
        return f"{(step + 7) % 12 + 1}{'A' if self.minor else 'B'}"

    @property
    def open_key(self) -> str:
        """Open Key code: ``1m`` for A minor, ``1d`` for C major."""
        number = (self.wheel_number - 8) % 12 + 1
        return f"{number}{'m' if self.minor else 'd'}"

    @property
    def wheel_number(self) -> int:
        """The key's number (1–12) on the Camelot wheel."""
        return int(self.camelot[:-1])

    @property
    def relative(self) -> Key:
        """The relative major or minor (A minor for C major): the same
        number on the other ring of the Camelot wheel."""
        return _from_wheel(self.wheel_number, not self.minor)

    def neighbours(self) -> frozenset[Key]:
        """The key and the keys that mix with it: a step round the
        Camelot wheel on its ring (a fifth up or down) and its relative
        key."""
        number = self.wheel_number
        return frozenset(
            {
                self,
                self.relative,
                _from_wheel(number % 12 + 1, self.minor),
                _from_wheel((number - 2) % 12 + 1, self.minor),
            }
        )


def _from_wheel(number: int, minor: bool) -> Key:
    """The key at Camelot position ``number`` (1–12)."""
    anchor = 9 if minor else 0
    # Step k on the wheel is k-8 fifths away from the anchor at 8;
    # 7 is its own inverse modulo 12, so a fifth is 7 semitones.
    return Key((anchor + (number - 8) * 7) % 12, minor)


def parse_key(text: str) -> Key | None:
    """Read a key in any supported spelling; ``None`` if it is not one.

    >>> str(parse_key("Ab minor")), str(parse_key("8A")), str(parse_key("1d"))
    ('G#m', 'Am', 'C')
    """
    spelled = text.strip().lower().replace("-", " ").replace("_", " ")
    if match := _NOTE_RE.match(spelled):
        pitch = _NATURALS[match["note"].upper()]
        pitch += _ACCIDENTALS.get(match["acc"] or "", 0)
        minor = match["mode"] in {"m", "min", "minor", "moll"}
        return Key(pitch % 12, minor)
    if match := _CAMELOT_RE.match(spelled):
        return _from_wheel(int(match["num"]), match["letter"] == "a")
    if match := _OPEN_KEY_RE.match(spelled):
        camelot = (int(match["num"]) + 6) % 12 + 1
        return _from_wheel(camelot, match["letter"] == "m")
    return None


def wheel_range(first: Key, last: Key) -> frozenset[Key] | None:
    """The keys from ``first`` up the Camelot wheel to ``last`` (past 12
    to 1: ``12A..1A`` is two keys), both on one ring; None when they are
    on different rings."""
    if first.minor != last.minor:
        return None
    steps = (last.wheel_number - first.wheel_number) % 12
    return frozenset(
        _from_wheel((first.wheel_number - 1 + step) % 12 + 1, first.minor)
        for step in range(steps + 1)
    )


def key_pattern(text: str) -> frozenset[Key] | None:
    """The keys a query pattern names: a key in any spelling, a key and
    its neighbours (``8A~``), or a range round the wheel (``9A..10A``,
    ``Am..Em``); None when it names no key.

    >>> sorted(k.camelot for k in key_pattern("8A~"))
    ['7A', '8A', '8B', '9A']
    """
    if text.rstrip().endswith("~"):
        key = parse_key(text.rstrip()[:-1])
        return None if key is None else key.neighbours()
    if ".." in text:
        first_text, _, last_text = text.partition("..")
        first, last = parse_key(first_text), parse_key(last_text)
        if first is None or last is None:
            return None
        return wheel_range(first, last)
    key = parse_key(text)
    return None if key is None else frozenset({key})


def not_a_key(field: str, text: str) -> str:
    """The one line for a value or pattern of a key field that names no
    key (``beet ls essentia_key:H``, ``beet modify essentia_key=Q7``)."""
    return f"{field}: {text!r} names no key; use {ACCEPTED}"


def spell_key(text: str, spelling: str) -> str | None:
    """A key in any spelling, spelt as ``spelling`` asks; None if it is
    not a key."""
    key = parse_key(text)
    return None if key is None else key.spelled(spelling)


def normalize_key(text: str) -> str | None:
    """Canonical spelling (``Am``, ``F#``) or ``None`` if not a key."""
    key = parse_key(text)
    return None if key is None else str(key)


def key_from_essentia(key: str, scale: str) -> str | None:
    """Spell Essentia's ``(key, scale)`` pair, e.g. ``("Eb", "minor")``."""
    return normalize_key(f"{key} {scale}")
