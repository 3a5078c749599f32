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


def test_the_defaults_are_the_cores_own() -> None:
    # The settings modules load on every beets command, so they write
    # these defaults out instead of importing the core's modules (which
    # import numpy); the core keeps its own for callers without beets.
    from beets_audiofeatures.clap.duplicates import DuplicateRules
    from beets_audiofeatures.clap.engine import KINDS
    from beets_audiofeatures.clap.model import PRECISIONS, ROUTES, ModelSpec
    from beets_audiofeatures.clap.zero_shot import DEFAULT_TEMPLATE
    from beets_audiofeatures.essentia.heads import SITE
    from beets_audiofeatures.essentia.profiles import (
        DEFAULT_KEY_PROFILE,
        DEFAULT_MIN_KEY_STRENGTH,
    )

    essentia = essentia_settings.DEFAULTS
    assert essentia["key_profile"] == DEFAULT_KEY_PROFILE
    assert essentia["min_key_strength"] == DEFAULT_MIN_KEY_STRENGTH
    assert essentia["models_url"] == SITE
    clap = clap_settings.DEFAULTS
    assert clap["tag_prompt"] == DEFAULT_TEMPLATE
    assert clap["duplicate_threshold"] == DuplicateRules.threshold
    assert clap["duplicate_tolerance"] == DuplicateRules.tolerance
    assert clap_settings.INDEX_KINDS == KINDS
    assert (clap["model"], clap["tokenizer"], clap["amodel"]) == (
        ModelSpec.model, ModelSpec.tokenizer, ModelSpec.amodel,
    )  # fmt: skip
    assert (clap_settings.ROUTES, clap_settings.PRECISIONS) == (
        ROUTES, PRECISIONS,
    )  # fmt: skip
