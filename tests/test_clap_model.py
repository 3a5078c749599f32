"""Loading CLAP models the three ways a user can name them."""

from __future__ import annotations

import argparse
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from beetsplug.audiofeatures.clap_model import (
    CLIP_SAMPLES,
    ClapEmbedder,
    ModelError,
    ModelSpec,
    locate_checkpoint,
    model_identity,
    model_tag,
)
from tests import clap_fixtures
from tests.conftest import ClapAssets


def clips(count: int = 2, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal((count, CLIP_SAMPLES))
    return (0.1 * noise).astype(np.float32)


def reference_audio(
    model, embedder: ClapEmbedder, data: np.ndarray
) -> np.ndarray:
    features = embedder.features(
        list(data), sampling_rate=48_000, return_tensors="pt"
    )
    with torch.inference_mode():
        out = model.get_audio_features(
            input_features=features["input_features"],
            is_longer=torch.zeros((len(data), 1), dtype=torch.bool),
        )
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
