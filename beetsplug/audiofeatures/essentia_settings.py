"""The ``audiofeatures.essentia`` settings, checked when a command uses
them: defaults (what ``config.add`` gets), the validated settings of a
run, and the classifier heads and route they name."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import confuse
from beets import config as beets_config
from beets.exceptions import UserError

from beets_audiofeatures.errors import SetupError
from beets_audiofeatures.essentia.classifiers import (
    ROUTES,
    resolve_route,
)
from beets_audiofeatures.essentia.descriptors import Kind
from beets_audiofeatures.essentia.extraction import ClassifierSpec
from beets_audiofeatures.essentia.heads import (
    SITE,
    Head,
    ModelFiles,
)
from beets_audiofeatures.essentia.profiles import (
    DEFAULT_KEY_PROFILE,
    DEFAULT_MIN_KEY_STRENGTH,
    KEY_PROFILES,
    Profile,
    resolve_profile,
)
from beets_audiofeatures.version import essentia_installed

from .setting_values import bad_setting, read_choice, read_number, read_setting

DEFAULTS: dict[str, Any] = {
    "auto": False,
    "profile": "stored",
    "jobs": 0,
    "key_profile": DEFAULT_KEY_PROFILE,
    "min_key_strength": DEFAULT_MIN_KEY_STRENGTH,
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
    "models_url": SITE,  # where --download-models fetches them
    # Also tag the files' MOOD and GENRE from the classifiers (with -w).
    # Analyse at most the first N minutes of a track (memory stays
    # bounded on hour-long mixes); 0 analyses everything.
    "max_minutes": 30,
    "write_tags": False,
    "mood_threshold": 0.5,  # a mood is tagged from this probability on
}


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
    found = essentia_installed()
    if found is None:
        raise UserError("Essentia is not installed: pip install --pre essentia")
    return found[1]


@dataclass(frozen=True)
class EssentiaSettings:
    profile: Profile
    jobs: int
    force: bool
    fill_core_fields: bool
    write: bool
    dump: Path | None
    version: str
    classifiers: ClassifierSpec | None
    write_tags: bool
    mood_threshold: float
    max_seconds: float

    @property
    def classifier_id(self) -> str:
        """What the ``essentia_classifiers`` field records."""
        spec = self.classifiers
        if spec is None:
            return ""
        return f"{spec.route}: {', '.join(spec.files.names)}"

    @classmethod
    def from_config(
        cls, view: confuse.ConfigView, opts: EssentiaOptions | None = None
    ) -> EssentiaSettings:
        """Validated settings; CLI options override the configuration.

        Raises ``UserError`` with one line naming the bad value.
        """

        def opt(name: str) -> Any:
            return getattr(opts, name, None)

        profile_spec = opt("profile") or read_setting(
            view["profile"], str, PROFILE_CHOICES
        )
        key_profile = read_setting(
            view["key_profile"], str, f"one of {', '.join(KEY_PROFILES)}"
        )
        min_key_strength = read_number(
            view["min_key_strength"], 0, "a strength from 0 to 1"
        )
        if min_key_strength > 1:
            raise bad_setting(
                view["min_key_strength"], "a strength from 0 to 1"
            )
        jobs = opt("jobs")
        if jobs is None:
            jobs = read_number(
                view["jobs"], 0, "0 (all cores) or more workers", whole=True
            )
        elif jobs < 0:
            raise UserError(
                f"-j/--jobs must be 0 (all cores) or more, not {jobs}"
            )
        force = opt("force") or read_setting(view["force"], bool, YES_NO)
        fill = read_setting(view["fill_core_fields"], bool, YES_NO)
        write = opt("write")
        if write is None:
            write = read_setting(view["write"], confuse.Optional(bool), YES_NO)
        max_minutes = read_number(
            view["max_minutes"], 0, "0 (no limit) or more minutes"
        )
        write_tags = read_setting(view["write_tags"], bool, YES_NO)
        mood_threshold = read_number(
            view["mood_threshold"], 0, "a probability from 0 to 1"
        )
        if mood_threshold > 1:
            raise bad_setting(
                view["mood_threshold"], "a probability from 0 to 1"
            )
        profile = resolve_profile(
            profile_spec,
            key_profile,
            Path(beets_config.config_dir()),
            min_key_strength,
        )
        dump = opt("dump")
        return cls(
            profile=profile,
            jobs=jobs or os.cpu_count() or 1,
            force=bool(force),
            fill_core_fields=fill,
            write=bool(write),
            dump=Path(dump).expanduser().resolve() if dump else None,
            version=essentia_version(),
            classifiers=classifier_spec(view),
            write_tags=write_tags,
            mood_threshold=mood_threshold,
            max_seconds=60 * max_minutes,
        )


YES_NO = "yes or no"
PROFILE_CHOICES = (
    "music, rhythm, tonal, lowlevel, freesound, stored, a mix such as "
    "rhythm,tonal, or the path of a YAML profile"
)


def model_files(view: confuse.ConfigView) -> ModelFiles:
    names = read_setting(
        view["models"], confuse.StrSeq(), "a list of model names"
    )
    folder = read_setting(
        view["models_dir"],
        confuse.Optional(confuse.Filename()),
        "the path of a folder",
    )
    site = read_setting(view["models_url"], str, "a URL").rstrip("/") + "/"
    default = Path(beets_config.config_dir()) / "audiofeatures" / "models"
    return ModelFiles(Path(folder) if folder else default, tuple(names), site)


def classifier_spec(view: confuse.ConfigView) -> ClassifierSpec | None:
    files = model_files(view)
    if not files.names:
        return None
    route = read_choice(view["model_route"], ROUTES)
    top = read_number(
        view["top_classes"], 0, "0 (all classes) or more", whole=True
    )
    files.heads()  # every description present and readable
    return ClassifierSpec(files, resolve_route(route), top)


def classifier_field_types(view: confuse.ConfigView) -> dict[str, Kind]:
    """Fields of the configured heads (none while their descriptions
    are missing: ``beet essentia`` says so)."""
    kinds: dict[str, Kind] = {}
    try:
        for head in model_files(view).heads():
            kinds.update(head.fields())
    except (UserError, SetupError):
        pass
    return kinds


@functools.lru_cache(maxsize=4)
def described_heads(files: ModelFiles) -> list[Head]:
    """The heads' descriptions, read once per run."""
    return files.heads()
