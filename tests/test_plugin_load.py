"""Every beets command loads the plugin: it must cost next to nothing.
The plugin class, its settings' defaults and its commands' lines load;
the work of a command (its module, the analysis, search and page rooms,
numpy, the core's engines) is imported only when that command runs.
(``benchmarks/plugin_cost.py`` measures the CPU it adds to ``beet ls``.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

LOADED = """
import json, sys
import beets.ui, beets.library, beets.plugins
before = set(sys.modules)
from beetsplug.audiofeatures import AudioFeaturesPlugin
plugin = AudioFeaturesPlugin()
names = [command.name for command in plugin.commands()]
print(json.dumps({
    "commands": names,
    "added": sorted(set(sys.modules) - before),
}))
"""

#: what the plugin may load for every command
LIGHT = {
    "beetsplug.audiofeatures",
    "beetsplug.audiofeatures.commands",
    "beetsplug.audiofeatures.commands.boundary",
    "beetsplug.audiofeatures.commands.options",
    "beetsplug.audiofeatures.commands.parsers",
    "beetsplug.audiofeatures.fields",
    "beetsplug.audiofeatures.input_limits",
    "beetsplug.audiofeatures.library_query",
    "beetsplug.audiofeatures.settings",
}


def loaded() -> dict[str, list[str]]:
    run = subprocess.run(
        [sys.executable, "-c", LOADED], capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    found: dict[str, list[str]] = json.loads(run.stdout)
    return found


def test_every_command_is_there_without_its_work_being_imported() -> None:
    found = loaded()
    assert found["commands"] == [
        "essentia", "clap", "clapquery", "clapradio", "clappath",
        "clapdupes", "clapweb", "clapmap",
    ]  # fmt: skip
    ours = {
        name
        for name in found["added"]
        if name.startswith("beetsplug.audiofeatures")
        and not name.startswith("beetsplug.audiofeatures.settings.")
    }
    assert ours <= LIGHT, sorted(ours - LIGHT)


LS = """
import json, sys
from beets.ui import main
try:
    main(["ls"])
finally:
    print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def test_beet_ls_imports_none_of_the_work(tmp_path) -> None:
    # The library's first command repairs 0.1.0's album values once and
    # notes it; the second, like every later one, only reads that note.
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.yaml").write_text(
        f"directory: {tmp_path}/music\nlibrary: {tmp_path}/library.db\n"
        "plugins: audiofeatures\n"
    )
    env = dict(os.environ, BEETSDIR=str(config))
    for _ in range(2):
        run = subprocess.run(
            [sys.executable, "-c", LS], capture_output=True, text=True,
            env=env, check=True,
        )  # fmt: skip
    modules = set(json.loads(run.stderr.strip().splitlines()[-1]))
    heavy = {
        name
        for name in modules
        if name.startswith(
            (
                "beetsplug.audiofeatures.analysis",
                "beetsplug.audiofeatures.search",
                "beetsplug.audiofeatures.web",
                "beets_audiofeatures.clap",
                "beets_audiofeatures.runner",
                "torch",
                "tqdm",
            )
        )
    }
    assert not heavy, sorted(heavy)
