"""The plugin's exceptions, by what a command does with them.

- ``TrackError``: one track cannot be analysed or embedded. The batch
  logs it with the track's path and goes on; the command exits non-zero
  at the end.
- ``SetupError``: the command cannot do its work at all (a missing tool,
  extra or model, a damaged model, a profile Essentia refuses). It stops
  with one line, :meth:`SetupError.line`, which names the settings
  section at fault; the beets side turns it into beets' ``UserError`` in
  one place; no traceback.
  ``CacheFolderError`` is one: the CLAP cache folder is full or
  cannot be written.
- ``SettingError``: a setting has a value the command cannot use
  (a ``SetupError``; its line is the setting's full name, the value
  and what is allowed).
- ``RequestError``: what the user asked cannot be answered as asked (a
  bad query, prompt, id or count; nothing matched; no track has a
  vector yet). The command line prints its one line and exits; the page
  answers with its HTTP ``status``.
- ``CommandError``: a command cannot finish as asked (some tracks
  failed, each logged with its reason as it happened; a folder it must
  write is not writable; a download failed). It ends with its one line
  and a non-zero exit status.
- ``StoreError``: the vector store found itself damaged and repairs
  itself; it does not leave the store.

Every one is an ``AudioFeaturesError``. No beets here.
"""

from __future__ import annotations

import errno


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


class SettingError(SetupError):
    """A setting's value is not one the command can use. The message is
    the whole line (``audiofeatures.clap.limit is 'x': use a whole
    number of at least 1``), so :meth:`line` adds nothing to it."""

    def line(self) -> str:
        return str(self)


class RequestError(AudioFeaturesError):
    """A request cannot be answered as asked; the message says how to
    ask. ``status`` is the HTTP status the page answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class CommandError(AudioFeaturesError):
    """A command cannot finish as asked; the message is the whole line."""


class StoreError(AudioFeaturesError):
    """The store is damaged; it rebuilds what it can."""


class CacheFolderError(SetupError):
    """The CLAP cache folder cannot be written: the disk is full, or the
    folder is read-only where a command must write."""

    section = "clap"

    @classmethod
    def of(cls, folder: object, exc: OSError) -> CacheFolderError:
        """The one line for ``exc``, raised writing in ``folder``."""
        reason = exc.strerror or str(exc)
        if exc.errno in FULL:
            return cls(
                f"the cache folder {folder} is full ({reason}): free some "
                "space there, or set audiofeatures.clap.cache_dir to a "
                "folder on a disk with room"
            )
        return cls(
            f"cannot write in the cache folder {folder} ({reason}): make it "
            "writable, or set audiofeatures.clap.cache_dir to a folder you "
            "can write"
        )


#: Errors of a write that say the disk is full (or the user's quota).
FULL = (errno.ENOSPC, errno.EDQUOT)
#: Errors of a write that say the folder cannot be written at all.
READ_ONLY = (errno.EPERM, errno.EACCES, errno.EROFS)
