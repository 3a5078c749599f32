"""The plugin's exceptions, by what a command does with them.

- ``TrackError``: one track cannot be analysed or embedded. The batch
  logs it with the track's path and goes on; the command exits non-zero
  at the end.
- ``SetupError``: the command cannot do its work at all (a missing tool,
  extra or model, a damaged model, a profile Essentia refuses). It stops
  with one line, :meth:`SetupError.line`, which names the settings
  section at fault; the beets side turns it into beets' ``UserError`` in
  one place; no traceback.
- ``StoreError``: the vector store found itself damaged and repairs
  itself; it does not leave the store.

Every one is an ``AudioFeaturesError``. No beets here.
"""

from __future__ import annotations


class AudioFeaturesError(Exception):
    """The root of the plugin's own exceptions."""


class TrackError(AudioFeaturesError):
    """One track fails; the message says why, in a few words."""


class SetupError(AudioFeaturesError):
    """The command stops; the message says what is wrong and the fix."""

    #: the settings section the problem is in (``clap``), if it is one
    section = ""

    def line(self) -> str:
        """``audiofeatures.clap: the model ... (fix)``: what a user sees."""
        where = f".{self.section}" if self.section else ""
        return f"audiofeatures{where}: {self}"


class StoreError(AudioFeaturesError):
    """The store is damaged; it rebuilds what it can."""
