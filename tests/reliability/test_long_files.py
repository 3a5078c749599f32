"""A two-hour file: memory stays bounded, the track is still analysed."""

from __future__ import annotations

import resource
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests import synth
from tests.synth import BEET

MB = 1024  # ru_maxrss is in KiB on Linux


@pytest.fixture(scope="module")
def two_hours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("long") / "incoming"
    folder.mkdir()
    target = folder / "mix.flac"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
         "sine=frequency=440:sample_rate=8000:duration=7200",
         "-ac", "1", "-c:a", "flac", str(target)],
        check=True,
    )  # fmt: skip
    return folder


def peak_child_rss_mb(command: list[str | Path], env: dict[str, str]) -> float:
    """Run ``command`` and return the largest resident size (MB) any of
    its processes reached (the kernel keeps the maximum per child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(command, env=env, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert after > before or before < 4_000 * MB, "an earlier child was larger"
    return after / MB


def test_a_two_hour_file_is_analysed_in_bounded_memory(
    tmp_path, two_hours, clap
):
    cache = tmp_path / "cache"
    env, db = synth.import_library(
        tmp_path, two_hours,
        "audiofeatures:\n"
        "  essentia: {profile: 'rhythm,lowlevel', jobs: 1, max_minutes: 2}\n"
        f"  clap: {{model: '{clap.model_dir}', cache_dir: '{cache}'}}\n",
    )  # fmt: skip
    env["HF_HUB_OFFLINE"] = "1"
    # Decoded whole, two hours are 2.5 GB of float stereo at 44.1 kHz.
    assert peak_child_rss_mb([BEET, "essentia"], env) < 1_000
    assert peak_child_rss_mb([BEET, "clap"], env) < 1_500
    with sqlite3.connect(db) as conn:
        fields = dict(conn.execute("SELECT key, value FROM item_attributes"))
    assert "essentia_loudness" in fields
    assert "clap_model" in fields
