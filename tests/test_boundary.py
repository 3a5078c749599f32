"""The analysis core never imports beets: every module of
``beets_audiofeatures`` imports with beets, confuse and mediafile
blocked, in a fresh interpreter."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import beets_audiofeatures

BLOCKED = ("beets", "beetsplug", "confuse", "mediafile")

PROBE = """
import importlib, sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"the core imported {{name}}")
        return None

sys.meta_path.insert(0, Blocked())
for name in {modules!r}:
    importlib.import_module(name)
print("ok", len({modules!r}))
"""


def core_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(
            beets_audiofeatures.__path__, "beets_audiofeatures."
        )
    )


def test_every_core_module_imports_without_beets() -> None:
    modules = core_modules()
    assert "beets_audiofeatures.clap.store" in modules
    assert "beets_audiofeatures.essentia.extraction" in modules
    assert len(modules) > 15
    code = PROBE.format(blocked=BLOCKED, modules=modules)
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["ok", str(len(modules))]


def test_the_probe_catches_a_beets_import() -> None:
    code = PROBE.format(blocked=BLOCKED, modules=["beetsplug.audiofeatures"])
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert run.returncode != 0
    assert "the core imported beets" in run.stderr
