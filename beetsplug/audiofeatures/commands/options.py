"""Options more than one command shares: ``-f``/``-p``, ``--cluster``
and the playlist rules of ``beet clapradio``, ``beet clappath`` and the
saved playlists."""

from __future__ import annotations

from beets import ui


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


def add_no_translate(parser: ui.CommonOptionsParser) -> None:
    parser.add_option(
        "--no-translate", dest="no_translate", action="store_true",
        default=False,
        help="embed the prompts as typed, even where "
        "audiofeatures.clap.translate would translate them into English",
    )  # fmt: skip


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
