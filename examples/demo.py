"""Build a small library of synthesised music, analyse it, show the result.

Run with ``make demo`` (which creates the virtual environment first), or
``python examples/demo.py`` inside it. Everything lands in
``demo-library/`` next to this repository's README (or in
``$DEMO_LIBRARY``); delete it freely. It ends with the lines that enable
the plugin in your own beets configuration.

CLAP search is shown too when ``CLAP_MODEL`` names a model (a hub id such
as ``laion/larger_clap_music``, downloaded once, about 0.8 GB; a
``save_pretrained`` folder; or a LAION ``.pt`` checkpoint)::

    CLAP_MODEL=laion/larger_clap_music make demo
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from mediafile import MediaFile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests import synth  # noqa: E402

BEET = Path(sys.executable).with_name("beet")
DEMO = Path(os.environ.get("DEMO_LIBRARY") or ROOT / "demo-library")

TRACKS = [  # title, tempo, key, format
    ("Night Drive", 92, "Am", ".flac"),
    ("Sunrise", 124, "C", ".mp3"),
    ("Backbeat", 100, "C", ".ogg"),
    ("Four on the Floor", 128, "Am", ".m4a"),
    ("Slow Burn", 84, "Am", ".opus"),  # decoded through ffmpeg
    ("Uptempo", 140, "C", ".wav"),
]


def beet(*args: str, env: dict[str, str]) -> None:
    """Echo the command as a user would type it in a shell, then run it;
    a failing command ends the demo with its own message and exit code."""
    print(f"\n$ {shlex.join(['beet', *args])}", flush=True)
    returncode = subprocess.run([BEET, *args], env=env).returncode
    if returncode:
        raise SystemExit(returncode)


def main() -> None:
    shutil.rmtree(DEMO, ignore_errors=True)
    incoming = DEMO / "incoming"
    print(f"Synthesising {len(TRACKS)} tracks into {incoming} …")
    for n, (title, bpm, key, ext) in enumerate(TRACKS, 1):
        path = synth.make_track(incoming / f"{n:02} {title}{ext}", bpm, key, 20)
        tags = MediaFile(path)
        tags.update(
            {"title": title, "artist": "The Synthesisers",
             "album": "Demo Tape", "track": n}
        )  # fmt: skip
        tags.save()

    clap_model = os.environ.get("CLAP_MODEL")
    config = DEMO / "config"
    config.mkdir()
    (config / "config.yaml").write_text(
        f"directory: {DEMO / 'music'}\n"
        f"library: {DEMO / 'library.db'}\n"
        "plugins: audiofeatures\n"
        "create_backup_before_migrations: no\n"
        "import: {copy: yes, write: no, autotag: no}\n"
        "audiofeatures:\n"
        "  essentia: {fill_core_fields: yes}\n"
        + (f"  clap: {{model: '{clap_model}'}}\n" if clap_model else "")
    )
    env = {**os.environ, "BEETSDIR": str(config)}
    beet("import", "-q", str(incoming), env=env)
    beet("essentia", env=env)
    beet(
        "ls", "-f",
        "$title | $essentia_bpm BPM | $essentia_key (%camelot{$essentia_key})"
        " | $essentia_loudness LUFS | danceability $essentia_danceability",
        env=env,
    )  # fmt: skip
    beet("ls", "-f", "$title $essentia_bpm", "essentia_bpm:120..130", env=env)
    beet("ls", "-f", "$title $essentia_key", "essentia_key:8A", env=env)
    if clap_model:
        beet("clap", env=env)
        beet("clapquery", "slow melancholic music", "-n", "3", env=env)
        beet("clapquery", "--like", "title:Sunrise", "-n", "3", env=env)
    else:
        print(
            "\nCLAP search: rerun with CLAP_MODEL=laion/larger_clap_music "
            "(a one-time 0.8 GB download) or CLAP_MODEL=/path/to/model"
        )
    try_it = shlex.join([str(BEET), "ls", "essentia_bpm:..100"])
    print(f"\nTry it yourself:  BEETSDIR={shlex.quote(str(config))} {try_it}")
    print(
        f"\nOn your own library: add these lines to your beets config.yaml"
        f" ({shlex.join([str(BEET), 'config', '-p'])} prints where it is; on"
        " an existing plugins: line, add audiofeatures to it), then run"
        f" {BEET} essentia:\n"
    )
    print(enable_lines(clap_model))


def enable_lines(clap_model: str | None) -> str:
    """The three lines a user adds to their own configuration: the
    settings this demo used (tests/test_demo.py reads them back)."""
    section = (
        f"clap: {{model: '{clap_model}'}}"
        if clap_model
        else "essentia: {fill_core_fields: yes}"
    )
    return f"plugins: audiofeatures\naudiofeatures:\n  {section}"


if __name__ == "__main__":
    main()
