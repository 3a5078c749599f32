"""The configuration reference cannot drift from the code: the example
configuration the docs show holds exactly the defaults the plugin
gives ``config.add()``."""

from __future__ import annotations

from pathlib import Path

import yaml

from beetsplug.audiofeatures.settings import clap as clap_settings
from beetsplug.audiofeatures.settings import cluster as cluster_settings
from beetsplug.audiofeatures.settings import essentia as essentia_settings
from beetsplug.audiofeatures.settings import web as web_settings

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "config.yaml"


def test_the_example_configuration_is_the_defaults() -> None:
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert example["plugins"] == "audiofeatures"
    assert example["audiofeatures"] == {
        "essentia": essentia_settings.DEFAULTS,
        "clap": clap_settings.DEFAULTS,
        "cluster": cluster_settings.DEFAULTS,
        "web": web_settings.DEFAULTS,
    }
