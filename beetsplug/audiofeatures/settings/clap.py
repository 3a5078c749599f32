"""The ``audiofeatures.clap`` settings, each checked when a command uses it.

Loading the plugin reads nothing here that can fail: a malformed setting
must not break ``beet ls``. Each command asks for the settings it uses
(``ClapSettings(...).require(*QUERY)``) before it does any work, and a
bad value is one line naming the setting, the value and what is allowed.
A command that does not use a setting is not affected by it: a bad
``tags`` does not stop ``beet clapquery``, a bad ``jobs`` does not stop
``--stats``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import confuse
from beets import config as beets_config

from beets_audiofeatures.errors import CommandError, SettingError, SetupError
from beetsplug.audiofeatures.settings.translation import TranslationSettings
from beetsplug.audiofeatures.settings.values import is_number, playlist_folder

if TYPE_CHECKING:
    from beets.dbcore import types
    from beets.library import Library

    from beets_audiofeatures.clap.audio import WindowPolicy
    from beets_audiofeatures.clap.duplicates import DuplicateRules
    from beets_audiofeatures.clap.engine import ScanOptions
    from beets_audiofeatures.clap.model import ModelSpec
    from beets_audiofeatures.clap.store import EmbeddingStore
    from beets_audiofeatures.clap.zero_shot import LabelSet

PIPELINE_VERSION = 1
AMODELS = ("auto", "HTSAT-tiny", "HTSAT-base", "HTSAT-large")
#: how the audio tower runs, and at which precision (``clap.model``'s)
ROUTES = ("torch", "onnx")
PRECISIONS = ("fp32", "int8")
DEVICES = ("auto", "cpu", "cuda", "mps")
#: The search index's scan copies (``beets_audiofeatures.clap.engine``).
INDEX_KINDS = ("auto", "exact", "ivf")

# Every default of the section, and only here (the core's own defaults
# for the same values are checked equal by tests/test_config_reference).
DEFAULTS: dict[str, Any] = {
    "auto": False,
    "model": "laion/larger_clap_music",
    "tokenizer": "roberta-base",  # for .pt checkpoints only
    "amodel": "auto",
    "fusion": None,
    "trust_checkpoint": False,
    "device": "auto",
    "threads": 0,  # 0: torch's default, one per core
    "interop_threads": 1,
    # How the audio tower runs: torch, or onnx (ONNX Runtime on the CPU,
    # exported once into <cache_dir>/onnx) at fp32 or int8 precision.
    "route": "torch",
    "precision": "fp32",
    # Prompts in another language than English: the translation model
    # (a hub id such as Helsinki-NLP/opus-mt-ru-en, a folder, or no),
    # and which prompts it translates: auto (those in a script other
    # than Latin) or the code of the language Latin prompts are in too.
    "translate": False,
    "prompt_language": "auto",
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
    "tag_prompt": "{} music",
    # `beet clapradio` / `beet clappath`: tracks listed, and how many may
    # share an artist or an album (0: no cap).
    "radio_length": 25,
    "max_per_artist": 2,
    "max_per_album": 1,
    # Versions of one recording (`beet clapdupes`; a radio plays one):
    # the least cosine similarity, the most seconds their durations differ.
    "duplicate_threshold": 0.98,
    "duplicate_tolerance": 2.0,
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
QUERY = ("spec", "policy", "cache_dir", "scan", "limit", "translate")
#: What ``--tags`` adds.
TAGS = ("label_sets", "translate")
#: What ``beet clapdupes`` uses.
DUPLICATES = ("policy", "cache_dir", "scan", "duplicate_rules")
#: What ``beet clapradio`` and ``beet clappath`` use.
PLAYLISTS = (
    "spec", "policy", "cache_dir", "scan", "radio_length",
    "max_per_artist", "max_per_album", "duplicate_rules", "translate",
)  # fmt: skip


def default_cache_dir() -> Path:
    return Path(beets_config.config_dir()) / "audiofeatures" / "clap"


def library_cache(cache: Path, lib: Library) -> Path:
    """The stores of one library database: two libraries sharing a
    cache folder never share vectors, since item ids are per library."""
    from beetsplug.audiofeatures.library_query import library_name

    return cache / library_name(lib.path)


def cache_dir(view: confuse.ConfigView) -> Path | None:
    """Where the stores live, for listeners that must not fail (``beet
    rm``): None while the setting is malformed (the commands that use it
    say so)."""
    try:
        return ClapSettings(view).cache_dir
    except SettingError:
        return None


def tag_field_types(
    view: confuse.ConfigView,
) -> dict[str, types.Type[Any, Any]]:
    """Types of the configured zero-shot fields, for the plugin's
    ``item_types``. Never fails: while the setting is malformed there are
    none, and ``beet clap --tags`` says what is wrong."""
    try:
        sets = ClapSettings(view).label_sets
    except SetupError:
        return {}
    if not sets:
        return {}
    from beetsplug.audiofeatures.fields import PROBABILITY, STRING

    kinds: dict[str, types.Type[Any, Any]] = {"clap_tags_model": STRING}
    for label_set in sets:
        kinds[label_set.field] = STRING
        for label in label_set.labels:
            kinds[label_set.label_field(label)] = PROBABILITY
    return kinds


class ClapSettings(TranslationSettings):
    """The settings a CLAP command uses, command-line options first.

    Each property checks its setting the first time it is read and raises
    ``SettingError`` with one line; ``require`` reads a command's settings
    up front, so a bad value stops the command before it does anything.
    """

    OPTIONS: ClassVar[dict[str, str]] = {
        "jobs": "-j/--jobs", "limit": "-n/--limit",
        "radio_length": "-n/--limit", "max_per_artist": "--max-per-artist",
        "max_per_album": "--max-per-album",
        "duplicate_threshold": "--threshold",
    }  # fmt: skip

    @classmethod
    def from_config(
        cls, view: confuse.ConfigView, opts: object = None
    ) -> ClapSettings:
        """Settings checked for embedding (``beet clap``, the import
        stage)."""
        return cls(view, opts).require(*EMBEDDING)

    @cached_property
    def auto(self) -> bool:
        return self.flag("auto")

    # -- the model ------------------------------------------------------

    @cached_property
    def model(self) -> str:
        return self.text("model", "a hub id, a model folder or a .pt file")

    @cached_property
    def spec(self) -> ModelSpec:
        """How to load and run the model (only commands that may load it
        read this)."""
        fusion = self.raw("fusion")
        if fusion is not None and not isinstance(fusion, bool):
            raise self.bad(
                "fusion", "yes, no or nothing (as the checkpoint says)"
            )
        threads = self.count("threads", 0, " (one per core)")
        from beets_audiofeatures.clap.model import ModelSpec

        return ModelSpec(
            model=self.model,
            tokenizer=self.text("tokenizer", "a hub id or a tokenizer folder"),
            amodel=self.choice("amodel", AMODELS),
            fusion=fusion,
            trust_checkpoint=self.flag("trust_checkpoint"),
            device=self.choice("device", DEVICES),
            threads=threads,
            interop_threads=self.count("interop_threads", 1),
            route=self.route,
            precision=self.precision,
            export_dir=str(self.cache_dir / "onnx"),
        )

    @cached_property
    def route(self) -> str:
        return self.choice("route", ROUTES)

    @cached_property
    def precision(self) -> str:
        return self.choice("precision", PRECISIONS)

    @cached_property
    def policy(self) -> WindowPolicy:
        from beets_audiofeatures.clap.audio import WindowPolicy

        return WindowPolicy(count=self.count("windows", 1))

    # -- the work -------------------------------------------------------

    @cached_property
    def jobs(self) -> int:
        return self.count("jobs", 1)

    @cached_property
    def batch_size(self) -> int:
        return self.count("batch_size", 1)

    @cached_property
    def force(self) -> bool:
        # The setting is checked even when -f is given: it is in use.
        return self.flag("force") or bool(self.option("force"))

    @cached_property
    def limit(self) -> int:
        return self.count("limit", 1)

    @cached_property
    def radio_length(self) -> int:
        return self.count("radio_length", 1)

    @cached_property
    def max_per_artist(self) -> int:
        return self.count("max_per_artist", 0, " (0: no cap)")

    @cached_property
    def max_per_album(self) -> int:
        return self.count("max_per_album", 0, " (0: no cap)")

    @cached_property
    def duplicate_rules(self) -> DuplicateRules:
        from beets_audiofeatures.clap.duplicates import DuplicateRules

        threshold = self.option("duplicate_threshold")
        if threshold is None:
            threshold = self.raw("duplicate_threshold")
            if not is_number(threshold) or not 0 < threshold <= 1:
                raise self.bad(
                    "duplicate_threshold",
                    "a similarity above 0 and at most 1, such as 0.98",
                )
        elif not is_number(threshold) or not 0 < threshold <= 1:
            raise SettingError(
                f"{self.OPTIONS['duplicate_threshold']} must be a similarity "
                f"above 0 and at most 1, not {threshold}"
            )
        tolerance = self.number("duplicate_tolerance", "seconds, 0 or more")
        return DuplicateRules(float(threshold), float(tolerance))

    @cached_property
    def dump(self) -> Path | None:
        """``--dump``'s folder, checked before any track is embedded: a
        file there would fail every track's copy."""
        folder = self.option("dump")
        if not folder:
            return None
        path = Path(folder).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise CommandError(
                f"--dump {folder} is a file: give a folder (it is made when "
                "missing)"
            )
        return path

    # -- where the vectors are ------------------------------------------

    @cached_property
    def scan(self) -> ScanOptions:
        """The search index's scan copy (``index``, ``nprobe``)."""
        from beets_audiofeatures.clap.engine import ScanOptions

        return ScanOptions(
            kind=self.choice("index", INDEX_KINDS),
            nprobe=self.count("nprobe", 1),
        )

    @cached_property
    def cache_dir(self) -> Path:
        """Where the stores live (``cache_dir``, or beets' config folder)."""
        value = self.raw("cache_dir")
        if value is None or value == "":
            return default_cache_dir()
        allowed = "the path of a folder (nothing for the default)"
        if not isinstance(value, str):
            raise self.bad("cache_dir", allowed)
        try:
            folder = Path(
                self.view["cache_dir"].get(confuse.Filename())
            ).expanduser()
        except confuse.ConfigError as exc:
            raise self.bad("cache_dir", allowed) from exc
        if folder.exists() and not folder.is_dir():
            raise self.bad("cache_dir", f"a folder ({folder} is a file)")
        return folder

    @cached_property
    def playlist_dir(self) -> Path | None:
        """Where ``--playlists`` writes (and the page saves, unless
        ``web.playlist_dir`` says otherwise): this setting, else
        smartplaylist's ``playlist_dir``; None when neither is set."""
        return playlist_folder(self.view["playlist_dir"])

    @property
    def pipeline(self) -> dict[str, Any]:
        """How audio becomes a vector (with the model, the identity)."""
        from beets_audiofeatures.clap import onnx_route

        return {
            "version": PIPELINE_VERSION,
            "seconds": 10,
            **self.policy.describe(),
            **onnx_route.route_identity(self.route, self.precision),
        }

    def identity(self) -> dict[str, Any]:
        """What determines the vectors: the model file(s) and the audio
        pipeline (only the model's name and files count, not how it
        runs). Computed once per process while the files stay as they
        are; the same object each time: do not change it."""
        from beetsplug.audiofeatures.settings.model_identity import (
            current_identity,
        )

        return current_identity(self.model, self.pipeline)

    def store(self, lib: Library) -> EmbeddingStore:
        """The configured model's store for this library."""
        from beets_audiofeatures.clap.identity import model_tag
        from beets_audiofeatures.clap.store import EmbeddingStore

        return EmbeddingStore(
            library_cache(self.cache_dir, lib),
            model_tag(self.identity()),
            self.scan,
        )

    # -- zero-shot tags -------------------------------------------------

    @cached_property
    def label_sets(self) -> tuple[LabelSet, ...]:
        tags, template = self.raw("tags"), self.raw("tag_prompt")
        if tags in (None, {}) and template == DEFAULTS["tag_prompt"]:
            return ()  # none configured: nothing to check or to import
        from beets_audiofeatures.clap.zero_shot import parse_label_sets

        return tuple(parse_label_sets(tags, template))
