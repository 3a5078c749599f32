"""beets-audiofeatures: Essentia descriptors and CLAP search for beets.

This module is the beets glue: configuration, commands, the import
stage, field types and template functions. The analysis itself lives in
modules that do not import beets (``extraction``, ``descriptors``,
``profiles``, ``keys``, ``batch``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from beets import ui
from beets.plugins import BeetsPlugin

from . import essentia_command
from .fields import ALBUM_TYPES, ITEM_TYPES
from .keys import parse_key

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
    item_types: ClassVar[dict[str, types.Type[Any, Any]]] = ITEM_TYPES
    album_types: ClassVar[dict[str, types.Type[Any, Any]]] = ALBUM_TYPES

    def __init__(self) -> None:
        super().__init__()
        self.config.add({"essentia": essentia_command.DEFAULTS, "clap": {}})
        self.template_funcs["camelot"] = _key_code("camelot")
        self.template_funcs["openkey"] = _key_code("open_key")
        self._import_runner: essentia_command.EssentiaRunner | None = None
        if self.config["essentia"]["auto"].get(bool):
            self.import_stages = [self.essentia_import_stage]
            self.register_listener("import", self._close_import_runner)
            self.register_listener("cli_exit", self._close_import_runner)

    def commands(self) -> list[ui.Subcommand]:
        return [self._essentia_command()]

    def _essentia_command(self) -> ui.Subcommand:
        cmd = ui.Subcommand(
            "essentia",
            help="analyse tracks with Essentia and store descriptors",
        )
        parser = cmd.parser
        parser.add_option(
            "-f",
            "--force",
            action="store_true",
            default=None,
            help="re-analyse tracks that were already analysed",
        )
        parser.add_option(
            "-p",
            "--pretend",
            action="store_true",
            default=False,
            help="list what would be analysed and change nothing",
        )
        parser.add_option(
            "-w",
            "--write",
            action="store_true",
            default=None,
            help="write core tags (bpm, initial_key) to files",
        )
        parser.add_option(
            "-W",
            "--nowrite",
            action="store_false",
            dest="write",
            help="do not write tags to files",
        )
        parser.add_option(
            "-j",
            "--jobs",
            type="int",
            default=None,
            help="worker processes (default: all cores)",
        )
        parser.add_option(
            "--profile",
            default=None,
            help="music, rhythm, tonal, lowlevel, freesound, a mix such as "
            "rhythm,tonal, or a YAML profile file",
        )
        parser.add_option(
            "--dump",
            metavar="DIR",
            default=None,
            help="also save each track's full Essentia output as JSON "
            "under DIR, mirroring the library's folders",
        )
        parser.add_album_option()
        cmd.func = self._run_essentia
        return cmd  # fmt: skip

    def _run_essentia(self, lib: Library, opts: Any, args: list[str]) -> None:
        essentia_command.run_command(
            self.config["essentia"], self._log, lib, opts, args
        )

    def essentia_import_stage(
        self, session: ImportSession, task: ImportTask
    ) -> None:
        """Analyse imported tracks; values land in the database only,
        like every import-stage plugin (files are moved afterwards)."""
        items = task.imported_items()
        if self._import_runner is None:
            settings = essentia_command.EssentiaSettings.from_config(
                self.config["essentia"]
            )
            self._import_runner = essentia_command.EssentiaRunner(
                settings, self._log
            )
        runner = self._import_runner
        todo, tally = essentia_command.plan(items, runner.settings)
        runner.run(session.lib, todo, tally, write=False)
        self._log.info("{}", tally.summary("analysed"))

    def _close_import_runner(self, **_: Any) -> None:
        if self._import_runner is not None:
            self._import_runner.close()
            self._import_runner = None
