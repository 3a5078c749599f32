"""Every ``audiofeatures.essentia`` setting with a bad value, through the
real ``beet``: the command that uses it says so in one line and exits 1;
``beet ls`` (which uses none of them) is not affected."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests import synth
from tests.conftest import Audio
from tests.synth import BEET


@pytest.fixture(scope="module")
def library(
    tmp_path_factory: pytest.TempPathFactory, audio: Audio
) -> tuple[dict[str, str], Path]:
    root = tmp_path_factory.mktemp("settings")
    return synth.library_of_copies(root, audio.a120_wav, 1, "{}")


def beet(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BEET, *args], env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def configure(env: dict[str, str], essentia: dict[str, object]) -> None:
    path = Path(env["BEETSDIR"]) / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["audiofeatures"] = {"essentia": essentia}
    path.write_text(yaml.safe_dump(config))


NAME = "audiofeatures.essentia"

# (settings, the command's arguments, what its one line says)
BAD = [
    ({"profile": "fastest"}, [], "unknown profile 'fastest'"),
    ({"profile": "/no/such.yaml"}, [], "profile file not found"),
    ({"profile": 7}, [], f"{NAME}.profile is 7: use music, rhythm"),
    ({"jobs": -1}, [], f"{NAME}.jobs is -1: use 0 (all cores) or more"),
    ({"jobs": "many"}, [], f"{NAME}.jobs is 'many': use 0 (all cores)"),
    ({}, ["-j", "-2"], "-j/--jobs must be 0 (all cores) or more, not -2"),
    ({"key_profile": "nope"}, [], "key_profile 'nope' is not available"),
    ({"min_key_strength": 2}, [],
     f"{NAME}.min_key_strength is 2: use a strength from 0 to 1"),
    ({"min_key_strength": "high"}, [],
     f"{NAME}.min_key_strength is 'high': use a strength from 0 to 1"),
    ({"fill_core_fields": "perhaps"}, [],
     f"{NAME}.fill_core_fields is 'perhaps': use yes or no"),
    ({"force": "sometimes"}, [], f"{NAME}.force is 'sometimes': use yes or no"),
    ({"write": "sometimes"}, [], f"{NAME}.write is 'sometimes': use yes or no"),
    ({"write_tags": 3}, [], f"{NAME}.write_tags is 3: use yes or no"),
    ({"max_minutes": -1}, [], f"{NAME}.max_minutes is -1: use 0 (no limit)"),
    ({"max_minutes": "long"}, [], f"{NAME}.max_minutes is 'long': use 0"),
    ({"mood_threshold": 2}, [],
     f"{NAME}.mood_threshold is 2: use a probability from 0 to 1"),
    ({"mood_threshold": "high"}, [], f"{NAME}.mood_threshold is 'high'"),
    ({"models": 5}, [], f"{NAME}.models is 5: use a list of model names"),
    ({"models": ["no-such-head-1"]}, [], "no-such-head-1"),
    ({"models": ["x"], "models_dir": 5}, [],
     f"{NAME}.models_dir is 5: use the path of a folder"),
    ({"models": ["x"], "model_route": "gpu"}, [],
     f"{NAME}.model_route is 'gpu': use one of auto, tensorflow, onnx"),
    ({"model_route": "gpu"}, ["--models"],
     f"{NAME}.model_route is 'gpu': use one of auto, tensorflow, onnx"),
    ({"models": ["x"], "top_classes": -2}, [],
     f"{NAME}.top_classes is -2: use 0 (all classes) or more"),
    ({"models_url": 5}, ["--models"], f"{NAME}.models_url is 5: use a URL"),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "args", "message"), BAD)
def test_a_bad_setting_is_one_line_and_breaks_nothing_else(
    library, settings, args, message
):
    env, _db = library
    configure(env, settings)

    run = beet(env, "essentia", "-p", *args)
    assert run.returncode == 1
    lines = (run.stdout + run.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0]

    listing = beet(env, "ls")
    assert listing.returncode == 0
    assert listing.stderr == ""
    assert listing.stdout.count("\n") == 1  # the one track


def test_a_bad_auto_breaks_only_the_import(library, tmp_path, audio):
    env, _db = library
    configure(env, {"auto": "maybe"})
    assert beet(env, "ls").returncode == 0
    assert beet(env, "essentia", "-p").returncode == 0  # does not use it

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    synth.encode(audio.c90_mp3, incoming / "new.flac")
    run = beet(env, "import", "-A", "-q", "-s", str(incoming))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: {NAME}.auto is 'maybe': use yes or no"
    )
