"""``beet clapquery``: rank the stored vectors against prompts and
``--like`` seeds, within a beets query, and show the best. The ranking
is ``search.vectors``'; here are the words, the request and the output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import confuse
from beets import ui

from beets_audiofeatures.errors import RequestError
from beetsplug.audiofeatures import input_limits
from beetsplug.audiofeatures.output import (
    show_albums,
    show_and_write,
    show_items,
)
from beetsplug.audiofeatures.query_words import checked_prompt, split_arguments
from beetsplug.audiofeatures.search.vectors import (
    LibraryVectors,
    QueryRequest,
    answer_query,
    embedded_index,
)
from beetsplug.audiofeatures.settings.clap import QUERY, ClapSettings

if TYPE_CHECKING:
    from beets.library import Item, Library
    from beets.logging import BeetsLogger


class QueryOptions(Protocol):
    """``beet clapquery``'s options, as its parser makes them."""

    text: list[str] | None
    negative: list[str] | None
    like: str | None
    limit: int | None
    min_score: float | None
    album: bool
    json: bool
    format: str | None
    m3u: str | None
    no_translate: bool


def run_clapquery(
    view: confuse.ConfigView,
    log: BeetsLogger,
    lib: Library,
    opts: QueryOptions,
    args: list[str],
) -> None:
    prompts, query = split_arguments(lib, opts.text, opts.like, args)
    negative = [checked_prompt(text, "--not") for text in opts.negative or []]
    if opts.min_score is not None:
        input_limits.score(opts.min_score, "--min-score")
    if opts.like is not None and not opts.like.strip():
        raise RequestError(
            "--like needs a beets query, such as --like 'title:Blue in Green'"
        )
    settings = ClapSettings(view, opts).require(*QUERY)
    store, index = embedded_index(settings, lib)
    request = QueryRequest(
        prompts=tuple(prompts),
        negative=tuple(negative),
        query=tuple(query),
        like=opts.like,
        album=bool(opts.album),
        limit=settings.limit,  # -n, checked, else the setting
        min_score=opts.min_score,
    )
    model = settings.text_model(log)
    vectors = LibraryVectors(lib, store, index)

    def find_and_show() -> list[Item]:
        answer = answer_query(vectors, model, request, log)
        shown = bool(answer.albums if request.album else answer.tracks)
        if shown or not opts.json:
            if request.album:
                show_albums(answer.albums or [], opts)
            else:
                show_items(answer.tracks, request.labels, opts)
        if not shown:
            log.info("{}", answer.why_empty)
            if opts.json:  # still a JSON answer for scripts
                ui.print_("[]")
            return []
        return answer.items

    show_and_write(opts.m3u, find_and_show)
