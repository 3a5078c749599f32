"""The words of ``beet clapquery``: which arguments are prompts and which
are beets query terms, with a line saying how to write what was meant;
and a beets query typed as one text, split as a shell splits it."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

from beets import plugins
from beets.dbcore.query import PathQuery
from beets.dbcore.queryparse import PARSE_QUERY_PART_REGEX
from beets.library import Album, Item

from beets_audiofeatures.errors import RequestError
from beetsplug.audiofeatures import input_limits

if TYPE_CHECKING:
    from beets.library import Library


def is_field(lib: Library, key: str) -> bool:
    """Whether beets knows ``key`` as a field: a fixed or typed field of
    items or albums, a named query, or a flexible field some item or
    album of this library has."""
    known = {
        *Item.all_keys(), *Album.all_keys(), *Item._types, *Album._types,
        *Item._queries, *Album._queries,
    }  # fmt: skip
    if key in known:
        return True
    with lib.transaction() as tx:
        return bool(
            tx.query(
                "SELECT 1 FROM item_attributes WHERE key = ? UNION ALL "
                "SELECT 1 FROM album_attributes WHERE key = ? LIMIT 1",
                (key, key),
            )
        )


def is_query_term(lib: Library, part: str) -> bool:
    """Whether an argument reads as a beets query term: ``field:value``
    with a field beets knows, a query prefix (``:regex``, ``=exact``, a
    plugin's), a negation (``^term``), a sort (``year+``), a path that
    exists, or the comma that joins alternatives."""
    text = part.strip()
    if text == ",":
        return True
    text = text.removesuffix(",")
    if not text:
        return False
    if text.startswith(("^", "-")) or PathQuery.is_path_query(text):
        return True
    if text.endswith(("+", "-")) and ":" not in text and len(text) > 1:
        return is_field(lib, text[:-1].lower())
    match = PARSE_QUERY_PART_REGEX.match(text)
    if match is None:  # it always matches
        return False
    key, term = match.group(2), match.group(3)
    prefixes = (":", "=~", "=", *plugins.queries())
    if term.startswith(prefixes):
        return True
    return key is not None and is_field(lib, key.lower())


def checked_prompt(text: str, where: str) -> str:
    if not text.strip():
        raise RequestError(
            f'{where} is empty: give a sentence, such as "calm piano"'
        )
    return input_limits.prompt(text, where)


def shell_words(text: str, shown: str) -> list[str]:
    """A beets query typed as one text (``--like``, ``--within``, a saved
    playlist's, the page's box), split as a shell splits it; an unclosed
    quote is one line, ``shown: No closing quotation``."""
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise RequestError(f"{shown}: {exc}") from None


def split_arguments(
    lib: Library,
    texts: Sequence[str] | None,
    like: str | None,
    args: Sequence[str],
) -> tuple[list[str], list[str]]:
    """The prompts and the beets query in ``beet clapquery``'s arguments.

    The first argument is the prompt, unless ``--text`` or ``--like`` is
    given; every other argument is a query term. A prompt that reads as
    a query, or a query term that reads as a prompt, is an error that
    says how to write what was meant.
    """
    prompts = [checked_prompt(text, "--text") for text in texts or []]
    query = list(args)
    explicit = bool(prompts) or like is not None
    if not explicit:
        if not query:
            raise RequestError(
                'clapquery needs a PROMPT: beet clapquery "calm piano" '
                "[QUERY] (or --text PROMPT, --like QUERY)"
            )
        first = query.pop(0)
        if is_query_term(lib, first):
            shown = shlex.quote(first)
            raise RequestError(
                f"{shown} is a beets query, not a prompt: give the prompt "
                f'first (beet clapquery "calm piano" {shown}), or use '
                f"--text {shown} to search for these words"
            )
        prompts.append(checked_prompt(first, "the prompt"))
    for part in query:
        if not is_query_term(lib, part):
            hint = (
                "with --text or --like, every argument is the query: give "
                f"the prompt as --text {shlex.quote(part)}"
                if explicit
                else "quote a prompt of several words "
                f'("{shlex.join([*prompts, part])}"), or add a prompt '
                f"with --text {shlex.quote(part)}"
            )
            raise RequestError(
                f"{shlex.quote(part)} is not a beets query term "
                f"(field:value): {hint}"
            )
    return prompts, query
