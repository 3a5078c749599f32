"""Musical keys: one parser for every spelling users and DJ tools write.

A key is a pitch class (0 = C … 11 = B) and a mode. It is spelled the
way beets spells ``initial_key`` (sharps, ``m`` for minor: ``C#m``), and
read from note names with sharps or flats (``Abm``, ``G♯ minor``), from
the Camelot wheel (``8A``) and from Open Key notation (``1m``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
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
        number = (int(self.camelot[:-1]) - 8) % 12 + 1
        return f"{number}{'m' if self.minor else 'd'}"


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


def normalize_key(text: str) -> str | None:
    """Canonical spelling (``Am``, ``F#``) or ``None`` if not a key."""
    key = parse_key(text)
    return None if key is None else str(key)


def key_from_essentia(key: str, scale: str) -> str | None:
    """Spell Essentia's ``(key, scale)`` pair, e.g. ``("Eb", "minor")``."""
    return normalize_key(f"{key} {scale}")
