"""The ``audiofeatures.clap`` settings, each checked when a command uses it.

Loading the plugin reads nothing here that can fail: a malformed setting
must not break ``beet ls``. Each command asks for the settings it uses
(``ClapSettings.require``) before it does any work, and a bad value is
one line naming the setting, the value and what is allowed. A command
that does not use a setting is not affected by it: a bad ``tags`` does
not stop ``beet clapquery``, a bad ``jobs`` does not stop ``--stats``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import confuse
from beets import config as beets_config
from beets.exceptions import UserError

from beets_audiofeatures.clap.audio import WindowPolicy
from beets_audiofeatures.clap.duplicates import DuplicateRules
from beets_audiofeatures.clap.engine import KINDS, ScanOptions
from beets_audiofeatures.clap.identity import model_identity, model_tag
from beets_audiofeatures.clap.model import ModelSpec
from beets_audiofeatures.clap.onnx_route import (
    PRECISIONS,
    ROUTES,
    route_identity,
)
from beets_audiofeatures.clap.store import EmbeddingStore
from beets_audiofeatures.clap.zero_shot import (
    DEFAULT_TEMPLATE,
    LabelSet,
    parse_label_sets,
)
from beets_audiofeatures.errors import SetupError

from . import input_limits
from .fields import PROBABILITY, STRING
from .library_query import library_name
from .setting_values import bad_setting

if TYPE_CHECKING:
    from beets.library import Library

PIPELINE_VERSION = 1
AMODELS = ("auto", "HTSAT-tiny", "HTSAT-base", "HTSAT-large")
DEVICES = ("auto", "cpu", "cuda", "mps")

DEFAULTS: dict[str, Any] = {
    "auto": False,
    "model": ModelSpec.model,
    "tokenizer": ModelSpec.tokenizer,
    "amodel": ModelSpec.amodel,
    "fusion": None,
    "trust_checkpoint": False,
    "device": "auto",
    "threads": 0,  # 0: torch's default, one per core
    "interop_threads": 1,
    # How the audio tower runs: torch, or onnx (ONNX Runtime on the CPU,
    # exported once into <cache_dir>/onnx) at fp32 or int8 precision.
    "route": "torch",
    "precision": "fp32",
    "windows": 3,
    "batch_size": 9,  # three tracks of three windows
    "jobs": 2,
    "cache_dir": None,  # default: <beets config dir>/audiofeatures/clap
    "force": False,
    "limit": 20,
    # The search index's scan copy: auto (exact scan below two million
    # vectors, an inverted file past), exact, or ivf; and how many of
    # the inverted file's groups a query scans.
    "index": "auto",
    "nprobe": 32,
    # Zero-shot tags for `beet clap --tags`: name -> labels (heard as
    # the prompt template) or name -> {label: prompt}.
    "tags": {},
    "tag_prompt": DEFAULT_TEMPLATE,
    # `beet clapradio` / `beet clappath`: tracks listed, and how many may
    # share an artist or an album (0: no cap).
    "radio_length": 25,
    "max_per_artist": 2,
    "max_per_album": 1,
    # Versions of one recording (`beet clapdupes`; a radio plays one):
    # the least cosine similarity, the most seconds their durations differ.
    "duplicate_threshold": DuplicateRules.threshold,
    "duplicate_tolerance": DuplicateRules.tolerance,
    # Saved playlists for `beet clap --playlists`: name -> a radio (see
    # the docs), written as <playlist_dir>/<name>.m3u8.
    "playlists": {},
    "playlist_dir": None,  # default: smartplaylist.playlist_dir
}

#: What ``beet clap`` (and the import stage) uses to embed tracks.
EMBEDDING = (
    "spec", "policy", "cache_dir", "scan", "jobs", "batch_size", "force",
)  # fmt: skip
#: What ``beet clap --stats`` / ``--prune`` use: where the stores are and
#: which one is current.
STORE = ("model", "policy", "cache_dir", "scan")
#: What ``beet clapquery`` uses (``limit`` unless ``-n`` is given).
QUERY = ("spec", "policy", "cache_dir", "scan", "limit")
#: What ``--tags`` adds.
TAGS = ("label_sets",)
#: What ``beet clapdupes`` uses.
DUPLICATES = ("policy", "cache_dir", "scan", "duplicate_rules")
#: What ``beet clapradio`` and ``beet clappath`` use.
PLAYLISTS = (
    "spec", "policy", "cache_dir", "scan", "radio_length",
    "max_per_artist", "max_per_album", "duplicate_rules",
)  # fmt: skip

#: Options that stand for a setting, as the user typed them.
OPTIONS = {
    "jobs": "-j/--jobs", "limit": "-n/--limit", "radio_length": "-n/--limit",
    "max_per_artist": "--max-per-artist", "max_per_album": "--max-per-album",
    "duplicate_threshold": "--threshold",
}  # fmt: skip


def raw(view: confuse.ConfigView, name: str) -> Any:
    """A setting's value as written (the defaults are always there)."""
    try:
        return view[name].get()
    except confuse.ConfigError as exc:
        raise UserError(f"audiofeatures.clap.{name}: {exc}") from exc


def default_cache_dir() -> Path:
    return Path(beets_config.config_dir()) / "audiofeatures" / "clap"


def library_cache(cache: Path, lib: Library) -> Path:
    """The stores of one library database: two libraries sharing a
    cache folder never share vectors, since item ids are per library."""
    return cache / library_name(lib.path)


def cache_dir(view: confuse.ConfigView) -> Path | None:
    """Where the stores live, for listeners that must not fail (``beet
    rm``): None while the setting is malformed (the commands that use it
    say so)."""
    try:
        return ClapSettings(view).cache_dir
    except UserError:
        return None


def tag_field_types(view: confuse.ConfigView) -> dict[str, Any]:
    """Types of the configured zero-shot fields, for the plugin's
    ``item_types``. Never fails: while the setting is malformed there are
    none, and ``beet clap --tags`` says what is wrong."""
    try:
        sets = ClapSettings(view).label_sets
    except (UserError, SetupError):
        return {}
    types: dict[str, Any] = {"clap_tags_model": STRING}
    for label_set in sets:
        types[label_set.field] = STRING
        for label in label_set.labels:
            types[label_set.label_field(label)] = PROBABILITY
    return types


class ClapSettings:
    """The settings a CLAP command uses, command-line options first.

    Each property checks its setting the first time it is read and raises
    ``UserError`` with one line; ``require`` reads a command's settings
    up front, so a bad value stops the command before it does anything.
    """

    def __init__(self, view: confuse.ConfigView, opts: Any = None) -> None:
        self.view = view
        self.opts = opts

    @classmethod
    def from_config(
        cls, view: confuse.ConfigView, opts: Any = None
    ) -> ClapSettings:
        """Settings checked for embedding (``beet clap``, the import
        stage)."""
        return cls(view, opts).require(*EMBEDDING)

    def require(self, *names: str) -> ClapSettings:
        for name in names:
            getattr(self, name)
        return self

    def _option(self, name: str) -> Any:
        return getattr(self.opts, name, None)

    def _count(self, name: str, least: int, meaning: str = "") -> int:
        """A whole number of at least ``least``, from its option (named
        as typed) or its setting."""
        allowed = f"{least}{meaning} or more"
        if (value := self._option(name)) is not None:
            # optparse made it a number
            where = OPTIONS.get(name, f"--{name}")
            return input_limits.count(int(value), where, least, meaning)
        value = raw(self.view, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_setting(self.view[name], f"a whole number, {allowed}")
        if value < least:
            raise bad_setting(self.view[name], allowed)
        if value > input_limits.MOST_COUNT:
            raise bad_setting(
                self.view[name], f"at most {input_limits.MOST_COUNT}"
            )
        return value

    def _flag(self, name: str) -> bool:
        value = raw(self.view, name)
        if not isinstance(value, bool):
            raise bad_setting(self.view[name], "yes or no")
        return value

    def _text(self, name: str, allowed: str) -> str:
        value = raw(self.view, name)
        if not isinstance(value, str) or not value.strip():
            raise bad_setting(self.view[name], allowed)
        return value.strip()

    def _choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = raw(self.view, name)
        if value not in choices:
            raise bad_setting(self.view[name], f"one of {', '.join(choices)}")
        return str(value)

    # -- the model ------------------------------------------------------

    @cached_property
    def model(self) -> str:
        return self._text("model", "a hub id, a model folder or a .pt file")

    @cached_property
    def spec(self) -> ModelSpec:
        """How to load and run the model (only commands that may load it
        read this)."""
        fusion = raw(self.view, "fusion")
        if fusion is not None and not isinstance(fusion, bool):
            raise bad_setting(
                self.view["fusion"],
                "yes, no or nothing (as the checkpoint says)",
            )
        threads = self._count("threads", 0, " (one per core)")
        return ModelSpec(
            model=self.model,
            tokenizer=self._text("tokenizer", "a hub id or a tokenizer folder"),
            amodel=self._choice("amodel", AMODELS),
            fusion=fusion,
            trust_checkpoint=self._flag("trust_checkpoint"),
            device=self._choice("device", DEVICES),
            threads=threads,
            interop_threads=self._count("interop_threads", 1),
            route=self.route,
            precision=self.precision,
            export_dir=str(self.cache_dir / "onnx"),
        )

    @cached_property
    def route(self) -> str:
        return self._choice("route", ROUTES)

    @cached_property
    def precision(self) -> str:
        return self._choice("precision", PRECISIONS)

    @cached_property
    def policy(self) -> WindowPolicy:
        return WindowPolicy(count=self._count("windows", 1))

    # -- the work -------------------------------------------------------

    @cached_property
    def jobs(self) -> int:
        return self._count("jobs", 1)

    @cached_property
    def batch_size(self) -> int:
        return self._count("batch_size", 1)

    @cached_property
    def force(self) -> bool:
        # The setting is checked even when -f is given: it is in use.
        return self._flag("force") or bool(self._option("force"))

    @cached_property
    def limit(self) -> int:
        return self._count("limit", 1)

    @cached_property
    def radio_length(self) -> int:
        return self._count("radio_length", 1)

    @cached_property
    def max_per_artist(self) -> int:
        return self._count("max_per_artist", 0, " (0: no cap)")

    @cached_property
    def max_per_album(self) -> int:
        return self._count("max_per_album", 0, " (0: no cap)")

    @cached_property
    def duplicate_rules(self) -> DuplicateRules:
        threshold = self._option("duplicate_threshold")
        if threshold is None:
            threshold = raw(self.view, "duplicate_threshold")
            where = None
        else:
            where = OPTIONS["duplicate_threshold"]
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not 0 < threshold <= 1
        ):
            if where:
                raise UserError(
                    f"{where} must be a similarity above 0 and at most 1, "
                    f"not {threshold}"
                )
            raise bad_setting(
                self.view["duplicate_threshold"],
                "a similarity above 0 and at most 1, such as 0.98",
            )
        tolerance = raw(self.view, "duplicate_tolerance")
        if (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, (int, float))
            or tolerance < 0
        ):
            raise bad_setting(
                self.view["duplicate_tolerance"], "seconds, 0 or more"
            )
        return DuplicateRules(float(threshold), float(tolerance))

    @cached_property
    def dump(self) -> Path | None:
        folder = self._option("dump")
        return Path(folder).expanduser().resolve() if folder else None

    # -- where the vectors are ------------------------------------------

    @cached_property
    def scan(self) -> ScanOptions:
        """The search index's scan copy (``index``, ``nprobe``)."""
        return ScanOptions(
            kind=self._choice("index", KINDS), nprobe=self._count("nprobe", 1)
        )

    @cached_property
    def cache_dir(self) -> Path:
        """Where the stores live (``cache_dir``, or beets' config folder)."""
        value = raw(self.view, "cache_dir")
        if value is None or value == "":
            return default_cache_dir()
        allowed = "the path of a folder (nothing for the default)"
        if not isinstance(value, str):
            raise bad_setting(self.view["cache_dir"], allowed)
        try:
            folder = Path(
                self.view["cache_dir"].get(confuse.Filename())
            ).expanduser()
        except confuse.ConfigError as exc:
            raise bad_setting(self.view["cache_dir"], allowed) from exc
        if folder.exists() and not folder.is_dir():
            raise bad_setting(
                self.view["cache_dir"], f"a folder ({folder} is a file)"
            )
        return folder

    @property
    def pipeline(self) -> dict[str, Any]:
        """How audio becomes a vector (with the model, the identity)."""
        return {
            "version": PIPELINE_VERSION,
            "seconds": 10,
            **self.policy.describe(),
            **route_identity(self.route, self.precision),
        }

    def identity(self) -> dict[str, Any]:
        """What determines the vectors: the model file(s) and the audio
        pipeline (only the model's name and files count, not how it
        runs)."""
        return model_identity(ModelSpec(model=self.model), self.pipeline)

    def store(self, lib: Library) -> EmbeddingStore:
        """The configured model's store for this library."""
        return EmbeddingStore(
            library_cache(self.cache_dir, lib),
            model_tag(self.identity()),
            self.scan,
        )

    # -- zero-shot tags -------------------------------------------------

    @cached_property
    def label_sets(self) -> tuple[LabelSet, ...]:
        return tuple(
            parse_label_sets(
                raw(self.view, "tags"), raw(self.view, "tag_prompt")
            )
        )
