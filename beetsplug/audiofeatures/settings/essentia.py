"""The ``audiofeatures.essentia`` settings, each checked when a command
uses it: defaults (what ``config.add`` gets), the settings of a run, and
the classifier heads and route they name."""

from __future__ import annotations

import functools
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import confuse
from beets import config as beets_config

from beets_audiofeatures.errors import SetupError
from beetsplug.audiofeatures import input_limits
from beetsplug.audiofeatures.settings.values import YES_NO, Settings

if TYPE_CHECKING:
    from beets_audiofeatures.essentia.descriptors import Kind
    from beets_audiofeatures.essentia.extraction import ClassifierSpec
    from beets_audiofeatures.essentia.heads import Head, ModelFiles
    from beets_audiofeatures.essentia.profiles import Profile

# Every default of the section, and only here (the core's own defaults
# for the same values are checked equal by tests/test_config_reference).
DEFAULTS: dict[str, Any] = {
    "auto": False,
    "profile": "stored",
    "jobs": 0,
    "key_profile": "bgate",
    "min_key_strength": 0.6,
    # How keys are spelt: standard (Bb, Ebm, F#), sharps or flats.
    "key_spelling": "standard",
    # Fill beets' own bpm and initial_key where they are empty, so plain
    # queries, smart playlists and players see the values.
    "fill_core_fields": True,
    "force": False,
    # Write those tags to the files too (-w / -W on the command line).
    "write": False,
    # Essentia's trained classifiers (heads such as
    # mood_happy-discogs-effnet-1), from models_dir.
    "models": [],
    "models_dir": None,  # default: <beets config dir>/audiofeatures/models
    "model_route": "auto",  # auto | tensorflow | onnx
    "top_classes": 10,  # of a head with more classes, keep the N likeliest
    "models_url": "https://essentia.upf.edu/models/",  # --download-models
    # Also tag the files' MOOD and GENRE from the classifiers (with -w).
    # Analyse at most the first N minutes of a track (memory stays
    # bounded on hour-long mixes); 0 analyses everything.
    "max_minutes": 30,
    "write_tags": False,
    "mood_threshold": 0.5,  # a mood is tagged from this probability on
}

PROFILE_CHOICES = (
    "music, rhythm, tonal, lowlevel, freesound, stored, a mix such as "
    "rhythm,tonal, or the path of a YAML profile"
)
#: What ``beet essentia`` (and the import stage) uses.
RUN = (
    "profile", "jobs", "force", "fill_core_fields", "write", "max_seconds",
    "write_tags", "mood_threshold", "dump", "version", "classifiers",
    "key_spelling",
)  # fmt: skip


class EssentiaOptions(Protocol):
    force: bool | None
    pretend: bool
    write: bool | None
    jobs: int | None
    album: bool
    profile: str | None
    dump: str | None
    models: bool
    download_models: bool
    cluster: str | None


def essentia_version() -> str:
    """Version of the installed Essentia distribution, without importing
    it (an import costs a second and prints to stdout)."""
    from beets_audiofeatures.version import essentia_installed

    found = essentia_installed()
    if found is None:
        from beets_audiofeatures.essentia.extraction import (
            EssentiaMissingError,
        )

        raise EssentiaMissingError(
            "Essentia is not installed: pip install "
            "'beets-audiofeatures[essentia]'"
        )
    return found[1]


class EssentiaSettings(Settings):
    """The settings of ``beet essentia``, command-line options first;
    each checked the first time it is read (``from_config`` reads those
    of a run up front)."""

    @classmethod
    def from_config(
        cls, view: confuse.ConfigView, opts: EssentiaOptions | None = None
    ) -> EssentiaSettings:
        """The settings of a run, checked; a bad one is one line."""
        return cls(view, opts).require(*RUN)

    @cached_property
    def auto(self) -> bool:
        return self.flag("auto")

    @cached_property
    def profile(self) -> Profile:
        from beets_audiofeatures.essentia.profiles import (
            KEY_PROFILES,
            resolve_profile,
        )

        spec = self.option("profile") or self.template(
            "profile", str, PROFILE_CHOICES
        )
        key_profile = self.template(
            "key_profile", str, f"one of {', '.join(KEY_PROFILES)}"
        )
        strength = self.number(
            "min_key_strength", "a strength from 0 to 1", most=1
        )
        return resolve_profile(
            spec, key_profile, Path(beets_config.config_dir()), strength
        )

    @cached_property
    def key_spelling(self) -> str:
        """How stored and typed keys are spelt (``keys.SPELLINGS``)."""
        from beets_audiofeatures.keys import SPELLINGS

        return self.choice("key_spelling", SPELLINGS)

    @cached_property
    def jobs(self) -> int:
        jobs = self.option("jobs")
        if jobs is None:
            jobs = self.number(
                "jobs", "0 (all cores) or more workers", whole=True
            )
        else:
            input_limits.count(jobs, "-j/--jobs", 0, " (all cores)")
        return int(jobs) or os.cpu_count() or 1

    @cached_property
    def force(self) -> bool:
        return bool(self.option("force")) or self.flag("force")

    @cached_property
    def fill_core_fields(self) -> bool:
        return self.flag("fill_core_fields")

    @cached_property
    def write(self) -> bool:
        write = self.option("write")
        if write is None:
            write = self.template("write", confuse.Optional(bool), YES_NO)
        return bool(write)

    @cached_property
    def max_seconds(self) -> float:
        minutes = self.number("max_minutes", "0 (no limit) or more minutes")
        return float(60 * minutes)

    @cached_property
    def write_tags(self) -> bool:
        return self.flag("write_tags")

    @cached_property
    def mood_threshold(self) -> float:
        return float(
            self.number("mood_threshold", "a probability from 0 to 1", most=1)
        )

    @cached_property
    def dump(self) -> Path | None:
        dump = self.option("dump")
        return Path(dump).expanduser().resolve() if dump else None

    @cached_property
    def version(self) -> str:
        return essentia_version()

    # -- the classifiers ------------------------------------------------

    @cached_property
    def model_names(self) -> tuple[str, ...]:
        return tuple(
            self.template("models", confuse.StrSeq(), "a list of model names")
        )

    @cached_property
    def model_files(self) -> ModelFiles:
        from beets_audiofeatures.essentia.heads import ModelFiles

        folder = self.template(
            "models_dir",
            confuse.Optional(confuse.Filename()),
            "the path of a folder",
        )
        site = self.template("models_url", str, "a URL").rstrip("/") + "/"
        default = Path(beets_config.config_dir()) / "audiofeatures" / "models"
        return ModelFiles(
            Path(folder) if folder else default, self.model_names, site
        )

    @cached_property
    def model_route(self) -> str:
        """The configured route (``auto`` as written)."""
        from beets_audiofeatures.essentia.classifiers import ROUTES

        return self.choice("model_route", ROUTES)

    @cached_property
    def classifiers(self) -> ClassifierSpec | None:
        files = self.model_files
        if not files.names:
            return None
        from beets_audiofeatures.essentia.classifiers import resolve_route
        from beets_audiofeatures.essentia.extraction import ClassifierSpec

        route = resolve_route(self.model_route)
        top = self.number("top_classes", "0 (all classes) or more", whole=True)
        files.heads()  # every description present and readable
        return ClassifierSpec(files, route, top)

    @property
    def classifier_id(self) -> str:
        """What the ``essentia_classifiers`` field records."""
        spec = self.classifiers
        if spec is None:
            return ""
        return f"{spec.route}: {', '.join(spec.files.names)}"


def classifier_field_types(view: confuse.ConfigView) -> dict[str, Kind]:
    """Fields of the configured heads (none while their descriptions
    are missing: ``beet essentia`` says so)."""
    kinds: dict[str, Kind] = {}
    try:
        settings = EssentiaSettings(view)
        if not settings.model_names:  # nothing to read, nothing to import
            return kinds
        for head in settings.model_files.heads():
            kinds.update(head.fields())
    except SetupError:
        pass
    return kinds


@functools.lru_cache(maxsize=4)
def described_heads(files: ModelFiles) -> list[Head]:
    """The heads' descriptions, read once per run."""
    return files.heads()
