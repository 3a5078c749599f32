"""What a release promises besides the code: a changelog entry for the
version, the beets versions tox tests equal to the ones setup.cfg
accepts, a configuration page that lists every setting with its default,
and install hints that name installs that work."""

from __future__ import annotations

import ast
import configparser
import re
from pathlib import Path
from typing import Any, ClassVar

import beets.plugins
import yaml
from beets.test.helper import PluginTestHelper
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from beets_audiofeatures.version import __version__

ROOT = Path(__file__).resolve().parent.parent


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    return parser


def accepted(distribution: str) -> SpecifierSet:
    for line in setup_cfg()["options"]["install_requires"].split("\n"):
        if line.strip() and Requirement(line).name == distribution:
            return Requirement(line).specifier
    raise AssertionError(f"setup.cfg does not require {distribution}")


def test_the_changelog_has_an_entry_for_this_version_below_unreleased():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", changelog, re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert headings[1].startswith(f"{__version__} (")


def test_tox_tests_the_oldest_and_newest_beets_that_setup_cfg_accepts():
    tox = (ROOT / "tox.ini").read_text(encoding="utf-8")
    (oldest,) = re.findall(
        r"oldest: python -m pip install -q beets==(\S+)", tox
    )
    (newest,) = re.findall(r'newest: python -m pip install .*"beets(.+)"', tox)
    claim = accepted("beets")
    lowest = Version(next(s.version for s in claim if s.operator == ">="))
    assert Version(oldest) == lowest
    assert SpecifierSet(newest) == claim


def test_tox_tests_the_oldest_python_that_setup_cfg_accepts():
    tox = (ROOT / "tox.ini").read_text(encoding="utf-8")
    (oldest,) = re.findall(r"oldest: python(3\.\d+)", tox)
    claim = setup_cfg()["options"]["python_requires"]
    assert claim == f">={oldest}"
    classifiers = setup_cfg()["metadata"]["classifiers"]
    (newest,) = re.findall(r"newest: python(3\.\d+)", tox)
    listed = re.findall(r"Python :: (3\.\d+)", classifiers)
    assert (listed[0], listed[-1]) == (oldest, newest)


# --- the configuration page --------------------------------------------

PAGE = ROOT / "docs" / "configuration.rst"
EXAMPLE = ROOT / "examples" / "config.yaml"


class TestTheConfigurationPage(PluginTestHelper):
    plugin: ClassVar[str] = "audiofeatures"

    def registered(self) -> dict[str, Any]:
        """The defaults the plugin registers, read through the loaded
        plugin's own configuration (wherever its settings live)."""
        (plugin,) = [
            p for p in beets.plugins.find_plugins() if p.name == self.plugin
        ]
        defaults: dict[str, Any] = plugin.config.flatten()
        return defaults

    def settings(self) -> dict[str, Any]:
        """``section.key`` -> default, for every registered setting."""
        return {
            f"{section}.{key}": value
            for section, keys in self.registered().items()
            for key, value in keys.items()
        }

    def test_the_example_configuration_it_shows_is_the_defaults(self):
        assert EXAMPLE.name in PAGE.read_text(encoding="utf-8")
        example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
        assert example["plugins"] == "audiofeatures"
        assert example["audiofeatures"] == self.registered()

    def test_every_setting_has_an_entry_and_every_entry_a_setting(self):
        assert set(documented_entries()) == set(self.settings())

    def test_the_default_an_entry_names_is_the_registered_one(self):
        settings = self.settings()
        named = {
            name: default
            for names, default in entry_defaults()
            if len(names) == 1
            for name in names
        }
        assert len(named) > 20  # the page says most defaults this way
        for name, default in named.items():
            if "<" in default:  # computed: "<beets config dir>/..."
                assert settings[name] is None, name
            else:
                assert yaml.safe_load(default) == settings[name], name


TERM = re.compile(r"^``[a-z_]+\.[a-z_]+``")


def entries() -> list[tuple[list[str], str]]:
    """The page's definition list: the names of each term, and its text."""
    found: list[tuple[list[str], str]] = []
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if TERM.match(line):
            found.append((re.findall(r"``([a-z_]+\.[a-z_]+)``", line), ""))
        elif found and line.startswith("    "):
            names, text = found[-1]
            found[-1] = (names, f"{text} {line.strip()}")
        elif line.strip():
            found.append(([], ""))  # the list ended
    return [(names, text) for names, text in found if names]


def documented_entries() -> list[str]:
    return [name for names, _ in entries() for name in names]


def entry_defaults() -> list[tuple[list[str], str]]:
    return [
        (names, match.group(1))
        for names, text in entries()
        if (match := re.search(r"Default ``([^`]+)``", text))
    ]


# --- install hints -----------------------------------------------------


def strings_in(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_every_install_hint_names_an_extra_of_this_package():
    # The extras carry the tested pins (Essentia's pre-release included),
    # so a hint that names a bare package would install something else.
    extras = set(setup_cfg()["options.extras_require"])
    hints = [
        (path.relative_to(ROOT), hint)
        for folder in ("beets_audiofeatures", "beetsplug")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for text in strings_in(path)
        for hint in re.findall(r"pip install (\S+)", text)
    ]
    assert len(hints) >= 5
    for where, hint in hints:
        match = re.fullmatch(r"'beets-audiofeatures\[([a-z,-]+)\]'\)?,?", hint)
        assert match, f"{where}: pip install {hint}"
        assert set(match.group(1).split(",")) <= extras, where
