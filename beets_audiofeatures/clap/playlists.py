"""Playlists from CLAP vectors: a radio that walks from seed tracks, and
a path from one track to another, under diversity caps and DJ rules
(a tempo window, harmonic keys). No beets here: the callers hand in
the candidates' unit vectors and what the library says about each.

The work is done on a small pool of candidates the caller ranked once
against the index, so a playlist costs one pass over the index and a
few hundred small products, whatever the library's size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..keys import Key
from .duplicates import DuplicateRules, Evidence, same_recording

#: How much the previous track weighs against the seeds in a flowing
#: walk: each next track is close to the previous one while staying
#: near the seeds, so the walk neither jumps nor drifts away.
FLOW = 0.5


@dataclass(frozen=True)
class TrackFacts:
    """What the library says about a candidate."""

    artist: str = ""
    album: str = ""  # the album's identity; "" for a track on no album
    bpm: float | None = None
    key: Key | None = None
    evidence: Evidence = field(default_factory=Evidence)


@dataclass(frozen=True)
class Rules:
    """The constraints every next track must meet."""

    max_per_artist: int = 0  # 0: no cap
    max_per_album: int = 0
    bpm_window: float | None = None  # percent of the previous tempo
    half_double: bool = False  # half or double the tempo fits too
    harmonic: bool = False
    duplicates: DuplicateRules = field(default_factory=DuplicateRules)

    @property
    def needs_bpm(self) -> bool:
        return self.bpm_window is not None

    @property
    def needs_key(self) -> bool:
        return self.harmonic


def bpm_fits(
    previous: float, bpm: float, window: float, half_double: bool = False
) -> bool:
    """Whether ``bpm`` is within ``window`` percent of ``previous`` (or
    of half or double it, with ``half_double``)."""
    factors = (1.0, 0.5, 2.0) if half_double else (1.0,)
    return any(
        abs(bpm - previous * factor) <= previous * factor * window / 100
        for factor in factors
    )


def wheel_position(key: Key) -> tuple[int, bool]:
    """The key's place on the Camelot wheel: its number and whether it
    is on the minor (A) ring."""
    return int(key.camelot[:-1]), key.minor


def harmonic_fits(previous: Key, key: Key) -> bool:
    """Whether ``key`` mixes with ``previous``: the same key, a step
    round the Camelot wheel on the same ring (a fifth up or down), or
    the relative key (the same number on the other ring)."""
    number, minor = wheel_position(previous)
    other_number, other_minor = wheel_position(key)
    if minor == other_minor:
        return (number - other_number) % 12 in (0, 1, 11)
    return number == other_number


#: Pools up to this size get a table of every pair's similarity.
SIMILARITY_TABLE = 4096


@dataclass(frozen=True)
class _Codes:
    """Strings as small integers, for masks over the whole pool; code 0
    stands for the empty string (no artist, no album, no id)."""

    values: np.ndarray
    numbers: dict[str, int]

    def code(self, text: str) -> int:
        return self.numbers.get(text, 0) if text else 0


def _codes(texts: Sequence[str]) -> _Codes:
    numbers: dict[str, int] = {}
    values = np.array(
        [numbers.setdefault(t, len(numbers) + 1) if t else 0 for t in texts],
        np.int64,
    )
    return _Codes(values, numbers)


class Selection:
    """The tracks picked so far, and which candidates the rules still
    allow after them."""

    def __init__(
        self,
        vectors: np.ndarray,
        facts: Sequence[TrackFacts],
        rules: Rules,
    ) -> None:
        self.vectors = vectors
        self.facts = facts
        self.rules = rules
        self.picked: list[int] = []
        #: False for candidates no later step may take (already picked,
        #: their artist or album full, another version of a pick).
        self.open = np.ones(len(facts), bool)
        # Every pair's similarity at once: one product instead of two
        # per step (a pool is a few thousand candidates at most).
        self._similarity = (
            vectors @ vectors.T if len(vectors) <= SIMILARITY_TABLE else None
        )
        self._artists = _codes([fact.artist for fact in facts])
        self._albums = _codes([fact.album for fact in facts])
        self._recordings = _codes([fact.evidence.recording for fact in facts])
        self._played_artists: Counter[int] = Counter()
        self._played_albums: Counter[int] = Counter()

    def closeness(self, position: int) -> np.ndarray:
        """Every candidate's similarity to this one."""
        if self._similarity is not None:
            row: np.ndarray = self._similarity[position]
            return row
        return np.asarray(self.vectors @ self.vectors[position])

    def close_versions_of(
        self, closeness: np.ndarray, evidence: Evidence
    ) -> None:
        """Close the candidates that are versions of a recording, given
        their similarity to it."""
        similar = np.flatnonzero(
            self.open & (closeness >= self.rules.duplicates.threshold)
        )
        for position in similar.tolist():
            if same_recording(
                evidence,
                self.facts[position].evidence,
                1.0,  # already above the threshold
                self.rules.duplicates,
            ):
                self.open[position] = False
        if code := self._recordings.code(evidence.recording):
            self.open &= self._recordings.values != code

    def add(self, position: int) -> None:
        self.picked.append(position)
        self.open[position] = False
        fact = self.facts[position]
        self.close_versions_of(self.closeness(position), fact.evidence)
        caps = (
            (self._artists, self._played_artists, self.rules.max_per_artist),
            (self._albums, self._played_albums, self.rules.max_per_album),
        )
        for codes, played, cap in caps:
            code = int(codes.values[position])
            if code and cap:
                played[code] += 1
                if played[code] >= cap:
                    self.open &= codes.values != code

    def follows(self, previous: TrackFacts | None, position: int) -> bool:
        """Whether the candidate may come right after ``previous`` (the
        DJ rules; a previous track without tempo or key allows any)."""
        if previous is None:
            return True
        fact = self.facts[position]
        rules = self.rules
        if (
            rules.bpm_window is not None
            and previous.bpm
            and fact.bpm
            and not bpm_fits(
                previous.bpm, fact.bpm, rules.bpm_window, rules.half_double
            )
        ):
            return False
        if rules.harmonic and previous.key and fact.key:
            return harmonic_fits(previous.key, fact.key)
        return True

    def best(
        self, scores: np.ndarray, previous: TrackFacts | None
    ) -> int | None:
        """The open candidate with the highest score that may follow
        ``previous`` (ties: the earlier candidate); None when none may."""
        positions = np.flatnonzero(self.open)
        order = positions[np.lexsort((positions, -scores[positions]))]
        for position in order.tolist():
            if self.follows(previous, position):
                return int(position)
        return None


def radio(
    vectors: np.ndarray,
    seed_scores: np.ndarray,
    facts: Sequence[TrackFacts],
    rules: Rules,
    length: int,
    *,
    start: np.ndarray,
    start_facts: TrackFacts | None = None,
    seeds: Sequence[tuple[np.ndarray, Evidence]] = (),
    flow: float = FLOW,
) -> list[int]:
    """A radio of up to ``length`` candidates, in play order (positions
    into ``vectors``).

    ``seed_scores`` is each candidate's closeness to the seeds (and
    prompts), or one column of it per seed for a radio that takes each
    seed in turn (step ``k`` reads column ``k`` modulo their number);
    ``start`` is the vector the walk starts from (the seeds' mean),
    ``start_facts`` the tempo and key the first track follows. Each next
    track is the open candidate with the best mix of closeness to the
    seeds and (weighted by ``flow``; 0 for a ranked list) to the
    previous track, that meets the rules. Versions of the ``seeds``
    themselves are never picked.
    """
    selection = Selection(vectors, facts, rules)
    for vector, evidence in seeds:
        selection.close_versions_of(vectors @ vector, evidence)
    closeness, previous = vectors @ start, start_facts
    turns = seed_scores if seed_scores.ndim == 2 else seed_scores[:, None]
    while len(selection.picked) < length:
        scores = turns[:, len(selection.picked) % turns.shape[1]]
        if flow:
            scores = (1 - flow) * scores + flow * closeness
        chosen = selection.best(scores, previous)
        if chosen is None:
            break
        selection.add(chosen)
        closeness, previous = selection.closeness(chosen), facts[chosen]
    return selection.picked


def waypoints(first: np.ndarray, last: np.ndarray, count: int) -> np.ndarray:
    """``count`` unit vectors evenly spaced on the great circle from
    ``first`` to ``last``, both included (a straight line between two
    unit vectors would pass close to the origin, where nothing lives)."""
    a = first / np.linalg.norm(first)
    b = last / np.linalg.norm(last)
    angle = float(np.arccos(np.clip(a @ b, -1.0, 1.0)))
    steps = np.linspace(0.0, 1.0, count)
    if angle < 1e-6:
        return np.repeat(a[None], count, axis=0).astype(np.float32)
    points = (
        np.sin((1 - steps)[:, None] * angle) * a
        + np.sin(steps[:, None] * angle) * b
    ) / np.sin(angle)
    unit_points: np.ndarray = (
        points / np.linalg.norm(points, axis=1, keepdims=True)
    ).astype(np.float32)
    return unit_points


def path(
    vectors: np.ndarray,
    facts: Sequence[TrackFacts],
    rules: Rules,
    points: np.ndarray,
    *,
    first: int,
    last: int,
) -> list[tuple[int, int]]:
    """A path through the candidates from ``first`` to ``last`` (both
    positions into ``vectors``): one track per row of ``points`` (the
    waypoints, endpoints included), each step the open candidate closest
    to its waypoint that meets the rules. Returns ``(position, waypoint)``
    pairs in play order; a step no candidate can take is left out."""
    selection = Selection(vectors, facts, rules)
    selection.add(first)
    # The end counts for the caps from the start, and nothing on the
    # way may be it or another version of it.
    selection.add(last)
    del selection.picked[-1]
    steps = [(first, 0)]
    previous = facts[first]
    for step in range(1, len(points) - 1):
        chosen = selection.best(vectors @ points[step], previous)
        if chosen is None:
            continue
        selection.add(chosen)
        steps.append((chosen, step))
        previous = facts[chosen]
    steps.append((last, len(points) - 1))
    return steps
