"""The plugin's commands, from one table.

Each row names a command's line (built by :mod:`.parsers` on every beets
command, as beets asks for them) and the function that does its work,
imported only when that command runs: ``beet ls`` loads none of them.
A command module parses nothing itself: it reads its settings, calls
the services beneath it (``analysis``, ``search``, ``web``) and prints;
no module imports a command module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from beetsplug.audiofeatures.commands import parsers
from beetsplug.audiofeatures.commands.boundary import fatal_errors

if TYPE_CHECKING:
    import confuse
    from beets import ui
    from beets.library import Library
    from beets.logging import BeetsLogger


class Command:
    """One command: its line, where its work is (``module:function``,
    below this package) and the settings sections that work reads, in
    the order the function takes them (then the log, the library, the
    options and the query). (A plain class: every beets command loads
    this table, and a dataclass costs a millisecond to make.)"""

    __slots__ = ("line", "sections", "work")

    def __init__(
        self,
        line: Callable[[], ui.Subcommand],
        work: str,
        sections: tuple[str, ...],
    ) -> None:
        self.line = line
        self.work = work
        self.sections = sections

    def subcommand(
        self, config: confuse.ConfigView, log: BeetsLogger
    ) -> ui.Subcommand:
        command = self.line()

        def run(lib: Library, opts: object, args: list[str]) -> None:
            with fatal_errors():
                work = self.function()
                views = [config[section] for section in self.sections]
                work(*views, log, lib, opts, args)

        command.func = run
        return command

    def function(self) -> Callable[..., None]:
        return imported(self.work)


def imported(work: str) -> Callable[..., Any]:
    """The function ``module:function`` names, below this plugin's
    package, imported now (a command's work, an import stage's runner)."""
    module, _, name = work.partition(":")
    found: Callable[..., Any] = getattr(
        importlib.import_module(f"beetsplug.audiofeatures.{module}"), name
    )
    return found


COMMANDS = (
    Command(parsers.essentia, "commands.essentia:run", ("essentia", "cluster")),
    Command(parsers.clap, "commands.clap:run", ("clap", "cluster", "web")),
    Command(parsers.clapquery, "commands.clapquery:run_clapquery", ("clap",)),
    Command(parsers.clapradio, "commands.clapradio:run_clapradio", ("clap",)),
    Command(parsers.clappath, "commands.clapradio:run_clappath", ("clap",)),
    Command(parsers.clapdupes, "commands.clapdupes:run_clapdupes", ("clap",)),
    Command(parsers.clapweb, "commands.clapweb:run_clapweb", ("clap", "web")),
    Command(parsers.clapmap, "commands.clapweb:run_clapmap", ("clap", "web")),
)
