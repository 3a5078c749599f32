"""Saved playlists: ``audiofeatures.clap.playlists`` names radios (a
prompt, seed tracks or both, within a beets query, with the options of
``beet clapradio``), and ``beet clap --playlists`` rewrites each as
``<playlist_dir>/<name>.m3u8``, atomically, as smartplaylist's
``splupdate`` does."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import confuse
from beets.exceptions import UserError

from beets_audiofeatures.errors import RequestError
from beetsplug.audiofeatures import input_limits
from beetsplug.audiofeatures.output import Playlist
from beetsplug.audiofeatures.query_words import checked_prompt
from beetsplug.audiofeatures.search.radio import (
    RadioLibrary,
    RadioRequest,
    choose_radio,
)
from beetsplug.audiofeatures.search.vectors import like_terms
from beetsplug.audiofeatures.settings.clap import ClapSettings

if TYPE_CHECKING:
    from beets.library import Item, Library
    from beets.logging import BeetsLogger

    from beetsplug.audiofeatures.search.vectors import Found

#: What a saved playlist may say, and the kind of value of each.
FIELDS: dict[str, str] = {
    "prompt": "a sentence or a list of them",
    "not": "a sentence or a list of them",
    "seeds": "a beets query (the radio's seed tracks)",
    "query": "a beets query (the tracks it chooses among)",
    "limit": "a whole number, 1 or more",
    "ranked": "yes or no",
    "mix": "yes or no",
    "max_per_artist": "a whole number, 0 (no cap) or more",
    "max_per_album": "a whole number, 0 (no cap) or more",
    "bpm_window": "a percentage above 0",
    "half_double": "yes or no",
    "harmonic": "yes or no",
    "translate": "yes or no",
}


def saved_playlists(view: confuse.ConfigView) -> dict[str, dict[str, Any]]:
    """The configured playlists, each checked; a line naming the first
    thing wrong."""
    entries = ClapSettings(view).raw("playlists")
    if not isinstance(entries, dict):
        raise RequestError(
            "audiofeatures.clap.playlists must map names to playlists "
            "(see the docs)"
        )
    if not entries:
        raise RequestError(
            "no playlists are configured: add them under "
            "audiofeatures.clap.playlists (see the docs)"
        )
    return {str(name): _checked(str(name), e) for name, e in entries.items()}


def _checked(name: str, entry: Any) -> dict[str, Any]:
    where = f"audiofeatures.clap.playlists.{name!r}"
    input_limits.playlist_name(name, where)
    where = f"audiofeatures.clap.playlists.{name}"
    if not isinstance(entry, dict):
        raise RequestError(
            f"{where} must be a mapping, such as {{prompt: jazz}}"
        )
    for field, value in entry.items():
        if field not in FIELDS:
            raise RequestError(
                f"{where}.{field} is not a playlist setting: use "
                f"{', '.join(FIELDS)}"
            )
        if not _fits(field, value):
            raise RequestError(
                f"{where}.{field} is {value!r}: use {FIELDS[field]}"
            )
    if not entry.get("prompt") and not entry.get("seeds"):
        raise RequestError(f"{where} needs a prompt, seeds or both")
    return dict(entry)


def _fits(field: str, value: Any) -> bool:
    kind = FIELDS[field]
    if kind.startswith("a sentence"):
        texts = [value] if isinstance(value, str) else value
        return isinstance(texts, list) and all(
            isinstance(text, str) and text.strip() for text in texts
        )
    if kind.startswith("a beets query"):
        return isinstance(value, str) and bool(value.strip())
    if kind == "yes or no":
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if kind.startswith("a whole number"):
        least = 1 if "1" in kind else 0  # and none beyond MOST_COUNT
        return (
            isinstance(value, int) and least <= value <= input_limits.MOST_COUNT
        )
    return math.isfinite(value) and value > 0  # nan passes comparisons


def radio_request(entry: dict[str, Any]) -> RadioRequest:
    """The radio a checked entry asks for (what it does not say is
    ``beet clapradio``'s default)."""
    return RadioRequest(
        seeds=tuple(like_terms(entry["seeds"]) if entry.get("seeds") else ()),
        prompts=tuple(
            checked_prompt(t, "prompt") for t in _texts(entry.get("prompt"))
        ),
        negative=tuple(
            checked_prompt(t, "not") for t in _texts(entry.get("not"))
        ),
        radio_length=entry.get("limit"),
        max_per_artist=entry.get("max_per_artist"),
        max_per_album=entry.get("max_per_album"),
        within=entry.get("query"),
        bpm_window=entry.get("bpm_window"),
        half_double=entry.get("half_double", False),
        harmonic=entry.get("harmonic", False),
        ranked=entry.get("ranked", False),
        mix=entry.get("mix", False),
        # translate: no embeds this playlist's prompts as typed.
        no_translate=not entry.get("translate", True),
    )


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def playlist_folder(view: confuse.ConfigView) -> Path:
    """``playlist_dir``, else smartplaylist's ``playlist_dir``."""
    folder = ClapSettings(view).playlist_dir
    if folder is None:
        raise RequestError(
            "audiofeatures.clap.playlist_dir is not set (nor "
            "smartplaylist.playlist_dir): name the folder the playlists go in"
        )
    return folder


def pretend_saved_playlists(view: confuse.ConfigView) -> str:
    """What ``--playlists`` would write, in one line, for ``-p``."""
    names = [f"{name}.m3u8" for name in saved_playlists(view)]
    plural = "" if len(names) == 1 else "s"
    return (
        f"would rewrite {len(names)} saved playlist{plural} in "
        f"{playlist_folder(view)}: {', '.join(names)}"
    )


def write_saved_playlists(
    view: confuse.ConfigView, log: BeetsLogger, lib: Library
) -> None:
    """Rewrite every saved playlist; a file is replaced only when its new
    content is complete. A playlist that cannot be made (its seeds left
    the library, say) keeps its old file and does not stop the others:
    each is a line as it happens, and a last line names them all. A
    folder that cannot be written stops it at once."""
    playlists = saved_playlists(view)
    folder = playlist_folder(view)
    failed: list[str] = []
    for name, entry in playlists.items():
        try:
            found = _choose(view, log, lib, name, entry)
        except RequestError as exc:
            if len(playlists) == 1:
                raise  # its own line is the whole story
            log.warning("{}", exc)
            failed.append(name)
            continue
        _write(log, folder, name, [item for item, _, _ in found])
    if failed:
        raise RequestError(
            f"{len(failed)} of {len(playlists)} saved playlists could not be "
            f"rewritten ({', '.join(failed)}); the reasons are above"
        )


def _choose(
    view: confuse.ConfigView,
    log: BeetsLogger,
    lib: Library,
    name: str,
    entry: dict[str, Any],
) -> list[Found]:
    try:
        request = radio_request(entry)
        return choose_radio(RadioLibrary(view, log, lib, request))
    except (RequestError, UserError) as exc:  # UserError: a setting's
        status = exc.status if isinstance(exc, RequestError) else 400
        raise RequestError(
            f"audiofeatures.clap.playlists.{name}: {exc}", status
        ) from None


def _write(
    log: BeetsLogger, folder: Path, name: str, items: list[Item]
) -> None:
    try:  # a symbolic link in a loop, a file: one line
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RequestError(
            f"the playlist folder {folder} cannot be made: "
            f"{exc.strerror or exc}"
        ) from None
    playlist = Playlist(
        str(folder / f"{name}.m3u8"),
        label=f"audiofeatures.clap.playlists.{name}: its file",
    )
    try:
        playlist.write(items)
    finally:
        playlist.discard()
    log.info("wrote {} ({} tracks)", playlist.path, len(items))
