"""Loading CLAP models the three ways a user can name them."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from beets_audiofeatures.clap.embedder import ClapEmbedder
from beets_audiofeatures.clap.identity import model_identity, model_tag
from beets_audiofeatures.clap.laion import locate_checkpoint
from beets_audiofeatures.clap.model import CLIP_SAMPLES, ModelError, ModelSpec
from tests import clap_fixtures
from tests.conftest import ClapAssets

if TYPE_CHECKING:
    from transformers import ClapModel


@pytest.fixture(autouse=True)
def _digest_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # model_identity remembers weight digests in the user's cache folder
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def clips(count: int = 2, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal((count, CLIP_SAMPLES))
    return (0.1 * noise).astype(np.float32)


def reference_audio(
    model: ClapModel, embedder: ClapEmbedder, data: np.ndarray
) -> np.ndarray:
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    features = embedder.features(
        list(data), sampling_rate=48_000, return_tensors="pt"
    )
    with torch.inference_mode():
        out = model.get_audio_features(
            input_features=features["input_features"],
            is_longer=torch.zeros((len(data), 1), dtype=torch.bool),
        )
    assert isinstance(out, BaseModelOutputWithPooling), type(out)
    assert out.pooler_output is not None
    return out.pooler_output.numpy()


def test_a_saved_model_folder_embeds_unit_vectors(clap: ClapAssets):
    embedder = ClapEmbedder(ModelSpec(model=str(clap.model_dir)))
    audio = embedder.embed_clips(clips(3))
    text = embedder.embed_texts(["dusty jazz piano at night", "metal"])
    assert audio.shape == (3, 32)
    assert text.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(audio, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1, atol=1e-5)
    assert not np.allclose(text[0], text[1])


def test_clip_vectors_do_not_depend_on_the_batch(clap: ClapAssets):
    embedder = ClapEmbedder(ModelSpec(model=str(clap.model_dir)))
    data = clips(3)
    together = embedder.embed_clips(data)
    alone = embedder.embed_clips(data[1:2])
    np.testing.assert_allclose(together[1], alone[0], atol=1e-5)


def test_a_laion_checkpoint_equals_the_model_it_was_saved_from(
    clap: ClapAssets, tmp_path: Path
):
    path, original = clap_fixtures.make_laion_checkpoint(
        tmp_path / "630k-audioset-best.pt", clap.vocab_size
    )
    embedder = ClapEmbedder(
        ModelSpec(model=str(path), tokenizer=str(clap.tokenizer_dir))
    )
    data = clips(2)
    expected = reference_audio(original.eval(), embedder, data)
    np.testing.assert_allclose(embedder.embed_clips(data), expected, atol=1e-6)
    tokens = embedder.tokenizer(["rainy night jazz"], return_tensors="pt")
    with torch.inference_mode():
        text = original.get_text_features(**tokens).pooler_output.numpy()
    np.testing.assert_allclose(
        embedder.embed_texts(["rainy night jazz"]), text, atol=1e-6
    )
    assert not embedder.fused


def test_a_fused_checkpoint_is_recognised(clap: ClapAssets, tmp_path: Path):
    path, original = clap_fixtures.make_laion_checkpoint(
        tmp_path / "630k-audioset-fusion-best.pt", clap.vocab_size, fusion=True
    )
    embedder = ClapEmbedder(
        ModelSpec(model=str(path), tokenizer=str(clap.tokenizer_dir))
    )
    assert embedder.fused
    data = clips(1)
    np.testing.assert_allclose(
        embedder.embed_clips(data), reference_audio(original.eval(), embedder, data),
        atol=1e-6,
    )  # fmt: skip
    with pytest.raises(ModelError, match="is a fusion model"):
        ClapEmbedder(
            ModelSpec(
                model=str(path), tokenizer=str(clap.tokenizer_dir), fusion=False
            )
        )


def test_the_configured_audio_tower_must_match(clap: ClapAssets):
    spec = ModelSpec(
        model=str(clap.checkpoint), tokenizer=str(clap.tokenizer_dir),
        amodel="HTSAT-base",
    )  # fmt: skip
    with pytest.raises(
        ModelError, match="not the configured amodel HTSAT-base"
    ):
        ClapEmbedder(spec)


class Payload:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))  # type: ignore[attr-defined]


def test_a_checkpoint_that_runs_code_is_refused_unless_trusted(
    clap: ClapAssets, tmp_path: Path
):
    data = torch.load(clap.checkpoint, weights_only=True)
    data["args"] = argparse.Namespace(amodel="HTSAT-tiny")  # as training saves
    path = tmp_path / "music_audioset_epoch_15_esc_90.14.pt"
    torch.save(data, path)
    spec = ModelSpec(model=str(path), tokenizer=str(clap.tokenizer_dir))
    with pytest.raises(ModelError, match="trust_checkpoint: yes"):
        ClapEmbedder(spec)
    trusted = ClapEmbedder(
        ModelSpec(
            model=str(path),
            tokenizer=str(clap.tokenizer_dir),
            trust_checkpoint=True,
        )
    )
    assert trusted.embed_clips(clips(1)).shape == (1, 32)


def test_a_pickle_payload_never_runs(tmp_path: Path):
    marker = tmp_path / "pwned"
    payload = Payload()
    payload.marker = str(marker)  # type: ignore[attr-defined]
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": payload}))
    with pytest.raises(ModelError, match="trust_checkpoint"):
        ClapEmbedder(ModelSpec(model=str(path)))
    assert not marker.exists()


def test_a_missing_model_folder_says_which_files_it_needs(tmp_path: Path):
    with pytest.raises(ModelError, match=r"config\.json, model\.safetensors"):
        ClapEmbedder(ModelSpec(model=str(tmp_path / "no-such-model")))


def test_a_released_checkpoint_name_is_looked_up_and_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LAION_CLAP_CACHE", str(tmp_path / "laion"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ModelError) as failure:
        locate_checkpoint("630k-audioset-best.pt")
    message = str(failure.value)
    assert str(tmp_path / "laion" / "630k-audioset-best.pt") in message
    assert "huggingface.co/lukewys/laion_clap" in message
    (tmp_path / "laion").mkdir()
    (tmp_path / "laion" / "630k-audioset-best.pt").write_bytes(b"x")
    assert (
        locate_checkpoint("630k-audioset-best.pt").parent == tmp_path / "laion"
    )


def test_a_placeholder_tokenizer_is_refused(clap: ClapAssets, tmp_path: Path):
    from transformers import RobertaTokenizer

    empty = tmp_path / "tokenizer"
    RobertaTokenizer(
        vocab={t: i for i, t in enumerate(clap_fixtures.SPECIALS)}, merges=[]
    ).save_pretrained(str(empty))
    spec = ModelSpec(model=str(clap.checkpoint), tokenizer=str(empty))
    with pytest.raises(ModelError, match="only 5 tokens"):
        ClapEmbedder(spec)


def test_the_store_tag_changes_with_the_model_and_the_windows(
    clap: ClapAssets, tmp_path: Path
):
    folder = ModelSpec(model=str(clap.model_dir))
    checkpoint = ModelSpec(model=str(clap.checkpoint))
    three = model_tag(model_identity(folder, {"windows": 3}))
    assert three == model_tag(model_identity(folder, {"windows": 3}))
    assert three != model_tag(model_identity(folder, {"windows": 1}))
    assert three != model_tag(model_identity(checkpoint, {"windows": 3}))
    assert model_tag(model_identity(checkpoint, {})).startswith(
        "630k-audioset-best-"
    )
    # a copy elsewhere (new paths, new dates) is the same model
    copy = shutil.copytree(clap.model_dir, tmp_path / clap.model_dir.name)
    moved = ModelSpec(model=str(copy))
    assert model_tag(model_identity(moved, {"windows": 3})) == three


def test_an_unreachable_hub_fails_fast_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
):
    for variable in (
        "HF_HUB_OFFLINE",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens
    started = time.monotonic()
    with pytest.raises(ModelError) as failure:
        ClapEmbedder(ModelSpec(model="laion/no-such-clap-model"))
    assert time.monotonic() - started < 15
    message = str(failure.value)
    assert "127.0.0.1 cannot be reached" in message
    assert "\n" not in message


def test_new_weights_in_the_same_folder_make_a_new_store(
    clap: ClapAssets, tmp_path: Path
):
    folder = shutil.copytree(clap.model_dir, tmp_path / "tiny-clap")
    spec = ModelSpec(model=str(folder))
    before = model_tag(model_identity(spec, {"windows": 3}))
    assert model_tag(model_identity(spec, {"windows": 3})) == before
    retrained = clap_fixtures.make_model(
        tmp_path / "retrained", clap.tokenizer_dir, seed=1
    )
    weights = folder / "model.safetensors"
    old = weights.stat()
    # same name, same size, even the old date kept (cp -p, rsync -t)
    shutil.copyfile(retrained / "model.safetensors", weights)
    os.utime(weights, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert weights.stat().st_size == old.st_size
    assert model_tag(model_identity(spec, {"windows": 3})) != before


def test_a_weight_file_is_read_once_while_it_is_unchanged(
    clap: ClapAssets, tmp_path: Path
):
    folder = shutil.copytree(clap.model_dir, tmp_path / "tiny-clap")
    weights = folder / "model.safetensors"
    digests = tmp_path / "digests.json"
    spec = ModelSpec(model=str(folder))
    first = model_identity(spec, {}, digests)
    real = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert first["weights"] == [("model.safetensors", real)]
    known = json.loads(digests.read_text())
    assert known[str(weights.resolve())]["sha256"] == real
    # what the cache says is used as long as the file is unchanged ...
    known[str(weights.resolve())]["sha256"] = "remembered"
    digests.write_text(json.dumps(known))
    assert model_identity(spec, {}, digests)["weights"] == [
        ("model.safetensors", "remembered")
    ]
    # ... and a touched file is read again
    weights.touch()
    assert model_identity(spec, {}, digests)["weights"] == [
        ("model.safetensors", real)
    ]


def test_a_checkpoint_is_known_by_its_contents(
    clap: ClapAssets, tmp_path: Path
):
    path, _ = clap_fixtures.make_laion_checkpoint(
        tmp_path / "a" / "630k-audioset-best.pt", clap.vocab_size, seed=1
    )
    other, _ = clap_fixtures.make_laion_checkpoint(
        tmp_path / "b" / "630k-audioset-best.pt", clap.vocab_size, seed=2
    )
    assert path.stat().st_size == other.stat().st_size
    tags = {
        model_tag(model_identity(ModelSpec(model=str(p)), {}))
        for p in (path, other)
    }
    assert len(tags) == 2


def _hub_cache(
    root: Path, model_dir: Path, revisions: list[str], main: str
) -> Path:
    """A hub cache holding ``test-org/tiny-clap`` at ``revisions``."""
    repo = root / "models--test-org--tiny-clap"
    for revision in revisions:
        shutil.copytree(model_dir, repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(main)
    return repo


def test_a_hub_model_is_known_by_the_revision_in_the_hub_cache(
    clap: ClapAssets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from huggingface_hub import constants

    old, new = "a" * 40, "b" * 40
    repo = _hub_cache(tmp_path / "hub", clap.model_dir, [old, new], main=old)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    spec = ModelSpec(model="test-org/tiny-clap")
    first = model_identity(spec, {})
    assert first["revision"] == old
    assert ClapEmbedder(spec).dim == 32  # loads from that cache
    (repo / "refs" / "main").write_text(new)  # the cache was updated
    assert model_tag(model_identity(spec, {})) != model_tag(first)
    # not cached and offline: no revision to know (and no network tried)
    assert (
        model_identity(ModelSpec(model="test-org/other"), {})["revision"]
        is None
    )


def _cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garble(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(50_000))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_cut, "incomplete metadata"),
        (_garble, "header too large"),
        (_empty, "the file is empty"),
    ],
)
def test_damaged_weights_are_one_line_naming_the_file(
    clap: ClapAssets, tmp_path: Path, damage, reason: str
):
    folder = shutil.copytree(clap.model_dir, tmp_path / "tiny-clap")
    damage(folder / "model.safetensors")
    with pytest.raises(ModelError) as failure:
        ClapEmbedder(ModelSpec(model=str(folder)))
    message = str(failure.value)
    assert message.startswith(
        f"the CLAP weights {folder / 'model.safetensors'} are damaged ("
    )
    assert reason in message
    assert message.endswith("replace the file with a complete copy")
    assert "\n" not in message


def test_weights_that_do_not_fit_the_config_are_one_line(
    clap: ClapAssets, tmp_path: Path
):
    folder = shutil.copytree(clap.model_dir, tmp_path / "tiny-clap")
    config = json.loads((folder / "config.json").read_text())
    config["projection_dim"] = 64  # a config.json of another model
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError) as failure:
        ClapEmbedder(ModelSpec(model=str(folder)))
    message = str(failure.value)
    assert f"the CLAP model in {folder} does not fit together" in message
    assert "is [32] in model.safetensors but [64] by config.json" in message
    assert "use the config.json saved with these weights" in message
    assert "\n" not in message


def test_damaged_weights_in_the_hub_cache_say_what_to_delete(
    clap: ClapAssets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from huggingface_hub import constants

    repo = _hub_cache(tmp_path / "hub", clap.model_dir, ["c" * 40], "c" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    _cut(repo / "snapshots" / ("c" * 40) / "model.safetensors")
    with pytest.raises(ModelError, match=f"delete {repo} and run beet clap"):
        ClapEmbedder(ModelSpec(model="test-org/tiny-clap"))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_cut, "is cut short"),
        (_garble, "is not a PyTorch checkpoint"),
        (_empty, "is empty"),
    ],
)
def test_a_damaged_checkpoint_is_one_line_naming_the_file(
    clap: ClapAssets, tmp_path: Path, damage, reason: str
):
    path = tmp_path / "630k-audioset-best.pt"
    shutil.copy(clap.checkpoint, path)
    damage(path)
    spec = ModelSpec(model=str(path), tokenizer=str(clap.tokenizer_dir))
    with pytest.raises(ModelError) as failure:
        ClapEmbedder(spec)
    message = str(failure.value)
    assert message.startswith(f"the CLAP checkpoint {path} {reason}")
    assert message.endswith(
        "download it again from https://huggingface.co/lukewys/laion_clap/"
        "resolve/main/630k-audioset-best.pt"
    )
