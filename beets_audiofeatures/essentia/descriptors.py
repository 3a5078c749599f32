"""The descriptor table: every Essentia value the plugin stores, in one place.

Each row names the beets field, where the value sits in the extractor's
output (the path of Essentia's ``MusicExtractor`` pool; the other
pipelines report under the same paths), its kind, unit and a doc line.
The table drives extraction, the beets field types, ``--pretend`` and
the field reference in the docs. Nothing here imports beets.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..keys import key_from_essentia
from ..naming import field_slug

#: Groups of descriptors; each light profile computes one group.
GROUPS = ("rhythm", "tonal", "lowlevel")

PREFIX = "essentia_"
ALBUM_PREFIX = "essentia_album_"


class Kind(Enum):
    FLOAT = "float"
    INTEGER = "integer"
    KEY = "key"
    STRING = "string"
    DATE = "date"


# statistics is imported when albums are aggregated: every beets command
# reads this table (the field types), few aggregate.
def _median(values: Sequence[Any]) -> Any:
    import statistics

    return statistics.median(values)


def _mean(values: Sequence[Any]) -> Any:
    import statistics

    return statistics.fmean(values)


def _dominant(values: Sequence[Any]) -> Any:
    # Most frequent; ties go to the value seen first (track order).
    return Counter(values).most_common(1)[0][0]


def _power_mean(values: Sequence[Any]) -> Any:
    # Loudness in LUFS is logarithmic: average the power, not the dB.
    return 10 * math.log10(_mean([10 ** (v / 10) for v in values]))


class Aggregate(Enum):
    """How ``-a/--album`` summarises a field over an album's tracks."""

    MEDIAN = ("median", _median)
    MEAN = ("mean", _mean)
    DOMINANT = ("most frequent", _dominant)
    POWER_MEAN = ("power mean", _power_mean)

    def __init__(self, label: str, func: Callable[[Sequence[Any]], Any]):
        self.label = label
        self.func = func


@dataclass(frozen=True)
class Descriptor:
    field: str
    kind: Kind
    doc: str
    source: str | None = None  # pool path; None for bookkeeping fields
    group: str | None = None  # which light profile computes it
    unit: str = ""
    digits: int = 3  # decimals shown by ``beet ls``
    album: Aggregate | None = None
    core_field: str | None = None  # beets field it may fill

    @property
    def album_field(self) -> str:
        """The album's own name for the aggregate: ``essentia_album_bpm``.

        Never a track field's name: beets copies an album's flexible
        attributes onto its tracks and lets tracks read them, so a shared
        name would overwrite or impersonate the tracks' own values.
        """
        return ALBUM_PREFIX + self.field.removeprefix(PREFIX)


DESCRIPTORS: tuple[Descriptor, ...] = (
    Descriptor(
        "essentia_bpm", Kind.FLOAT,
        "Tempo; at the felt beat with the stored and music profiles.",
        "rhythm.bpm", "rhythm", "BPM", 2, Aggregate.MEDIAN, "bpm",
    ),
    Descriptor(
        "essentia_bpm_confidence", Kind.FLOAT,
        "Weight of the strongest peak of the beat-interval histogram: "
        "near 1 for a steady tempo, low when the tempo wanders; the same "
        "scale in every profile.",
        "rhythm.bpm_histogram_first_peak_weight", "rhythm", "0–1", 3,
        Aggregate.MEAN,
    ),
    Descriptor(
        "essentia_beats_count", Kind.INTEGER, "Number of beats detected.",
        "rhythm.beats_count", "rhythm",
    ),
    Descriptor(
        "essentia_onset_rate", Kind.FLOAT, "Note onsets per second.",
        "rhythm.onset_rate", "rhythm", "1/s", 3, Aggregate.MEAN,
    ),
    Descriptor(
        "essentia_danceability", Kind.FLOAT,
        "Essentia's detrended-fluctuation danceability, higher is more "
        "danceable: usually 0–3, can exceed 4 on very regular material. "
        "Not a probability.",
        "rhythm.danceability", "rhythm", "usually 0–3", 3, Aggregate.MEAN,
    ),
    Descriptor(
        "essentia_key", Kind.KEY,
        "Key, spelt as ``key_spelling`` asks (``Am``, ``Bbm``, ``F#``), "
        "read on the track's own tuning. Queries understand every "
        "spelling, Camelot (``8A``), Open Key (``1m``), neighbours "
        "(``8A~``) and ranges (``9A..10A``).",
        "tonal.key", "tonal", album=Aggregate.DOMINANT,
        core_field="initial_key",
    ),
    Descriptor(
        "essentia_key_strength", Kind.FLOAT,
        "How well the audio fits the key profile, 0 to 1 (``stored`` and "
        "``music`` agree; the light ``tonal`` profile's is KeyExtractor's "
        "alone, on its own scale).",
        "tonal.key.strength", "tonal", "0–1", 3, Aggregate.MEAN,
    ),
    Descriptor(
        "essentia_tuning", Kind.FLOAT,
        "Estimated tuning of A4, within a quarter tone of 440 Hz.",
        "tonal.tuning_frequency", "tonal", "Hz", 1, Aggregate.MEDIAN,
    ),
    Descriptor(
        "essentia_loudness", Kind.FLOAT, "EBU R128 integrated loudness.",
        "lowlevel.loudness_ebu128.integrated", "lowlevel", "LUFS", 2,
        Aggregate.POWER_MEAN,
    ),
    Descriptor(
        "essentia_loudness_range", Kind.FLOAT, "EBU R128 loudness range.",
        "lowlevel.loudness_ebu128.loudness_range", "lowlevel", "LU", 2,
        Aggregate.MEAN,
    ),
    Descriptor(
        "essentia_dynamic_complexity", Kind.FLOAT,
        "Average absolute deviation from the global loudness.",
        "lowlevel.dynamic_complexity", "lowlevel", "dB", 3, Aggregate.MEAN,
    ),
    Descriptor(
        "essentia_spectral_centroid", Kind.FLOAT,
        "Mean spectral centroid, a measure of brightness.",
        "lowlevel.spectral_centroid.mean", "lowlevel", "Hz", 1,
        Aggregate.MEAN,
    ),
    Descriptor(
        "essentia_analyzed", Kind.DATE, "When the track was analysed.",
        album=Aggregate.DOMINANT,
    ),
    Descriptor(
        "essentia_profile", Kind.STRING,
        "Profile that produced the values (``music``, ``rhythm``, …).",
    ),
    Descriptor(
        "essentia_version", Kind.STRING, "Essentia version used.",
    ),
    Descriptor(
        "essentia_audio", Kind.STRING,
        "The audio the values describe, as beets read it (format, rate, "
        "channels, bit depth, bitrate, length): new audio at the same "
        "path makes them stale.",
    ),
    Descriptor(
        "essentia_file", Kind.STRING,
        "The file the values were computed from: size, modification time "
        "(ns) and a digest of its audio (not its tags). A file rewritten "
        "with other audio makes them stale, a tag edit does not.",
    ),
    Descriptor(
        "essentia_unmeasured", Kind.STRING,
        "The fields the last analysis could not measure (a key too weak "
        "to store): absent, yet current. Any other missing field is "
        "computed again.",
    ),
    *(
        Descriptor(
            f"essentia_{group}_method", Kind.STRING,
            f"What computed the {group} values: profile"
            + (", key profile" if group == "tonal" else "")
            + " and Essentia version. A value is current when this is "
            "what the configured profile would use.",
        )
        for group in GROUPS
    ),
)  # fmt: skip

BY_FIELD = {d.field: d for d in DESCRIPTORS}
MEASURED = tuple(d for d in DESCRIPTORS if d.source)
AGGREGATED = tuple(d for d in DESCRIPTORS if d.album)

#: The classic (2.1-beta) SVM models of Essentia's high-level section and
#: their classes; a profile with ``highlevel.svm_models`` yields these as
#: ``essentia_<model>`` (class) and ``essentia_<model>_<class>`` (0–1).
SVM_MODELS: dict[str, tuple[str, ...]] = {
    "danceability": ("danceable", "not_danceable"),
    "gender": ("female", "male"),
    "genre_dortmund": (
        "alternative", "blues", "electronic", "folkcountry", "funksoulrnb",
        "jazz", "pop", "raphiphop", "rock",
    ),
    "genre_electronic": ("ambient", "dnb", "house", "techno", "trance"),
    "genre_rosamerica": (
        "cla", "dan", "hip", "jaz", "pop", "rhy", "roc", "spe",
    ),
    "genre_tzanetakis": (
        "blu", "cla", "cou", "dis", "hip", "jaz", "met", "pop", "reg", "roc",
    ),
    "ismir04_rhythm": (
        "chachacha", "jive", "quickstep", "rumba_american",
        "rumba_international", "rumba_misc", "samba", "tango",
        "viennesewaltz", "waltz",
    ),
    "mood_acoustic": ("acoustic", "not_acoustic"),
    "mood_aggressive": ("aggressive", "not_aggressive"),
    "mood_electronic": ("electronic", "not_electronic"),
    "mood_happy": ("happy", "not_happy"),
    "mood_party": ("not_party", "party"),
    "mood_relaxed": ("not_relaxed", "relaxed"),
    "mood_sad": ("not_sad", "sad"),
    "moods_mirex": ("cluster1", "cluster2", "cluster3", "cluster4", "cluster5"),
    "timbre": ("bright", "dark"),
    "tonal_atonal": ("atonal", "tonal"),
    "voice_instrumental": ("instrumental", "voice"),
}  # fmt: skip


def svm_class_field(model: str) -> str:
    """The field for a model's winning class: ``essentia_<model>``, or
    ``essentia_<model>_class`` where a descriptor owns that name (the
    SVM ``danceability`` model beside the DFA ``essentia_danceability``).
    """
    name = f"essentia_{field_slug(model)}"
    return f"{name}_class" if name in BY_FIELD else name


def svm_fields() -> dict[str, Kind]:
    """Field names and kinds of the classic SVM outputs."""
    fields: dict[str, Kind] = {}
    for model, classes in SVM_MODELS.items():
        fields[svm_class_field(model)] = Kind.STRING
        for cls in classes:
            fields[f"essentia_{model}_{cls}"] = Kind.FLOAT
    return fields


def method_field(group: str) -> str:
    """The field that records what computed a group's values."""
    return f"essentia_{group}_method"


def descriptors_for(groups: Iterable[str]) -> tuple[Descriptor, ...]:
    wanted = set(groups)
    return tuple(d for d in MEASURED if d.group in wanted)


def _finite(value: Any) -> bool:
    return not (isinstance(value, float) and not math.isfinite(value))


def read_descriptors(
    pool: Mapping[str, Any],
    groups: Iterable[str] = GROUPS,
    min_key_strength: float = 0.0,
) -> dict[str, Any]:
    """Map an extractor's output to field values.

    ``pool`` maps descriptor paths to values. Missing or non-finite
    values are left out; ``0.0`` is kept. A key found with less strength
    than ``min_key_strength`` is left out (its strength is kept).
    """
    strength = pool.get("tonal.key.strength")
    weak = strength is not None and float(strength) < min_key_strength
    values: dict[str, Any] = {}
    for desc in descriptors_for(groups):
        assert desc.source
        if desc.kind is Kind.KEY:
            key_path, scale_path = f"{desc.source}.key", f"{desc.source}.scale"
            if key_path in pool and scale_path in pool and not weak:
                key = key_from_essentia(pool[key_path], pool[scale_path])
                if key:
                    values[desc.field] = key
            continue
        if desc.source not in pool:
            continue
        raw = pool[desc.source]
        value: Any = int(raw) if desc.kind is Kind.INTEGER else float(raw)
        if _finite(value):
            values[desc.field] = value
    values.update(read_highlevel(pool))
    return values


def read_highlevel(pool: Mapping[str, Any]) -> dict[str, Any]:
    """Fields for a profile's SVM models (``highlevel.<model>.*`` paths)."""
    values: dict[str, Any] = {}
    for path in pool:
        parts = path.split(".")
        if parts[0] != "highlevel" or len(parts) < 3:
            continue
        model = field_slug(parts[1])
        if parts[2] == "value" and len(parts) == 3:
            values[svm_class_field(model)] = str(pool[path])
        elif parts[2] == "all" and len(parts) == 4:
            values[f"essentia_{model}_{field_slug(parts[3])}"] = float(
                pool[path]
            )
    return values


#: The tempo field; its 0 says no beat was found (a track too short for
#: one), and is no tempo to summarise an album's with.
TEMPO_FIELD = "essentia_bpm"


def aggregate_album(
    tracks: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """Album-level values (under their album names) from the tracks'
    own field values."""
    tracks = list(tracks)
    values: dict[str, Any] = {}
    for desc in AGGREGATED:
        assert desc.album
        present = [
            t[desc.field]
            for t in tracks
            if t.get(desc.field) is not None
            and not (desc.field == TEMPO_FIELD and t[desc.field] == 0)
        ]
        if present:
            values[desc.album_field] = desc.album.func(present)
    return values
