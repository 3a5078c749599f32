"""``beet clapradio``: a playlist around seed tracks, and ``beet
clappath``: a playlist that walks from one track to another. The radio
and the path are ``search.radio``'s; here are the request from the
options, and the output, as ``beet clapquery`` prints and writes it."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

import confuse

from beets_audiofeatures.errors import RequestError
from beets_audiofeatures.runner import count
from beetsplug.audiofeatures.output import show_and_write, show_items
from beetsplug.audiofeatures.query_words import checked_prompt
from beetsplug.audiofeatures.search.radio import (
    RadioLibrary,
    RadioRequest,
    choose_radio,
    walk_path,
)
from beetsplug.audiofeatures.search.vectors import like_terms

if TYPE_CHECKING:
    from beets.library import Item, Library
    from beets.logging import BeetsLogger

    from beetsplug.audiofeatures.search.vectors import Found


class PathOptions(Protocol):
    """``beet clappath``'s options (``beet clapradio`` has them too)."""

    radio_length: int | None
    within: str | None
    max_per_artist: int | None
    max_per_album: int | None
    bpm_window: float | None
    half_double: bool
    harmonic: bool
    json: bool
    format: str | None
    m3u: str | None


class RadioOptions(PathOptions, Protocol):
    """``beet clapradio``'s options."""

    text: list[str] | None
    negative: list[str] | None
    mix: bool
    ranked: bool
    no_translate: bool


def request_of(opts: PathOptions) -> RadioRequest:
    """The request the options both commands share make."""
    return RadioRequest(
        radio_length=opts.radio_length,
        max_per_artist=opts.max_per_artist,
        max_per_album=opts.max_per_album,
        within=opts.within,
        bpm_window=opts.bpm_window,
        half_double=bool(opts.half_double),
        harmonic=bool(opts.harmonic),
    )


def run_clapradio(
    view: confuse.ConfigView,
    log: BeetsLogger,
    lib: Library,
    opts: RadioOptions,
    args: list[str],
) -> None:
    prompts = [checked_prompt(text, "--text") for text in opts.text or []]
    negative = [checked_prompt(text, "--not") for text in opts.negative or []]
    if not args and not prompts:
        raise RequestError(
            "clapradio needs a SEED_QUERY, the tracks the radio starts "
            "from (beet clapradio 'title:Blue in Green'), or a --text PROMPT"
        )
    request = replace(
        request_of(opts), seeds=tuple(args), prompts=tuple(prompts),
        negative=tuple(negative), mix=bool(opts.mix),
        ranked=bool(opts.ranked), no_translate=bool(opts.no_translate),
    )  # fmt: skip
    radio_library = RadioLibrary(view, log, lib, request)
    show_and_write(
        opts.m3u,
        lambda: show_playlist(
            choose_radio(radio_library), request.labels,
            radio_library.length, opts, log,
        ),
    )  # fmt: skip


def run_clappath(
    view: confuse.ConfigView,
    log: BeetsLogger,
    lib: Library,
    opts: PathOptions,
    args: list[str],
) -> None:
    if len(args) != 2:
        raise RequestError(
            "clappath needs FROM_QUERY and TO_QUERY, each quoted: beet "
            "clappath 'title:Blue in Green' 'title:So What' -n 10"
        )
    ends = [like_terms(text) for text in args]
    radio_library = RadioLibrary(view, log, lib, request_of(opts))
    if radio_library.length < 2:
        raise RequestError("-n/--limit must be 2 or more for a path")
    show_and_write(
        opts.m3u,
        lambda: show_playlist(
            walk_path(radio_library, ends), ["waypoint"],
            radio_library.length, opts, log,
        ),
    )  # fmt: skip


def show_playlist(
    found: list[Found],
    labels: list[str],
    asked: int,
    opts: PathOptions,
    log: BeetsLogger,
) -> list[Item]:
    """Print the tracks (with ``--json``, ``[]`` too) and return them."""
    if found and len(found) < asked:
        log.info(
            "{} of the {} asked for meet the rules and caps",
            count(len(found), "track"), asked,
        )  # fmt: skip
    if found or opts.json:
        show_items(found, labels, opts)
    return [item for item, _, _ in found]
