"""Analysis profiles: which Essentia pipeline runs, with which options.

``stored`` (the default) computes exactly the fields the plugin stores,
with ``music``'s algorithms on spectra computed once (``stored.py``);
``music`` is Essentia's full ``MusicExtractor``; ``rhythm``, ``tonal`` and
``lowlevel`` (or a comma-separated mix such as ``rhythm,tonal``) are light
pipelines of single algorithms that fill one descriptor group each;
``freesound`` is ``FreesoundExtractor``; a YAML file is a ``MusicExtractor``
profile, checked here against Essentia's known traps.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ..errors import SetupError
from . import felt_tempo, key_estimation
from .descriptors import GROUPS

NAMED = ("stored", "music", "freesound", *GROUPS)

#: The earlier profiles whose stored values a profile takes for its own:
#: ``stored`` computes ``music``'s values with the same algorithms, so a
#: library analysed with ``music`` (the default before) stays current.
ACCEPTS: dict[str, tuple[str, ...]] = {"stored": ("music",)}

#: Profile keys whose lists Essentia mishandles inside a profile
#: (MTG/essentia#871); they go to the constructor instead.
_STATS_KEYS = {
    ("lowlevel", "stats"): "lowlevelStats",
    ("rhythm", "stats"): "rhythmStats",
    ("tonal", "stats"): "tonalStats",
    ("lowlevel", "mfccStats"): "mfccStats",
    ("lowlevel", "gfccStats"): "gfccStats",
}

#: The key profiles of Essentia's KeyExtractor, which computes the stored
#: key for the music profile and the light tonal pipeline alike.
KEY_PROFILES = (
    "edma", "edmm", "bgate", "krumhansl", "temperley", "shaath", "noland",
    "braw", "diatonic", "tonictriad", "thpcp", "gomez",
)  # fmt: skip


#: The key method's defaults, the winners of ``benchmarks/accuracy.py``.
DEFAULT_KEY_PROFILE = key_estimation.DEFAULT_PROFILE
DEFAULT_MIN_KEY_STRENGTH = key_estimation.DEFAULT_MIN_STRENGTH


class ProfileError(SetupError, ValueError):
    """A profile that cannot be used; the message says why."""

    section = "essentia"


@dataclass(frozen=True)
class Profile:
    name: str  # stored in ``essentia_profile``
    extractor: str  # "stored", "music", "freesound" or "light"
    groups: tuple[str, ...] = GROUPS
    options: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, list[str]] = field(default_factory=dict)
    key_profile: str = DEFAULT_KEY_PROFILE
    #: A key found with less strength than this is not stored.
    min_key_strength: float = DEFAULT_MIN_KEY_STRENGTH

    def method(self, group: str, version: str) -> str:
        """What computes ``group``'s values under this profile: stored
        per group, so a value is current only where the method that would
        compute it now is the one that did (``music, key edma, essentia
        2.1b6``). The light profiles share one method per group whatever
        they are mixed with."""
        parts = [self.extractor if self.extractor == "light" else self.name]
        if group == "rhythm" and self.extractor in ("music", "stored"):
            parts.append(f"tempo {felt_tempo.method()}")
        if group == "tonal" and self.extractor == "freesound":
            parts.append("key of the extractor")
        elif group == "tonal":
            parts.append(
                key_estimation.method(
                    self.key_profile,
                    self.min_key_strength,
                    music=self.extractor in ("music", "stored"),
                )
            )
        parts.append(f"essentia {version}")
        return ", ".join(parts)

    @property
    def accepts(self) -> tuple[str, ...]:
        """Earlier profiles whose values count as this profile's own."""
        return ACCEPTS.get(self.name, ()) if not self.options else ()

    def current_methods(self, group: str, version: str) -> tuple[str, ...]:
        """The stored methods under which ``group``'s values are current:
        this profile's own, then those of the profiles it accepts (with
        the same key settings)."""
        return (
            self.method(group, version),
            *(
                replace(self, name=name, extractor=name).method(group, version)
                for name in self.accepts
            ),
        )

    @property
    def label(self) -> str:
        """The name as the command line shows it: ``stored (values of
        music count as current)``."""
        if not self.accepts:
            return self.name
        return (
            f"{self.name} (values of {' or '.join(self.accepts)} "
            "count as current)"
        )

    @property
    def svm_models(self) -> list[str]:
        """Names of the classic SVM models the profile runs."""
        highlevel = self.options.get("highlevel")
        if not isinstance(highlevel, dict):
            return []
        return [Path(m).stem for m in highlevel.get("svm_models") or []]


def resolve_profile(
    spec: str,
    key_profile: str = DEFAULT_KEY_PROFILE,
    base_dir: Path | None = None,
    min_key_strength: float = DEFAULT_MIN_KEY_STRENGTH,
) -> Profile:
    """The profile named by ``spec``: a name, a light mix or a YAML path."""
    spec = spec.strip()
    if spec.endswith((".yaml", ".yml")) or "/" in spec:
        profile = _from_yaml(_locate(spec, base_dir), key_profile)
    elif spec in ("stored", "music", "freesound"):
        profile = Profile(spec, spec, key_profile=key_profile)
    else:
        groups = [g.strip() for g in spec.split(",") if g.strip()]
        unknown = [g for g in groups if g not in GROUPS]
        if unknown or not groups:
            raise ProfileError(
                f"unknown profile {spec!r}: use one of {', '.join(NAMED)}, "
                "a mix such as rhythm,tonal, or a path to a YAML profile"
            )
        ordered = tuple(g for g in GROUPS if g in groups)
        profile = Profile(",".join(ordered), "light", ordered)
    if key_profile not in KEY_PROFILES:
        raise ProfileError(
            f"key_profile {key_profile!r} is not available: use one of "
            f"{', '.join(KEY_PROFILES)}"
        )
    return replace(
        profile, key_profile=key_profile, min_key_strength=min_key_strength
    )


def _locate(spec: str, base_dir: Path | None) -> Path:
    path = Path(spec).expanduser()
    if not path.is_absolute() and base_dir and (base_dir / path).exists():
        path = base_dir / path
    if not path.is_file():
        raise ProfileError(f"profile file not found: {path}")
    return path.resolve()


def _from_yaml(path: Path, key_profile: str) -> Profile:
    text = path.read_text(encoding="utf-8")
    try:
        options = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        reason = str(exc).replace("\n", " ")
        raise ProfileError(f"{path}: not valid YAML: {reason}") from exc
    if not isinstance(options, dict):
        raise ProfileError(f"{path}: a profile must be a mapping of options")

    rate = options.get("analysisSampleRate", 44100)
    if float(rate) != 44100:
        raise ProfileError(
            f"{path}: analysisSampleRate must stay 44100; Essentia's rhythm "
            "and tonal algorithms assume it and give wrong tempo and key "
            "at other rates"
        )

    stats: dict[str, list[str]] = {}
    for (section, key), argument in _STATS_KEYS.items():
        block = options.get(section)
        if isinstance(block, dict) and key in block:
            stats[argument] = [str(s) for s in block.pop(key)]

    highlevel = options.get("highlevel")
    if isinstance(highlevel, dict) and highlevel.get("svm_models"):
        models = []
        for model in highlevel["svm_models"]:
            model_path = (path.parent / Path(model).expanduser()).resolve()
            if not model_path.is_file():
                raise ProfileError(f"{path}: SVM model not found: {model_path}")
            models.append(str(model_path))
        highlevel["svm_models"] = models

    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return Profile(
        f"{path.stem}@{digest}", "music", GROUPS, options, stats, key_profile
    )
