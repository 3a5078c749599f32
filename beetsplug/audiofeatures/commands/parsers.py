"""The command lines of ``beet essentia``, ``beet clap`` and ``beet
clapquery``: names, options and help texts, and the command boundary
where the core's fatal errors become beets' one-line ``UserError``. The
work is done by ``essentia_command``, ``clap_command`` and ``clapquery``."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from beets import ui
from beets.exceptions import UserError

from beets_audiofeatures.errors import RequestError, SetupError

CommandFunc = Callable[..., Any]


@contextlib.contextmanager
def fatal_errors() -> Iterator[None]:
    """The one place a :class:`SetupError` of the core (a missing tool,
    model or extra, a damaged model, a profile Essentia refuses), or a
    library database on a full disk, becomes the one line beets prints
    instead of a traceback."""
    try:
        yield
    except SetupError as exc:
        raise UserError(exc.line()) from exc
    except RequestError as exc:
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


def guarded(func: CommandFunc) -> CommandFunc:
    @functools.wraps(func)
    def run(*args: Any) -> Any:
        with fatal_errors():
            return func(*args)

    return run


def add_force_and_pretend(
    parser: ui.CommonOptionsParser, force_help: str, done: str
) -> None:
    parser.add_option(
        "-f", "--force", action="store_true", default=None, help=force_help
    )
    parser.add_option(
        "-p", "--pretend", action="store_true", default=False,
        help=f"list what would be {done} and change nothing",
    )  # fmt: skip


def add_cluster(parser: ui.CommonOptionsParser) -> None:
    parser.add_option(
        "--cluster", metavar="ADDRESS", default=None,
        help="run on the Dask cluster at ADDRESS (tcp://host:8786), or "
        "on local:N worker processes (see audiofeatures.cluster)",
    )  # fmt: skip


def essentia(func: CommandFunc) -> ui.Subcommand:
    cmd = ui.Subcommand(
        "essentia",
        help="analyse tracks with Essentia and store descriptors",
    )
    parser = cmd.parser
    add_force_and_pretend(
        parser, "re-analyse tracks that were already analysed", "analysed"
    )
    parser.add_option(
        "-w",
        "--write",
        action="store_true",
        default=None,
        help="write core tags (bpm, initial_key) to files",
    )
    parser.add_option(
        "-W",
        "--nowrite",
        action="store_false",
        dest="write",
        help="do not write tags to files",
    )
    parser.add_option(
        "-j",
        "--jobs",
        type="int",
        default=None,
        help="worker processes (default: all cores)",
    )
    parser.add_option(
        "--profile",
        default=None,
        help="music, rhythm, tonal, lowlevel, freesound, a mix such as "
        "rhythm,tonal, or a YAML profile file",
    )
    parser.add_option(
        "--dump",
        metavar="DIR",
        default=None,
        help="also save each track's full Essentia output as JSON "
        "under DIR, mirroring the library's folders",
    )
    parser.add_option(
        "--models",
        action="store_true",
        default=False,
        help="list the configured classifier models, where they are "
        "looked for and which files are missing",
    )
    parser.add_option(
        "--download-models",
        action="store_true",
        default=False,
        help="download the missing model files from Essentia's site",
    )
    parser.add_album_option()
    add_cluster(parser)
    cmd.func = guarded(func)
    return cmd  # fmt: skip


def clap(func: CommandFunc) -> ui.Subcommand:
    cmd = ui.Subcommand("clap", help="compute CLAP audio embeddings for tracks")
    parser = cmd.parser
    add_force_and_pretend(
        parser, "embed tracks again even if they have a vector", "embedded"
    )
    parser.add_option(
        "-j",
        "--jobs",
        type="int",
        default=None,
        help="ffmpeg decoders running ahead of the model (default 2)",
    )
    parser.add_option(
        "--dump",
        metavar="DIR",
        default=None,
        help="also save each vector as .npy under DIR, mirroring the "
        "library's folders",
    )
    parser.add_option(
        "--stats",
        action="store_true",
        default=False,
        help="report embedded, missing, stale and orphaned vectors",
    )
    parser.add_option(
        "--tags",
        action="store_true",
        default=False,
        help="also set the zero-shot tags configured under "
        "audiofeatures.clap.tags, from the cached vectors",
    )
    parser.add_option(
        "--prune",
        action="store_true",
        default=False,
        help="delete vectors of tracks no longer in the library",
    )
    parser.add_option(
        "--playlists",
        action="store_true",
        default=False,
        help="also rewrite the saved playlists of "
        "audiofeatures.clap.playlists in playlist_dir",
    )
    parser.add_option(
        "--map",
        action="store_true",
        default=False,
        help="compute the 2-D map of the vectors that beet clapweb and "
        "beet clapmap draw ([web] extra)",
    )
    add_cluster(parser)
    cmd.func = guarded(func)
    return cmd  # fmt: skip


def clapquery(func: CommandFunc) -> ui.Subcommand:
    cmd = ui.Subcommand(
        "clapquery",
        help="list tracks that sound like a sentence",
    )
    # The grammar, as clap_command.split_arguments reads it.
    cmd.parser.usage = (
        "%prog PROMPT [QUERY...] [options]\n"
        "       %prog --text PROMPT [--text PROMPT...] [QUERY...] [options]\n"
        "       %prog --like QUERY [QUERY...] [options]\n\n"
        "The first argument is the prompt, unless --text or --like is "
        "given; every other argument is a beets query term (field:value)."
    )
    parser = cmd.parser
    parser.add_option(
        "-t",
        "--text",
        action="append",
        metavar="PROMPT",
        help="a prompt (repeatable: the score is the mean); with --text, "
        "every argument is the query",
    )
    parser.add_option(
        "--not",
        dest="negative",
        action="append",
        metavar="PROMPT",
        help="a prompt the results should not sound like (repeatable)",
    )
    parser.add_option(
        "--like",
        metavar="QUERY",
        help="tracks that sound like the ones QUERY matches (with --like, "
        "every argument is the query)",
    )
    parser.add_option(
        "-n",
        "--limit",
        type="int",
        default=None,
        help="how many results (default 20)",
    )
    parser.add_option(
        "--min-score",
        type="float",
        default=None,
        help="leave out results scoring below this",
    )
    parser.add_option(
        "--json",
        action="store_true",
        default=False,
        help="print the results as JSON",
    )
    parser.add_option(
        "--m3u",
        metavar="FILE",
        help="also write the results to FILE, an M3U playlist (its "
        "folder must exist)",
    )
    parser.add_format_option()
    parser.add_album_option()
    cmd.func = guarded(func)
    return cmd  # fmt: skip


def add_playlist_options(parser: ui.CommonOptionsParser, noun: str) -> None:
    """The options ``beet clapradio`` and ``beet clappath`` share: length,
    candidates, caps, DJ rules and clapquery's output."""
    parser.add_option(
        "-n",
        "--limit",
        dest="radio_length",
        type="int",
        metavar="N",
        default=None,
        help=f"how many tracks the {noun} lists (default 25)",
    )
    parser.add_option(
        "--within",
        metavar="QUERY",
        default=None,
        help="choose only among the tracks this beets query matches",
    )
    parser.add_option(
        "--max-per-artist",
        dest="max_per_artist",
        type="int",
        default=None,
        metavar="N",
        help="at most N tracks of one artist (default 2; 0: any)",
    )
    parser.add_option(
        "--max-per-album",
        dest="max_per_album",
        type="int",
        default=None,
        metavar="N",
        help="at most N tracks of one album (default 1; 0: any)",
    )
    parser.add_option(
        "--bpm-window",
        dest="bpm_window",
        type="float",
        default=None,
        metavar="PCT",
        help="each next tempo within PCT percent of the previous one "
        "(tracks without a tempo are left out)",
    )
    parser.add_option(
        "--half-double",
        dest="half_double",
        action="store_true",
        default=False,
        help="with --bpm-window, half or double the tempo fits too",
    )
    parser.add_option(
        "--harmonic",
        action="store_true",
        default=False,
        help="each next key the same or a Camelot neighbour (a step round "
        "the wheel or the relative key; tracks without a key are left out)",
    )
    parser.add_option(
        "--json",
        action="store_true",
        default=False,
        help="print the tracks as JSON",
    )
    parser.add_option(
        "--m3u",
        metavar="FILE",
        help="also write the tracks to FILE, an M3U playlist (its folder "
        "must exist)",
    )
    parser.add_format_option()
    parser.add_path_option()


def clapradio(func: CommandFunc) -> ui.Subcommand:
    cmd = ui.Subcommand(
        "clapradio", help="a playlist of tracks that sound like seed tracks"
    )
    cmd.parser.usage = (
        "%prog SEED_QUERY... [options]\n"
        "       %prog --text PROMPT [--text PROMPT...] [options]\n\n"
        "The arguments are a beets query: the radio's seed tracks."
    )
    parser = cmd.parser
    parser.add_option(
        "-t",
        "--text",
        action="append",
        metavar="PROMPT",
        help="steer the radio towards a prompt as well (repeatable)",
    )
    parser.add_option(
        "--not",
        dest="negative",
        action="append",
        metavar="PROMPT",
        help="steer the radio away from a prompt (repeatable)",
    )
    parser.add_option(
        "--mix",
        action="store_true",
        default=False,
        help="with several seeds, aim at each seed in turn instead of "
        "their mean",
    )
    parser.add_option(
        "--ranked",
        action="store_true",
        default=False,
        help="list the tracks closest to the seeds first, instead of a "
        "walk where each next track is also close to the previous one",
    )
    add_playlist_options(parser, "radio")
    cmd.func = guarded(func)
    return cmd  # fmt: skip


def clappath(func: CommandFunc) -> ui.Subcommand:
    cmd = ui.Subcommand(
        "clappath",
        help="a playlist that moves from one track's sound to another's",
    )
    cmd.parser.usage = (
        "%prog FROM_QUERY TO_QUERY [options]\n\n"
        "Each query, quoted, matches one track: the first and the last."
    )
    add_playlist_options(cmd.parser, "path")
    cmd.func = guarded(func)
    return cmd  # fmt: skip


def clapdupes(func: CommandFunc) -> ui.Subcommand:
    cmd = ui.Subcommand(
        "clapdupes",
        help="list groups of tracks that are one recording in other files "
        "(changes nothing)",
    )
    cmd.parser.usage = "%prog [QUERY...] [options]"
    parser = cmd.parser
    parser.add_option(
        "--threshold",
        dest="duplicate_threshold",
        type="float",
        default=None,
        metavar="SIMILARITY",
        help="the least similarity of two versions' vectors (default 0.98)",
    )
    parser.add_option(
        "--json",
        action="store_true",
        default=False,
        help="print the groups as JSON",
    )
    parser.add_format_option()
    cmd.func = guarded(func)
    return cmd  # fmt: skip


def clapweb(func: CommandFunc) -> ui.Subcommand:
    cmd = ui.Subcommand(
        "clapweb",
        help="serve a page to search by sentence, listen, see the map "
        "and save playlists ([web] extra)",
    )
    cmd.parser.add_option(
        "--host", default=None,
        help="the address to serve on (default 127.0.0.1, this machine "
        "only; another needs audiofeatures.web.token)",
    )  # fmt: skip
    cmd.parser.add_option(
        "--port", type="int", default=None, help="the port (default 8337)"
    )
    cmd.func = guarded(func)
    return cmd


def clapmap(func: CommandFunc) -> ui.Subcommand:
    cmd = ui.Subcommand(
        "clapmap",
        help="write the map of the library's CLAP vectors as one HTML "
        "file ([web] extra)",
    )
    cmd.parser.add_option(
        "-o", "--output", metavar="FILE", help="the HTML file to write"
    )
    cmd.parser.add_option(
        "--colour", "--color", dest="colour", metavar="FIELD", default=None,
        help="colour the points by this field (genre, year, essentia_bpm...)",
    )  # fmt: skip
    cmd.func = guarded(func)
    return cmd
