"""Tracks that are the same recording in other files (another format,
bitrate or rip): candidates by how alike their CLAP vectors are,
confirmed by what the files say. No beets here.

Sounding alike is not enough: two songs of one band, on the same
instruments at the same tempo, can be closer than a FLAC and its MP3.
So a pair is only one recording when the vectors are very close *and*
the durations agree (or a MusicBrainz recording id or an AcoustID says
so), and any disagreement (two recording ids, two AcoustIDs, two keys,
tempos apart, durations apart) keeps the tracks apart, within a group as
well as in a pair.

Candidates are searched in blocks of tracks of about the same duration,
never over all pairs: a library of 100k tracks compares each track with
the few hundred of nearly its length.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

#: Rows of vectors compared with their neighbours in one product.
BLOCK = 512


@dataclass(frozen=True)
class Evidence:
    """What the library says about a track's recording."""

    length: float = 0.0  # seconds; 0 when unknown
    recording: str = ""  # MusicBrainz recording id
    acoustid: str = ""  # the AcoustID of its fingerprint (chroma plugin)
    tempo: float = 0.0  # beats per minute; 0 when unknown
    key: str = ""  # the key, spelled one way (``Am``); "" when unknown


@dataclass(frozen=True)
class DuplicateRules:
    #: The least cosine similarity of two versions of one recording.
    threshold: float = 0.98
    #: The most their durations may differ, in seconds, when no id
    #: says they are one recording.
    tolerance: float = 2.0


#: Two tempo estimates of one recording differ by at most this share
#: (or one is about half or double the other: estimators slip octaves).
TEMPO_TOLERANCE = 0.04


def _ids(a: Evidence, b: Evidence) -> Iterator[tuple[str, str]]:
    yield a.recording, b.recording
    yield a.acoustid, b.acoustid


def tempos_agree(a: float, b: float) -> bool:
    return any(
        abs(a * factor - b) <= TEMPO_TOLERANCE * b for factor in (1, 0.5, 2)
    )


def disagree(a: Evidence, b: Evidence) -> bool:
    """Whether the library says outright that these are two recordings:
    two recording ids, two AcoustIDs, two keys or two tempos."""
    if any(mine and theirs and mine != theirs for mine, theirs in _ids(a, b)):
        return True
    if a.key and b.key and a.key != b.key:
        return True
    return bool(a.tempo and b.tempo) and not tempos_agree(a.tempo, b.tempo)


def same_recording(
    a: Evidence, b: Evidence, similarity: float, rules: DuplicateRules
) -> bool:
    """Whether two tracks whose vectors have this cosine similarity are
    one recording: close enough, no ids that disagree, and either an id
    that agrees or durations within the tolerance."""
    if similarity < rules.threshold or disagree(a, b):
        return False
    if any(mine and mine == theirs for mine, theirs in _ids(a, b)):
        return True
    return bool(a.length and b.length) and (
        abs(a.length - b.length) <= rules.tolerance
    )


def candidate_pairs(
    vectors: np.ndarray, evidence: Sequence[Evidence], rules: DuplicateRules
) -> Iterator[tuple[int, int, float]]:
    """Pairs of positions ``(i, j)``, ``i < j``, whose vectors are at least
    ``rules.threshold`` alike and that are worth confirming: durations
    within the tolerance, or a shared recording id or AcoustID."""
    lengths = np.array([e.length for e in evidence], np.float64)
    order = np.argsort(lengths, kind="stable")
    sorted_lengths = lengths[order]
    for start in range(0, len(order), BLOCK):
        end = min(start + BLOCK, len(order))
        reach = int(
            np.searchsorted(
                sorted_lengths, sorted_lengths[end - 1] + rules.tolerance,
                side="right",
            )
        )  # fmt: skip
        rows = order[start:end]
        columns = order[start:reach]
        similarity = vectors[rows] @ vectors[columns].T
        # Each pair once: a column after the row in duration order.
        later = (
            np.arange(start, reach)[None, :] > np.arange(start, end)[:, None]
        )
        close = (
            later
            & (similarity >= rules.threshold)
            & (
                np.abs(lengths[columns][None, :] - lengths[rows][:, None])
                <= rules.tolerance
            )
        )
        for r, c in zip(*np.nonzero(close), strict=True):
            i, j = int(rows[r]), int(columns[c])
            yield min(i, j), max(i, j), float(similarity[r, c])
    # Versions an id names as one recording, whatever their durations.
    named: dict[tuple[str, str], list[int]] = defaultdict(list)
    for position, fact in enumerate(evidence):
        if fact.recording:
            named["recording", fact.recording].append(position)
        if fact.acoustid:
            named["acoustid", fact.acoustid].append(position)
    for members in named.values():
        for n, i in enumerate(members):
            for j in members[n + 1 :]:
                if abs(lengths[i] - lengths[j]) > rules.tolerance:
                    yield i, j, float(vectors[i] @ vectors[j])


@dataclass
class _Group:
    members: list[int]
    shortest: float
    longest: float

    @classmethod
    def of(cls, position: int, fact: Evidence) -> _Group:
        return cls([position], fact.length, fact.length)

    def agrees_with(
        self, other: _Group, evidence: Sequence[Evidence], rules: DuplicateRules
    ) -> bool:
        """Whether the two groups may be one recording: no member of one
        disagrees with a member of the other, and the durations are
        within the tolerance unless one id names every member."""
        if any(
            disagree(evidence[i], evidence[j])
            for i in self.members
            for j in other.members
        ):
            return False
        spread = max(self.longest, other.longest) - min(
            self.shortest, other.shortest
        )
        if spread <= rules.tolerance:
            return True
        members = [evidence[i] for i in self.members + other.members]
        return any(
            len({getattr(e, name) for e in members}) == 1
            and bool(getattr(members[0], name))
            for name in ("recording", "acoustid")
        )

    def absorb(self, other: _Group) -> None:
        self.members += other.members
        self.shortest = min(self.shortest, other.shortest)
        self.longest = max(self.longest, other.longest)


def duplicate_groups(
    vectors: np.ndarray, evidence: Sequence[Evidence], rules: DuplicateRules
) -> list[list[int]]:
    """Groups of positions (two or more, ascending; the groups ordered by
    their first member) that are one recording. Pairs join their groups
    most alike first, and only when the whole group stays consistent:
    a chain of pairs never puts two disagreeing tracks together."""
    pairs = sorted(
        (
            (similarity, i, j)
            for i, j, similarity in candidate_pairs(vectors, evidence, rules)
            if same_recording(evidence[i], evidence[j], similarity, rules)
        ),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    group_of: dict[int, _Group] = {}
    for _similarity, i, j in pairs:
        first = group_of.get(i) or _Group.of(i, evidence[i])
        second = group_of.get(j) or _Group.of(j, evidence[j])
        if first is second or not first.agrees_with(second, evidence, rules):
            continue
        first.absorb(second)
        for member in first.members:
            group_of[member] = first
    unique = {id(group): group for group in group_of.values()}
    return sorted(sorted(group.members) for group in unique.values())
