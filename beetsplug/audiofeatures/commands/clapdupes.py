"""``beet clapdupes``: groups of tracks that are one recording in other
files. Report only: nothing in the library or on disk changes. The
search and the checks are ``beets_audiofeatures.clap.duplicates``';
here are the library's side (which tracks, what they say) and the
report."""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING, Protocol

import confuse
import numpy as np
from beets import ui
from beets.util import displayable_path

from beets_audiofeatures.clap.duplicates import duplicate_groups
from beets_audiofeatures.runner import count
from beetsplug.audiofeatures.analysis.runner import nothing_matched
from beetsplug.audiofeatures.library_query import items_by_id, matching_ids
from beetsplug.audiofeatures.search.radio_rules import evidence_by_id
from beetsplug.audiofeatures.search.vectors import current_rows, embedded_index
from beetsplug.audiofeatures.settings.clap import DUPLICATES, ClapSettings

if TYPE_CHECKING:
    from beets.library import Item, Library
    from beets.logging import BeetsLogger


class DupesOptions(Protocol):
    """``beet clapdupes``'s options, as its parser makes them."""

    duplicate_threshold: float | None
    json: bool
    format: str | None


def run_clapdupes(
    view: confuse.ConfigView,
    log: BeetsLogger,
    lib: Library,
    opts: DupesOptions,
    args: list[str],
) -> None:
    settings = ClapSettings(view, opts).require(*DUPLICATES)
    _store, index = embedded_index(settings, lib)
    ids = matching_ids(lib, args) if args else None
    rows = current_rows(lib, index, ids)
    if not len(rows):
        if opts.json:
            ui.print_("[]")
        if ids is not None and (nothing := nothing_matched(ids, args)):
            log.info("{}", nothing)  # not "run beet clap": it finds none
            return
        log.info(
            "no tracks{} have vectors: run beet clap{}",
            f" matching {shlex.join(args)}" if args else "",
            f" {shlex.join(args)}" if args else "",
        )
        return
    track_ids = [int(number) for number in index.ids[rows].tolist()]
    evidence = evidence_by_id(lib, track_ids)
    known = [n for n, number in enumerate(track_ids) if number in evidence]
    vectors = np.asarray(index.matrix[rows[known]], np.float32)
    facts = [evidence[track_ids[n]] for n in known]
    groups = duplicate_groups(vectors, facts, settings.duplicate_rules)
    grouped_ids = [[track_ids[known[p]] for p in group] for group in groups]
    items = items_by_id(lib, [n for group in grouped_ids for n in group])
    report = []
    for group, group_ids in zip(groups, grouped_ids, strict=True):
        members = [
            (items[number], float(vectors[position] @ vectors[group[0]]))
            for position, number in zip(group, group_ids, strict=True)
            if number in items
        ]
        if len(members) > 1:
            report.append(members)
    show_groups(report, opts)
    if report:
        log.info(
            "{} of one recording, among {}",
            count(len(report), "group"), count(len(known), "track"),
        )  # fmt: skip
    else:
        log.info(
            "no two of the {} are one recording", count(len(known), "track")
        )


def show_groups(
    groups: list[list[tuple[Item, float]]], opts: DupesOptions
) -> None:
    if opts.json:
        ui.print_(json.dumps([
            [
                {"id": item.id, "path": displayable_path(item.path),
                 "artist": item.artist, "album": item.album,
                 "title": item.title, "format": item.format,
                 "bitrate": item.bitrate, "length": round(item.length, 2),
                 "similarity": round(similarity, 4)}
                for item, similarity in group
            ]
            for group in groups
        ], indent=2, ensure_ascii=False))  # fmt: skip
        return
    for number, group in enumerate(groups, 1):
        ui.print_(f"group {number}: {count(len(group), 'track')}")
        for item, similarity in group:
            item["clap_score"] = similarity
            line = (
                format(item, opts.format)
                if opts.format
                else f"{similarity:.3f}  {item}  ({item.format}, "
                f"{item.bitrate // 1000} kbps, {item.length:.1f} s)"
            )
            ui.print_(f"  {line}")
