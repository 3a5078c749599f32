"""The settings as one reader: a bad value is one ``SettingError`` line
that the command boundary prints as it is; the playlist folder's
fallback is the same for the page and ``beet clap --playlists``; the
CLAP model's identity is computed once per state of its files; and the
settings modules, which beets imports on every command, load light."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from beets.exceptions import UserError

from beets_audiofeatures.clap.identity import model_tag
from beets_audiofeatures.errors import SettingError
from beetsplug.audiofeatures.commands.boundary import fatal_errors
from beetsplug.audiofeatures.settings.clap import ClapSettings
from tests.helpers import ClapHelper

ROOT = Path(__file__).resolve().parent.parent


class TestOneLine(ClapHelper):
    def settings(self) -> ClapSettings:
        return ClapSettings(self.config["audiofeatures"]["clap"])

    def test_a_bad_value_is_a_setting_error_naming_the_setting(self) -> None:
        self.config["audiofeatures"]["clap"]["limit"] = "x"
        with pytest.raises(SettingError) as raised:
            self.settings().require("limit")
        assert raised.value.line() == (
            "audiofeatures.clap.limit is 'x': use a whole number, 1 or more"
        )

    def test_the_command_boundary_prints_that_line_as_it_is(self) -> None:
        self.config["audiofeatures"]["clap"]["limit"] = "x"
        with pytest.raises(UserError) as raised, fatal_errors():
            self.settings().require("limit")
        assert str(raised.value) == (
            "audiofeatures.clap.limit is 'x': use a whole number, 1 or more"
        )

    def test_a_bad_value_breaks_only_the_settings_read(self) -> None:
        self.config["audiofeatures"]["clap"]["limit"] = "x"
        settings = self.settings()
        assert settings.require("jobs", "cache_dir").jobs == 1


class TestModelIdentity(ClapHelper):
    @pytest.fixture(autouse=True)
    def _own_model(self, _clap: None, tmp_path: Path) -> None:
        # A copy of the tiny model whose files this test may change.
        self.model = tmp_path / "model"
        shutil.copytree(self.assets.model_dir, self.model)
        self.config["audiofeatures"]["clap"]["model"] = str(self.model)

    def identity(self) -> dict[str, Any]:
        # A new settings object each time, as each command and each of
        # the page's requests makes.
        return ClapSettings(self.config["audiofeatures"]["clap"]).identity()

    def weights(self) -> Path:
        (weights,) = self.model.glob("*.safetensors")
        return weights

    def test_unchanged_files_give_back_the_identity_computed_first(self):
        first = self.identity()
        assert self.identity() is first

    def test_new_weights_under_the_same_name_make_a_new_identity(self):
        first = self.identity()
        with self.weights().open("ab") as weights:
            weights.write(b"\0")
        second = self.identity()
        assert second["weights"] != first["weights"]
        assert model_tag(second) != model_tag(first)

    def test_the_same_bytes_written_again_are_read_again_and_match(self):
        first = self.identity()
        weights = self.weights()
        stat = weights.stat()
        weights.write_bytes(weights.read_bytes())
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        again = self.identity()
        assert again is not first
        assert again == first

    def test_the_pipeline_is_part_of_the_identity(self):
        first = self.identity()
        self.config["audiofeatures"]["clap"]["windows"] = 3
        assert model_tag(self.identity()) != model_tag(first)


LIGHT = """
import sys, types
# The settings package alone, without the plugin's __init__ (which
# imports the commands).
package = types.ModuleType("beetsplug.audiofeatures")
package.__path__ = [sys.argv[1]]
import beetsplug
sys.modules["beetsplug.audiofeatures"] = package
import beets.library, beets.ui  # beet ls has them anyway
before = set(sys.modules)
from beets import config
from beetsplug.audiofeatures.settings import clap, cluster, essentia, web
view = config["audiofeatures"]
view.add({"essentia": essentia.DEFAULTS, "clap": clap.DEFAULTS,
          "cluster": cluster.DEFAULTS, "web": web.DEFAULTS})
# What the plugin reads on every command: the field types.
assert essentia.classifier_field_types(view["essentia"]) == {}
assert clap.tag_field_types(view["clap"]) == {}
for name in sorted(set(sys.modules) - before):
    print(name)
"""

#: What the settings may load of the core: the errors and the model's
#: description (a dataclass of names), nothing that computes.
CORE = {
    "beets_audiofeatures", "beets_audiofeatures.errors",
    "beets_audiofeatures.clap", "beets_audiofeatures.clap.model",
}  # fmt: skip


def test_the_settings_load_without_numpy_torch_or_the_analysis() -> None:
    run = subprocess.run(
        [sys.executable, "-c", LIGHT, str(ROOT / "beetsplug" / "audiofeatures")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    loaded = set(run.stdout.split())
    heavy = {"numpy", "torch", "transformers", "faiss", "scipy", "flask"}
    assert not {name for name in loaded if name.split(".")[0] in heavy}
    assert {n for n in loaded if n.startswith("beets_audiofeatures")} <= CORE
