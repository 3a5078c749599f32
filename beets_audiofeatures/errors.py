"""The plugin's exceptions, by what a command does with them.

- ``TrackError``: one track cannot be analysed or embedded. The batch
  logs it with the track's path and goes on; the command exits non-zero
  at the end.
- ``SetupError``: the command cannot do its work at all (a missing tool,
  extra or model, a damaged model, a profile Essentia refuses). It stops
  with one line; no traceback.
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


class StoreError(AudioFeaturesError):
    """The store is damaged; it rebuilds what it can."""
