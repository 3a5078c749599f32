"""Which source a model setting names, and what identifies each one."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from beets_audiofeatures.clap.digests import WeightDigests
from beets_audiofeatures.clap.identity import model_identity, model_tag
from beets_audiofeatures.clap.model import ModelSpec
from beets_audiofeatures.clap.sources import (
    FolderModel,
    HubModel,
    LaionCheckpoint,
    model_source,
)
from tests.conftest import ClapAssets


@pytest.fixture(autouse=True)
def _digest_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_form_of_the_setting_names_its_source(
    clap: ClapAssets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def source(model: str) -> type:
        return type(model_source(ModelSpec(model=model)))

    assert source("laion/larger_clap_music") is HubModel
    assert source(str(clap.model_dir)) is FolderModel
    assert source(str(clap.checkpoint)) is LaionCheckpoint
    # a released checkpoint's bare name, found where LAION-CLAP keeps it
    assert source("630k-audioset-best.pt") is LaionCheckpoint
    # a folder named with ~ is still a folder
    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(clap.model_dir, tmp_path / "tiny-clap")
    assert source("~/tiny-clap") is FolderModel
    # a path that is no folder is taken for a hub id, as transformers does
    assert source(str(tmp_path / "nothing-here")) is HubModel


def test_a_folder_is_known_by_its_config_and_weights(
    clap: ClapAssets, tmp_path: Path
):
    spec = ModelSpec(model=str(clap.model_dir))
    known = WeightDigests(tmp_path / "digests.json")
    assert model_source(spec).identity(known) == {
        "model": "tiny-clap",
        "config": sha256(clap.model_dir / "config.json"),
        "weights": [
            ("model.safetensors", sha256(clap.model_dir / "model.safetensors"))
        ],
    }
    assert list(model_identity(spec, {"windows": 3})) == [
        "model", "config", "weights", "pipeline",
    ]  # fmt: skip
    assert model_source(spec).tokenizer_name() == str(clap.model_dir)


def test_a_checkpoint_is_known_by_its_file_name_and_contents(
    clap: ClapAssets, tmp_path: Path
):
    spec = ModelSpec(model=str(clap.checkpoint), tokenizer="my-roberta")
    known = WeightDigests(tmp_path / "digests.json")
    assert model_source(spec).identity(known) == {
        "model": "630k-audioset-best.pt",
        "weights": sha256(clap.checkpoint),
    }
    assert model_identity(spec, {"windows": 3}) == {
        "model": "630k-audioset-best.pt",
        "weights": sha256(clap.checkpoint),
        "pipeline": {"windows": 3},
    }
    assert model_source(spec).tokenizer_name() == "my-roberta"


def test_a_hub_id_is_known_by_its_cached_revision(
    clap: ClapAssets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--test-org--tiny-clap"
    shutil.copytree(clap.model_dir, repo / "snapshots" / ("a" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    spec = ModelSpec(model="test-org/tiny-clap")
    known = WeightDigests(tmp_path / "digests.json")
    assert model_source(spec).identity(known) == {
        "model": "test-org/tiny-clap",
        "revision": "a" * 40,
    }
    identity = model_identity(spec, {"windows": 3})
    assert identity == {
        "model": "test-org/tiny-clap",
        "revision": "a" * 40,
        "pipeline": {"windows": 3},
    }
    # the store tag the code before the source registry gave it
    assert model_tag(identity) == "tiny-clap-70b6662037"
    assert model_source(spec).tokenizer_name() is None
