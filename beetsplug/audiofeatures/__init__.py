"""beets-audiofeatures: Essentia descriptors and CLAP search for beets.

This package is the beets side: the plugin class (configuration, field
types, listeners, import stages, template functions), the command lines
(``subcommands``), the settings (``essentia_settings``,
``clap_settings``), what each analysis needs and how its results are
stored (``essentia_analysis``, ``clap_analysis``), and the one runner
that drives them (``runner``). The analysis itself lives in the
``beets_audiofeatures`` package, which never imports beets.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from beets import config as beets_config
from beets import ui
from beets.exceptions import UserError
from beets.plugins import BeetsPlugin
from mediafile import MediaFile

from beets_audiofeatures.essentia.keys import parse_key
from beetsplug.audiofeatures.analysis import albums
from beetsplug.audiofeatures.analysis import clap_store as clap_store_report
from beetsplug.audiofeatures.analysis.runner import Runner
from beetsplug.audiofeatures.commands import clap as clap_command
from beetsplug.audiofeatures.commands import (
    clapdupes,
    clapquery,
    clapradio,
    clapweb,
)
from beetsplug.audiofeatures.commands import essentia as essentia_command
from beetsplug.audiofeatures.commands import parsers as subcommands
from beetsplug.audiofeatures.fields import (
    ALBUM_TYPES,
    ITEM_TYPES,
    MOOD_TAG,
    type_for,
)
from beetsplug.audiofeatures.search import saved_playlists
from beetsplug.audiofeatures.settings import clap as clap_settings
from beetsplug.audiofeatures.settings import cluster as cluster_settings
from beetsplug.audiofeatures.settings import essentia as essentia_settings
from beetsplug.audiofeatures.settings import web as web_settings
from beetsplug.audiofeatures.settings.values import read_setting

if TYPE_CHECKING:
    from beets.dbcore import types
    from beets.importer import ImportSession, ImportTask
    from beets.library import Library


def _key_code(code: str) -> Any:
    def render(text: str) -> str:
        key = parse_key(text) if text else None
        return getattr(key, code) if key else ""

    return render


class AudioFeaturesPlugin(BeetsPlugin):
    # Per instance: the zero-shot tag fields come from the configuration.
    item_types: dict[str, types.Type[Any, Any]]
    album_types: ClassVar[dict[str, types.Type[Any, Any]]] = ALBUM_TYPES

    def __init__(self) -> None:
        super().__init__()
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
        self.template_funcs["camelot"] = _key_code("camelot")
        self.template_funcs["openkey"] = _key_code("open_key")
        self._import_runner: Runner[Any, Any, Any] | None = None
        self._clap_runner: Runner[Any, Any, Any] | None = None
        # Both stages are always there and read their ``auto`` setting
        # when an import runs: a bad value must not break other commands.
        self.import_stages = [
            self.essentia_import_stage,
            self.clap_import_stage,
        ]
        self.register_listener("import", self._close_import_runner)
        self.register_listener("cli_exit", self._close_import_runner)
        self.register_listener("import", self._close_clap_runner)
        # After the runner: the playlists see what the import embedded.
        self.register_listener("import", self._rewrite_saved_playlists)
        self.register_listener("item_removed", self._forget_item)
        self.register_listener("library_opened", self._repair_albums)

    def _auto(self, section: str) -> bool:
        return bool(
            read_setting(self.config[section]["auto"], bool, "yes or no")
        )

    def _repair_albums(self, lib: Library) -> None:
        done = Path(beets_config.config_dir()) / "audiofeatures" / "repaired"
        albums.repair_once(lib, self._log, done)

    def commands(self) -> list[ui.Subcommand]:
        return [
            subcommands.essentia(self._run_essentia),
            subcommands.clap(self._run_clap),
            subcommands.clapquery(self._run_clapquery),
            subcommands.clapradio(self._run_clapradio),
            subcommands.clappath(self._run_clappath),
            subcommands.clapdupes(self._run_clapdupes),
            subcommands.clapweb(self._run_clapweb),
            subcommands.clapmap(self._run_clapmap),
        ]

    def _run_essentia(self, lib: Library, opts: Any, args: list[str]) -> None:
        essentia_command.run_command(
            self.config["essentia"], self._log, lib, opts, args,
            self.config["cluster"],
        )  # fmt: skip

    def essentia_import_stage(
        self, session: ImportSession, task: ImportTask
    ) -> None:
        """Analyse imported tracks (the workers start once per import)."""
        if not self._auto("essentia"):
            return
        with subcommands.fatal_errors():
            if self._import_runner is None:
                self._import_runner = essentia_command.import_runner(
                    self.config["essentia"], session.lib, self._log,
                    self.config["cluster"],
                )  # fmt: skip
            self._import_runner.run_import(task.imported_items())

    def _close_import_runner(self, **_: Any) -> None:
        if self._import_runner is not None:
            self._import_runner.close()
            self._import_runner = None

    def _run_clap(self, lib: Library, opts: Any, args: list[str]) -> None:
        if opts.map:
            clapweb.run_map(
                self.config["clap"], self.config["web"], self._log, lib, opts
            )
            return
        clap_command.run_clap(
            self.config["clap"], self._log, lib, opts, args,
            self.config["cluster"],
        )  # fmt: skip

    def _run_clapquery(self, lib: Library, opts: Any, args: list[str]) -> None:
        clapquery.run_clapquery(self.config["clap"], self._log, lib, opts, args)

    def _run_clapradio(self, lib: Library, opts: Any, args: list[str]) -> None:
        clapradio.run_clapradio(self.config["clap"], self._log, lib, opts, args)

    def _run_clappath(self, lib: Library, opts: Any, args: list[str]) -> None:
        clapradio.run_clappath(self.config["clap"], self._log, lib, opts, args)

    def _run_clapdupes(self, lib: Library, opts: Any, args: list[str]) -> None:
        clapdupes.run_clapdupes(self.config["clap"], self._log, lib, opts, args)

    def _run_clapweb(self, lib: Library, opts: Any, args: list[str]) -> None:
        clapweb.run_clapweb(
            self.config["clap"], self.config["web"], self._log, lib, opts
        )

    def _run_clapmap(self, lib: Library, opts: Any, args: list[str]) -> None:
        clapweb.run_clapmap(
            self.config["clap"], self.config["web"], self._log, lib, opts
        )

    def clap_import_stage(
        self, session: ImportSession, task: ImportTask
    ) -> None:
        """Embed imported tracks (the model is loaded once per import)."""
        if not self._auto("clap"):
            return
        with subcommands.fatal_errors():
            if self._clap_runner is None:
                self._clap_runner = clap_command.import_runner(
                    self.config["clap"], session.lib, self._log,
                    self.config["cluster"],
                )  # fmt: skip
            self._clap_runner.run_import(task.imported_items())

    def _close_clap_runner(self, **_: Any) -> None:
        if self._clap_runner is not None:
            self._clap_runner.close()  # folds the index once per import
            self._clap_runner = None

    def _rewrite_saved_playlists(self, lib: Library, **_: Any) -> None:
        """With ``auto``, an import rewrites the saved playlists; one that
        cannot be written is a warning, not a failed import."""
        view = self.config["clap"]
        try:
            if not self._auto("clap") or not view["playlists"].get():
                return
            # beets sends ``import`` after ``beet import --pretend`` too,
            # which must change nothing.
            if beets_config["import"]["pretend"].get(bool):
                return
            with subcommands.fatal_errors():
                saved_playlists.write_saved_playlists(view, self._log, lib)
        except UserError as exc:
            self._log.warning("saved playlists not rewritten: {}", exc)

    def _forget_item(self, item: Any, **_: Any) -> None:
        # Only the cache location matters here: a CLAP setting that is
        # wrong for embedding must not break `beet rm`.
        cache = clap_settings.cache_dir(self.config["clap"])
        clap_store_report.forget_item(cache, item)
