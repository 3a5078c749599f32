"""What a track needs of Essentia, without decoding it: the descriptor
groups the profile computes by another method or from other audio, the
fields no longer there, the classifiers of another set, a missing dump,
the core fields to refill from stored values and the keys to re-spell."""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from beets_audiofeatures.audio_files import (
    AudioCheck,
    FileIdentity,
    check_identity,
    file_identity,
)
from beets_audiofeatures.essentia.descriptors import (
    GROUPS,
    MEASURED,
    Kind,
    descriptors_for,
    method_field,
)
from beets_audiofeatures.essentia.profiles import Profile
from beets_audiofeatures.keys import normalize_key, spell_key
from beetsplug.audiofeatures.analysis.albums import own
from beetsplug.audiofeatures.library_query import (
    audio_fingerprint,
    dump_path,
)
from beetsplug.audiofeatures.settings.essentia import EssentiaSettings

if TYPE_CHECKING:
    from beets.library import Item, Library


#: The file the values were computed from (``FileIdentity``): its size
#: and time make the next plan one ``stat``; its audio digest tells a
#: rewritten file (tags) from new audio.
FILE_FIELD = "essentia_file"
#: The group fields the last analysis looked for and could not store
#: (a key too weak to store, a non-finite loudness): absent, yet current.
UNMEASURED_FIELD = "essentia_unmeasured"
#: The descriptors that fill a core field (``bpm``, ``initial_key``), and
#: that field.
FILLING = tuple((d, d.core_field) for d in MEASURED if d.core_field)
#: The key fields of a track, spelt as ``key_spelling`` asks.
KEY_FIELDS = tuple(d for d in MEASURED if d.kind is Kind.KEY)


def core_value(core: str, value: Any) -> Any:
    """The value a measured ``value`` gives beets' own ``core`` field:
    the tempo rounded, the key with sharps (as beets holds it). A falsy
    one (the 0 tempo of a track too short to find a beat, a value
    emptied by ``beet modify essentia_bpm=``) fills nothing."""
    if value is None:
        return None
    if core == "bpm":
        return round(value)
    if core == "initial_key":
        return normalize_key(str(value)) or value
    return value


@dataclass(frozen=True)
class Work:
    """What one track needs from a run."""

    groups: tuple[str, ...]  # descriptor groups to compute
    classify: bool  # run the trained classifiers
    dump: bool = False  # computed again only for --dump
    why: str = ""  # why current values are computed again, for -p
    #: empty core fields to fill from the stored values, without decoding
    refill: tuple[str, ...] = ()
    #: stored keys spelt otherwise than ``key_spelling`` asks
    respell: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.groups or self.classify or self.refill or self.respell)

    @property
    def analyses(self) -> bool:
        """Whether it takes a decode (not only a refill)."""
        return bool(self.groups or self.classify)

    def describe(self) -> str:
        parts = list(self.groups) + (["classifiers"] if self.classify else [])
        return ", ".join(parts) + (" (for --dump)" if self.dump else "")


@dataclass(frozen=True)
class AudioState:
    """Whether a track's values describe the audio its file holds now."""

    same: bool
    why: str = ""  # why not
    #: the file's identity to record without analysing (a rewritten file
    #: with the same audio, or values stored before identities were)
    record: FileIdentity | None = None


def stored_method(item: Item, group: str) -> Any:
    """What computed the track's ``group`` values, if anything did."""
    method = own(item, method_field(group))
    if method is not None:
        return method
    # Tracks analysed before 0.2 recorded one profile per track.
    legacy = own(item, "essentia_profile")
    if legacy is None or own(item, "essentia_analyzed") is None:
        return None
    parts = legacy.split(",")
    light = all(part in GROUPS for part in parts)
    if light and group not in parts:
        return None
    then = Profile(legacy, "light" if light else legacy)
    return then.method(group, own(item, "essentia_version") or "?")


def audio_state(item: Item) -> AudioState:
    """Whether the values were computed from the audio the file holds
    now: beets' audio columns first (free), then the file recorded with
    them (a ``stat``; a digest of the audio only when the file was
    rewritten). Values stored before files were recorded count as the
    same audio until their audio columns change; their file is recorded
    now."""
    present = item.keys(with_album=False)
    if "essentia_audio" in present:
        if own(item, "essentia_audio") != audio_fingerprint(item):
            return AudioState(False, "new audio")
    elif "essentia_analyzed" not in present:
        return AudioState(True)  # nothing stored to compare
    recorded = (
        FileIdentity.parse(own(item, FILE_FIELD))
        if FILE_FIELD in present
        else None
    )
    if recorded is None:
        try:
            return AudioState(True, record=file_identity(item.path))
        except OSError:
            return AudioState(True)
    check, now = check_identity(recorded, item.path)
    if check is AudioCheck.NEW_AUDIO:
        return AudioState(False, "new audio")
    return AudioState(True, record=now)


def unmeasured(item: Item) -> set[str]:
    return set(filter(None, (own(item, UNMEASURED_FIELD) or "").split(",")))


def missing_fields(
    item: Item, group: str, present: Collection[str]
) -> list[str]:
    """The group's fields the track lacks (a ``beet modify essentia_bpm!``)
    that its analysis did store. Tracks analysed before this was recorded
    may lack the key (too weak to store) and nothing else. ``present``:
    the track's own fields (reading each value would cost more)."""
    recorded = FILE_FIELD in present
    absent = unmeasured(item) if UNMEASURED_FIELD in present else set()
    return [
        desc.field
        for desc in descriptors_for([group])
        if desc.field not in present
        and desc.field not in absent
        and (recorded or desc.kind is not Kind.KEY)
    ]


def stale_groups(
    item: Item, settings: EssentiaSettings, audio: AudioState | None = None
) -> tuple[tuple[str, ...], str]:
    """The profile's descriptor groups the track lacks, holds from
    another method or with fields missing, or all of them for new audio
    or ``force``; and why, in a few words (empty for never analysed)."""
    profile = settings.profile
    audio = audio or audio_state(item)
    if settings.force:
        return profile.groups, ""
    if not audio.same:
        return profile.groups, audio.why
    stale = []
    reasons = []
    present = item.keys(with_album=False)
    for group in profile.groups:
        method = stored_method(item, group)
        if method not in profile.current_methods(group, settings.version):
            stale.append(group)
            if method is not None:
                reasons.append(f"{group} by another method")
        elif missing := missing_fields(item, group, present):
            stale.append(group)
            reasons.append(f"{', '.join(missing)} missing")
    return tuple(stale), "; ".join(reasons)


def needs_classifiers(
    item: Item, settings: EssentiaSettings, audio: AudioState | None = None
) -> bool:
    return settings.classifiers is not None and (
        settings.force
        or own(item, "essentia_classifiers") != settings.classifier_id
        or not (audio or audio_state(item)).same
    )


def refill_fields(
    item: Item, settings: EssentiaSettings, stale: tuple[str, ...]
) -> tuple[str, ...]:
    """The empty core fields (``bpm``, ``initial_key``) that current
    values fill (``beet update`` read them from a file they were never
    written to)."""
    if not settings.fill_core_fields or settings.force:
        return ()
    present = item.keys(with_album=False)
    return tuple(
        core
        for desc, core in FILLING
        if desc.group not in stale
        and desc.group in settings.profile.groups
        and desc.field in present
        and not item.get(core, with_album=False)
        and core_value(core, own(item, desc.field))
    )


def respell_fields(
    item: Item, settings: EssentiaSettings, groups: tuple[str, ...]
) -> tuple[str, ...]:
    """The track's keys spelt otherwise than ``key_spelling`` asks (the
    setting changed since they were stored), unless they are computed
    again now: a spelling is no new measurement, so they are re-spelt
    without decoding."""
    spelling = settings.key_spelling
    present = item.keys(with_album=False)
    return tuple(
        desc.field
        for desc in KEY_FIELDS
        if desc.field in present
        and desc.group not in groups
        and spell_key(str(own(item, desc.field)), spelling)
        not in (None, own(item, desc.field))
    )


def work_for(
    item: Item, settings: EssentiaSettings, lib: Library, audio: AudioState
) -> Work:
    groups, why = stale_groups(item, settings, audio)
    classify = needs_classifiers(item, settings, audio)
    if groups and settings.profile.extractor != "light":
        groups = settings.profile.groups  # one pass computes them all
    refill = refill_fields(item, settings, groups)
    dump = settings.dump
    if dump and not os.path.exists(dump_path(item, lib, dump)):
        # --dump promises a file per track: a current track without one
        # is analysed again for it.
        every = settings.profile.groups
        return Work(
            every, classify, dump=not groups,
            respell=respell_fields(item, settings, every),
        )  # fmt: skip
    respell = respell_fields(item, settings, groups)
    return Work(groups, classify, why=why, refill=refill, respell=respell)
