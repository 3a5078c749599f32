"""Each command's line: its name, options and help texts, built without
importing the command's module (beets builds every parser on every
command; the work is imported only when that command runs)."""

from __future__ import annotations

from beets import ui

from beetsplug.audiofeatures.commands.options import (
    add_cluster,
    add_force_and_pretend,
    add_no_translate,
    add_playlist_options,
)


def essentia() -> ui.Subcommand:
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
        help="tracks analysed at once, each in a worker process "
        "(default: the jobs setting, 0 = all cores)",
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
    return cmd  # fmt: skip


def clap() -> ui.Subcommand:
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
        help="tracks decoded at once, by ffmpeg, ahead of the one model "
        "(default: the jobs setting, 2)",
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
    add_no_translate(parser)
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
    return cmd  # fmt: skip


def clapquery() -> ui.Subcommand:
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
    add_no_translate(parser)
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
    return cmd  # fmt: skip


def clapradio() -> ui.Subcommand:
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
    add_no_translate(parser)
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
    return cmd  # fmt: skip


def clappath() -> ui.Subcommand:
    cmd = ui.Subcommand(
        "clappath",
        help="a playlist that moves from one track's sound to another's",
    )
    cmd.parser.usage = (
        "%prog FROM_QUERY TO_QUERY [options]\n\n"
        "Each query, quoted, matches one track: the first and the last."
    )
    add_playlist_options(cmd.parser, "path")
    return cmd  # fmt: skip


def clapdupes() -> ui.Subcommand:
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
    return cmd  # fmt: skip


def clapweb() -> ui.Subcommand:
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
    return cmd


def clapmap() -> ui.Subcommand:
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
    return cmd
