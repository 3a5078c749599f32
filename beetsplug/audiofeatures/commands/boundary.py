"""The command line's one error path: every error of the core that ends
a command (a setup or setting problem, a request that cannot be
answered, failed tracks) becomes beets' one-line ``UserError`` here, and
nowhere else."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from beets.exceptions import UserError

from beets_audiofeatures.errors import (
    AudioFeaturesError,
    SetupError,
    StoreError,
    TrackError,
)


@contextlib.contextmanager
def fatal_errors() -> Iterator[None]:
    """The one place where an error of the core becomes the one line
    beets prints instead of a traceback: a :class:`SetupError` (a
    missing tool, model or extra, a damaged model, a bad setting) with
    the section it is in, any other error of the core (a request that
    cannot be answered, tracks that failed) with its own line, and a
    library database on a full disk."""
    try:
        yield
    except SetupError as exc:
        raise UserError(exc.line()) from exc
    except (TrackError, StoreError):
        raise  # handled where they happen: reaching here is a bug
    except AudioFeaturesError as exc:
        raise UserError(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        # beets turns a read-only database into its own one line, but
        # not a full disk; what was stored before is committed.
        if "full" not in str(exc):
            raise
        raise UserError(
            f"the beets library database cannot be written: {exc}; free "
            "some space there and run the command again to resume"
        ) from exc
