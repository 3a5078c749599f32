"""beets-audiofeatures: Essentia descriptors and CLAP search for beets.

This package is the beets side; ``beets_audiofeatures`` (which never
imports beets) does the analysis. Its rooms (``docs/architecture.rst``):
``commands`` (one thin module per command, from one table, each imported
only when it runs), ``settings`` (one reader per section), ``analysis``
(what each analysis needs and how results are stored, through the one
runner), ``search`` (the vector queries, radio and paths beneath the
commands and the page), ``web`` (the page), and a floor of fields,
library queries, query words and output. This module is the plugin
class: configuration, field types, template functions, listeners, and
the commands and import stages of the tables. It loads only what every
beets command needs: ``beet ls`` pays for none of the work.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from beets import config as beets_config
from beets.exceptions import UserError
from beets.plugins import BeetsPlugin
from mediafile import MediaFile

from beetsplug.audiofeatures.commands import COMMANDS, imported
from beetsplug.audiofeatures.commands.boundary import fatal_errors
from beetsplug.audiofeatures.fields import (
    ALBUM_TYPES,
    ITEM_TYPES,
    MOOD_TAG,
    KeyType,
    key_code,
    type_for,
)
from beetsplug.audiofeatures.settings import clap as clap_settings
from beetsplug.audiofeatures.settings import cluster as cluster_settings
from beetsplug.audiofeatures.settings import essentia as essentia_settings
from beetsplug.audiofeatures.settings import web as web_settings
from beetsplug.audiofeatures.settings.values import Settings

if TYPE_CHECKING:
    from beets import ui
    from beets.dbcore import types
    from beets.importer import ImportSession, ImportTask
    from beets.library import Item, Library

    from beetsplug.audiofeatures.analysis.runner import Runner


class CoreLog(logging.Handler):
    """The core logs through the standard ``logging`` under its package's
    name (it never imports beets); its lines join the plugin's on beets'
    log (``audiofeatures: ...``), at beets' verbosity."""

    def __init__(self, log: logging.Logger) -> None:
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.log.log(record.levelno, "{}", record.getMessage())

    @classmethod
    def route(cls, log: logging.Logger) -> None:
        """Send the core's lines to ``log`` (once: a later plugin
        instance replaces the earlier one's route)."""
        core = logging.getLogger("beets_audiofeatures")
        for handler in [h for h in core.handlers if isinstance(h, cls)]:
            core.removeHandler(handler)
        core.addHandler(cls(log))
        core.propagate = False  # one record a line: beets' log goes on up


class ImportStage:
    """One analysis run on every imported album when its section's
    ``auto`` is on: the runner (workers, model) starts with the first
    album and ends with the import. ``runner`` is ``module:function``
    below this package, imported only when an import runs."""

    def __init__(
        self,
        section: str,
        runner: str,
        config: Any,
        log: logging.Logger,
    ) -> None:
        self.section = section
        self.make_runner = runner
        self.config = config
        self.log = log
        self._runner: Runner[Any, Any, Any] | None = None

    def auto(self) -> bool:
        # Read when an import runs: a bad value must not break other
        # commands.
        return Settings(self.config[self.section]).flag("auto")

    def run(self, session: ImportSession, task: ImportTask) -> None:
        with fatal_errors():
            if not self.auto():
                return
            if self._runner is None:
                make = imported(self.make_runner)
                self._runner = make(
                    self.config[self.section], self.config["cluster"],
                    session.lib, self.log,
                )  # fmt: skip
            self._runner.run_import(task.imported_items())

    def close(self, **_: Any) -> None:
        if self._runner is not None:
            self._runner.close()  # the CLAP index is folded once per import
            self._runner = None


class AudioFeaturesPlugin(BeetsPlugin):
    # Per instance: the zero-shot tag fields come from the configuration.
    item_types: dict[str, types.Type[Any, Any]]
    album_types: ClassVar[dict[str, types.Type[Any, Any]]] = ALBUM_TYPES

    def __init__(self) -> None:
        super().__init__()
        CoreLog.route(self._log)
        self.config.add(
            {
                "essentia": essentia_settings.DEFAULTS,
                "clap": clap_settings.DEFAULTS,
                "cluster": cluster_settings.DEFAULTS,
                "web": web_settings.DEFAULTS,
            }
        )
        self.item_types = (
            ITEM_TYPES
            | {
                name: type_for(kind)
                for name, kind in essentia_settings.classifier_field_types(
                    self.config["essentia"]
                ).items()
            }
            | clap_settings.tag_field_types(self.config["clap"])
        )
        # The MOOD tag is a file field only for users who tag files with
        # it: a file field is read on every import, and would leave an
        # empty essentia_moods on every track. (Read leniently: a bad
        # value is reported by beet essentia, which validates it.)
        wants_moods = self.config["essentia"]["write_tags"].get() is True
        if wants_moods and "essentia_moods" not in MediaFile.__dict__:
            self.add_media_field("essentia_moods", MOOD_TAG)
        self.template_funcs["camelot"] = key_code("camelot")
        self.template_funcs["openkey"] = key_code("open_key")
        KeyType.spelling = self._typed_key_spelling
        # Essentia first, then CLAP; both are always there and read their
        # ``auto`` setting when an import runs.
        self.stages = {
            section: ImportStage(section, runner, self.config, self._log)
            for section, runner in (
                ("essentia", "commands.essentia:import_runner"),
                ("clap", "commands.clap:import_runner"),
            )
        }
        self.import_stages = [stage.run for stage in self.stages.values()]
        for stage in self.stages.values():
            self.register_listener("import", stage.close)
            self.register_listener("cli_exit", stage.close)
        # After the runners: the playlists see what the import embedded.
        self.register_listener("import", self._rewrite_saved_playlists)
        self.register_listener("item_removed", self._forget_item)
        self.register_listener("library_opened", self._repair_albums)

    def commands(self) -> list[ui.Subcommand]:
        return [
            command.subcommand(self.config, self._log) for command in COMMANDS
        ]

    def _typed_key_spelling(self) -> str:
        """``key_spelling`` for a key a user types (``beet modify
        essentia_key=8A``), read then: a bad value is its one line."""
        with fatal_errors():
            view = self.config["essentia"]
            return essentia_settings.EssentiaSettings(view).key_spelling

    def _repair_albums(self, lib: Library) -> None:
        """Move 0.1.0's album values to their own names
        (``albums.repair_album_fields``), once per library database: the
        names it looks for are never written again, and the look costs a
        scan of the album attributes on every command. A file lists the
        databases already looked at, read here before anything of the
        analysis is imported."""
        done_file = (
            Path(beets_config.config_dir()) / "audiofeatures" / "repaired"
        )
        database = os.fsdecode(os.path.abspath(lib.path))
        try:
            done = done_file.read_text(encoding="utf-8").splitlines()
        except OSError:
            done = []
        if database in done:
            return
        from beetsplug.audiofeatures.analysis import albums

        albums.repair_album_fields(lib, self._log)
        with contextlib.suppress(OSError):  # then it looks again next time
            done_file.parent.mkdir(parents=True, exist_ok=True)
            with done_file.open("a", encoding="utf-8") as out:
                out.write(database + "\n")

    def _rewrite_saved_playlists(self, lib: Library, **_: Any) -> None:
        """With ``auto``, an import rewrites the saved playlists; one that
        cannot be written is a warning, not a failed import."""
        view = self.config["clap"]
        try:
            with fatal_errors():
                if (
                    not self.stages["clap"].auto()
                    or not view["playlists"].get()
                ):
                    return
                # beets sends ``import`` after ``beet import --pretend``
                # too, which must change nothing.
                if beets_config["import"]["pretend"].get(bool):
                    return
                from beetsplug.audiofeatures.search import saved_playlists

                saved_playlists.write_saved_playlists(view, self._log, lib)
        except UserError as exc:
            self._log.warning("saved playlists not rewritten: {}", exc)

    def _forget_item(self, item: Item, **_: Any) -> None:
        # Only the cache location matters here: a CLAP setting that is
        # wrong for embedding must not break `beet rm`.
        cache = clap_settings.cache_dir(self.config["clap"])
        if cache is None:
            return
        from beetsplug.audiofeatures.analysis import clap_store

        clap_store.forget_item(cache, item)
