"""``make demo``'s program, both ways a new user runs it: Essentia only,
and with ``CLAP_MODEL`` (here the tests' tiny model) embedding and
searching the demo tracks. Each way ends with the lines that enable the
plugin in the user's own configuration. Marked ``release`` (minutes):
``make test`` runs it as a step of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ClapAssets

pytestmark = pytest.mark.release

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"
TITLES = {"Night Drive", "Sunrise", "Backbeat", "Four on the Floor",
          "Slow Burn", "Uptempo"}  # fmt: skip


def run_demo(library: Path, clap_model: Path | None = None) -> str:
    env = {**os.environ, "DEMO_LIBRARY": str(library), "HF_HUB_OFFLINE": "1"}
    env.pop("CLAP_MODEL", None)
    if clap_model is not None:
        env["CLAP_MODEL"] = str(clap_model)
    done = subprocess.run(
        [sys.executable, DEMO], env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def enable_lines(output: str) -> dict[str, object]:
    """The demo's last three lines, read as the YAML a user pastes."""
    lines = output.rstrip().splitlines()[-3:]
    assert lines[0] == "plugins: audiofeatures"
    enabled: dict[str, object] = yaml.safe_load("\n".join(lines))
    return enabled


def test_the_demo_analyses_its_tracks_and_says_how_to_enable_the_plugin(
    tmp_path: Path,
):
    output = run_demo(tmp_path / "demo")
    listed = output.split("$ beet ls -f '$title | $essentia_bpm", 1)[1]
    assert all(title in listed for title in TITLES)
    assert "BPM" in listed
    assert "CLAP search: rerun with CLAP_MODEL=" in output
    assert enable_lines(output) == {
        "plugins": "audiofeatures",
        "audiofeatures": {
            # the default profile (stored): what a library should run
            "essentia": {"fill_core_fields": True}
        },
    }
    assert (tmp_path / "demo" / "library.db").is_file()


def test_with_clap_model_the_demo_embeds_and_searches_its_tracks(
    tmp_path: Path, clap: ClapAssets
):
    output = run_demo(tmp_path / "demo", clap.model_dir)
    searched = output.split("$ beet clapquery 'slow melancholic music' -n 3\n")[
        1
    ]
    found = searched.split("$ beet", 1)[0].strip().splitlines()
    assert len(found) == 3
    assert all(any(title in line for title in TITLES) for line in found)
    assert enable_lines(output) == {
        "plugins": "audiofeatures",
        "audiofeatures": {"clap": {"model": str(clap.model_dir)}},
    }
