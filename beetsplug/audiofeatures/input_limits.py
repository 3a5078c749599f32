"""The bounds of what a user may hand the commands, the page and the
saved playlists: track ids, counts, percentages, playlist names and
queries. Each check raises a :class:`RequestError` of one line before any
work is done: the commands print it, the page answers it as a 400.

Without them a 20-digit id reached SQLite (``OverflowError``), a query of
thousands of terms outgrew SQLite's expression depth, ``nan`` passed
every comparison and a long name failed in the file system.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from beets_audiofeatures.errors import RequestError

#: SQLite's integers are 64-bit: no id, count or number in a query is
#: larger.
MOST_INTEGER = 2**63 - 1
#: The most results, tracks or tracks per artist a command lists: more
#: than any library holds, far from any overflow.
MOST_COUNT = 1_000_000
#: A query's terms and its length (typed or configured). SQLite refuses
#: an expression deeper than 1000; no person types 200 terms.
MOST_QUERY_TERMS = 200
MOST_QUERY_CHARACTERS = 10_000
#: A prompt: a sentence or a few, far more than the model reads.
MOST_PROMPT_CHARACTERS = 1_000
#: A playlist's name: characters shown, bytes in the file system (most
#: allow 255 in a name, ``.m3u8`` included).
MOST_NAME_CHARACTERS = 100
MOST_NAME_BYTES = 255 - len(".m3u8")
#: No folder separators, no control characters, not hidden.
PLAYLIST_NAME = re.compile(r"[^/\\\x00-\x1f\x7f.][^/\\\x00-\x1f\x7f]*")


def item_id(value: Any, where: str) -> int:
    """A track id: a whole number from 1 to SQLite's largest (text of
    ASCII digits, or an int that is not a bool)."""
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            raise RequestError(f"{where} must be a whole number, not {value!r}")
        number = int(text) if len(text) <= 20 else MOST_INTEGER + 1
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise RequestError(f"{where} must be a whole number, not {value!r}")
    if not 1 <= number <= MOST_INTEGER:
        raise RequestError(f"{where} {_short(value)} is not a track id")
    return number


def item_ids(values: Sequence[Any], where: str, most: int) -> list[int]:
    """Track ids, at most ``most`` of them."""
    if len(values) > most:
        raise RequestError(f"{where}: at most {most} tracks at once")
    return [item_id(value, where) for value in values]


def count(value: int, where: str, least: int, meaning: str = "") -> int:
    """A whole number from ``least`` to :data:`MOST_COUNT`."""
    if value < least:
        raise RequestError(
            f"{where} must be {least}{meaning} or more, not {value}"
        )
    if value > MOST_COUNT:
        raise RequestError(
            f"{where} must be at most {MOST_COUNT}, not {_short(value)}"
        )
    return value


def percentage(value: float, where: str) -> float:
    """A finite percentage above 0 (``nan`` passes every comparison)."""
    if not (math.isfinite(value) and value > 0):
        raise RequestError(
            f"{where} must be a percentage above 0, such as 6, not {value:g}"
        )
    return value


def score(value: float, where: str) -> float:
    """A similarity score: a finite number."""
    if not math.isfinite(value):
        raise RequestError(
            f"{where} must be a score, such as 0.3, not {value:g}"
        )
    return value


def prompt(text: str, where: str) -> str:
    """A prompt of at most :data:`MOST_PROMPT_CHARACTERS` (the text model
    reads its first 77 tokens anyway)."""
    if len(text) > MOST_PROMPT_CHARACTERS:
        raise RequestError(
            f"{where} is too long: a prompt has at most "
            f"{MOST_PROMPT_CHARACTERS} characters"
        )
    return text


def query_terms(terms: Sequence[str], where: str) -> list[str]:
    """A beets query's terms, within :data:`MOST_QUERY_TERMS` and
    :data:`MOST_QUERY_CHARACTERS`, without NUL characters."""
    if len(terms) > MOST_QUERY_TERMS:
        raise RequestError(
            f"{where} has {len(terms)} terms: a query has at most "
            f"{MOST_QUERY_TERMS}"
        )
    if sum(len(term) + 1 for term in terms) > MOST_QUERY_CHARACTERS:
        raise RequestError(
            f"{where} is too long: a query has at most "
            f"{MOST_QUERY_CHARACTERS} characters"
        )
    if any("\x00" in term for term in terms):
        raise RequestError(f"{where} holds a NUL character")
    return list(terms)


def playlist_name(name: str, where: str) -> str:
    """A playlist's name that is a file name everywhere: no folder
    separators or control characters, not hidden, at most
    :data:`MOST_NAME_CHARACTERS` characters and
    :data:`MOST_NAME_BYTES` bytes in UTF-8."""
    if (
        not PLAYLIST_NAME.fullmatch(name)
        or len(name) > MOST_NAME_CHARACTERS
        or len(name.encode("utf-8", "surrogateescape")) > MOST_NAME_BYTES
    ):
        raise RequestError(
            f"{where}: a playlist's name is its file's name: up to "
            f"{MOST_NAME_CHARACTERS} characters ({MOST_NAME_BYTES} bytes), "
            "without / or \\ or control characters, not starting with a dot"
        )
    return name


def shown_query(terms: Sequence[str]) -> str:
    """A query for a message: quoted, cut to a readable length."""
    return repr(_short(" ".join(terms), 60))


def _short(value: Any, most: int = 30) -> str:
    """A value for a message, cut to a readable length."""
    text = str(value)
    return text if len(text) <= most else text[: most - 3] + "..."
