"""Essentia's trained classifiers through ``beet essentia``: model
descriptions, the ONNX and TensorFlow routes, model management."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from beets.exceptions import UserError

from beets_audiofeatures.essentia.classifiers import (
    Classifiers,
)
from beets_audiofeatures.essentia.extraction import import_essentia
from beets_audiofeatures.essentia.heads import (
    ModelFiles,
    file_tags,
    read_head,
)
from tests.essentia_models import GENRES, write_models
from tests.helpers import AudioFeaturesHelper

EFFNET_HEADS = [
    "mood_happy-discogs-effnet-1",
    "mood_sad-discogs-effnet-1",
    "danceability-discogs-effnet-1",
    "genre_discogs400-discogs-effnet-1",
]
ALL_HEADS = [*EFFNET_HEADS, "mood_happy-msd-musicnn-1"]
HAS_TENSORFLOW = hasattr(import_essentia(), "TensorflowPredict2D")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_models(tmp_path_factory.mktemp("models"), ALL_HEADS)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(16_000 * seconds))).astype(np.float32)


def test_descriptions_give_classes_in_their_own_order(models: Path):
    sad = read_head(models / "mood_sad-discogs-effnet-1.json")
    assert sad.classes == ("non_sad", "sad")  # the positive class is second
    assert (sad.input, sad.output) == ("model/Placeholder", "model/Softmax")
    assert sad.extractor == "discogs-effnet-bs64-1"
    genre = read_head(models / "genre_discogs400-discogs-effnet-1.json")
    assert (genre.input, genre.output) == (
        "serving_default_model_Placeholder", "PartitionedCall:0"
    )  # fmt: skip
    assert genre.class_field("Blues---Boogie Woogie") == (
        "essentia_genre_discogs400_blues_boogie_woogie"
    )
    dance = read_head(models / "danceability-discogs-effnet-1.json")
    assert dance.field == "essentia_danceability_class"  # the DFA owns the name


def test_only_the_likeliest_classes_of_a_large_model_are_kept(models: Path):
    genre = read_head(models / "genre_discogs400-discogs-effnet-1.json")
    probabilities = np.linspace(0, 1, len(GENRES))
    values = genre.values(probabilities, top=3)
    assert values["essentia_genre_discogs400"] == GENRES[-1]
    assert len(values) == 1 + 3
    assert set(genre.values(probabilities, top=0)) == set(genre.fields())


def test_file_tags_name_the_moods_that_apply_and_the_likeliest_genres(
    models: Path,
):
    heads = [
        read_head(models / f"{name}.json")
        for name in ("mood_happy-discogs-effnet-1", "mood_sad-discogs-effnet-1",
                     "genre_discogs400-discogs-effnet-1")
    ]  # fmt: skip
    values = {
        "essentia_mood_happy_happy": 0.8,
        "essentia_mood_sad_sad": 0.2,
        "essentia_genre_discogs400_genre3_style_1": 0.6,
        "essentia_genre_discogs400_genre3_style_2": 0.3,
        "essentia_genre_discogs400_genre4_style_0": 0.05,  # below the floor
    }
    assert file_tags(heads, values) == {
        "essentia_moods": "happy",
        "genres": ["Genre3", "Style 1", "Style 2"],
    }
    assert file_tags(heads, {}) == {}


def test_the_onnx_route_gives_probabilities_per_head(models: Path):
    es = import_essentia()
    classifiers = Classifiers(
        es, ModelFiles(models, tuple(ALL_HEADS)), "onnx", 5
    )
    values = classifiers(noise(30))
    for head in ("mood_happy", "mood_sad"):
        classes = read_head(models / f"{head}-discogs-effnet-1.json").classes
        probs = [values[f"essentia_{head}_{c}"] for c in classes]
        assert sum(probs) == pytest.approx(1, abs=1e-3)
        assert values[f"essentia_{head}"] == classes[int(np.argmax(probs))]
    assert sum(k.startswith("essentia_genre_discogs400_") for k in values) == 5
    assert "essentia_mood_happy_happy" in values  # both heads share the task
    again = classifiers(noise(30))
    assert again == values  # deterministic
    assert classifiers(noise(30, seed=1)) != values  # listens to the audio
    short = classifiers(noise(0.5))  # shorter than one patch: padded
    assert short["essentia_mood_happy"] in {"happy", "non_happy"}


@pytest.mark.tensorflow
@pytest.mark.skipif(not HAS_TENSORFLOW, reason="needs essentia-tensorflow")
def test_the_tensorflow_and_onnx_routes_agree(models: Path):
    es = import_essentia()
    files = ModelFiles(models, tuple(ALL_HEADS))
    tensorflow = Classifiers(es, files, "tensorflow", 0)
    onnx = Classifiers(es, files, "onnx", 0)
    for seconds in (30, 3, 0.5):
        audio = noise(seconds)
        expected = tensorflow(audio)
        got = onnx(audio)
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, abs=2e-4), key
            else:
                assert got[key] == value


class ClassifierHelper(AudioFeaturesHelper):
    @pytest.fixture(autouse=True)
    def _models(self, _audio: None, models: Path, tmp_path: Path) -> None:
        self.models = tmp_path / "models"
        shutil.copytree(models, self.models)
        settings = self.config["audiofeatures"]["essentia"]
        settings["profile"] = "rhythm"
        settings["models_dir"] = str(self.models)
        settings["model_route"] = "onnx"
        settings["top_classes"] = 3
        settings["models"] = [
            "mood_happy-discogs-effnet-1",
            "genre_discogs400-discogs-effnet-1",
        ]
        self.unload_plugins()  # the field types come from the descriptions
        self.load_plugins("audiofeatures")


class TestClassifiersInBeetEssentia(ClassifierHelper):
    def test_stores_typed_classes_and_records_the_route(self):
        item = self.add_track(self.audio.a120_flac, title="one")
        opus = self.add_track(self.audio.opus, title="two")  # through ffmpeg
        self.essentia()
        for track in (item, opus):
            track.load()
            assert track["essentia_mood_happy"] in {"happy", "non_happy"}
            total = (
                track["essentia_mood_happy_happy"]
                + track["essentia_mood_happy_non_happy"]
            )
            assert total == pytest.approx(1, abs=1e-3)
            genres = [
                k for k in track if k.startswith("essentia_genre_discogs400_")
            ]
            assert len(genres) == 3
            assert track["essentia_classifiers"] == (
                "onnx: mood_happy-discogs-effnet-1, genre_discogs400-discogs-effnet-1"
            )
            assert track["essentia_bpm"] > 0  # the profile ran too
        assert len(self.lib.items("essentia_mood_happy_happy:0..1")) == 2

    @pytest.mark.tensorflow
    @pytest.mark.skipif(not HAS_TENSORFLOW, reason="needs essentia-tensorflow")
    def test_the_tensorflow_route_runs_in_the_workers(self):
        self.config["audiofeatures"]["essentia"]["model_route"] = "auto"
        self.config["audiofeatures"]["essentia"]["jobs"] = 2
        items = [
            self.add_track(self.audio.a120_flac, title=f"t{n}")
            for n in range(3)
        ]
        self.essentia()
        for item in items:
            item.load()
            assert item["essentia_classifiers"].startswith("tensorflow: ")
            assert item["essentia_mood_happy"] in {"happy", "non_happy"}

    def test_mood_and_genre_tags_are_written_on_request(self):
        from mediafile import MediaFile

        self.config["audiofeatures"]["essentia"]["write_tags"] = True
        self.unload_plugins()  # the MOOD file field comes with write_tags
        self.load_plugins("audiofeatures")
        self.config["audiofeatures"]["essentia"]["mood_threshold"] = 0.0
        self.config["audiofeatures"]["essentia"]["models"] = [
            "mood_happy-discogs-effnet-1", "mood_sad-discogs-effnet-1",
            "genre_discogs400-discogs-effnet-1",
        ]  # fmt: skip
        items = [
            self.add_track(self.audio.a120_mp3, title="mp3"),
            self.add_track(self.audio.a120_flac, title="flac"),
        ]
        untouched = self.add_track(self.audio.c90_mp3, title="other")
        self.essentia("-W", "title:other")  # no writing without -w
        self.essentia("-w", "title:mp3", ",", "title:flac")
        for item in items:
            item.load()
            tags = MediaFile(item.path)
            assert tags.genres == item.genres
            assert item.genres  # the likeliest style clears the bar
            assert tags.essentia_moods == item["essentia_moods"] == "happy; sad"
        assert not MediaFile(untouched.path).genres

    def test_a_model_added_later_runs_alone(self):
        item = self.add_track(self.audio.a120_flac, title="one")
        self.config["audiofeatures"]["essentia"]["models"] = [
            "mood_happy-discogs-effnet-1"
        ]
        self.essentia()
        item.load()
        analysed = item["essentia_analyzed"]
        assert "essentia_genre_discogs400" not in item
        self.config["audiofeatures"]["essentia"]["models"] = [
            "mood_happy-discogs-effnet-1", "genre_discogs400-discogs-effnet-1",
        ]  # fmt: skip
        self.essentia()
        item.load()
        assert item["essentia_analyzed"] == analysed  # descriptors not redone
        assert "essentia_genre_discogs400" in item
        self.io.getoutput()
        self.essentia("-p")
        assert self.io.getoutput().startswith("nothing to analyse: ")

    def test_missing_files_are_one_line_errors(self):
        self.add_track(self.audio.a120_flac, title="one")
        (self.models / "discogs-effnet-bsdynamic-1.onnx").unlink()
        with pytest.raises(
            UserError, match=r"discogs-effnet-bsdynamic-1\.onnx is missing"
        ):
            self.essentia()
        (self.models / "mood_happy-discogs-effnet-1.json").unlink()
        with pytest.raises(UserError, match="--download-models"):
            self.essentia()

    def test_the_listing_names_folder_route_licence_and_missing_files(self):
        (self.models / "genre_discogs400-discogs-effnet-1.onnx").unlink()
        self.io.getoutput()
        self.essentia("--models")
        out = self.io.getoutput()
        assert f"models folder: {self.models}" in out
        assert "route: onnx" in out
        assert "CC BY-NC-SA 4.0" in out
        assert (
            "mood_happy-discogs-effnet-1: 2 classes -> essentia_mood_happy"
            in out
        )
        assert (
            "missing genre_discogs400-discogs-effnet-1.onnx: https://essentia.upf.edu/"
            "models/classification-heads/genre_discogs400/"
            "genre_discogs400-discogs-effnet-1.onnx"
        ) in out


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass  # no line on stderr for each download


@pytest.fixture
def model_site(models: Path, tmp_path: Path) -> Iterator[str]:
    """A local web server laid out like Essentia's model site."""
    site = tmp_path / "site"
    for name in ALL_HEADS:
        folder = site / "classification-heads" / name.split("-")[0]
        folder.mkdir(parents=True, exist_ok=True)
        for ext in (".json", ".onnx", ".pb"):
            shutil.copy(models / f"{name}{ext}", folder)
    extractors = site / "feature-extractors" / "discogs-effnet"
    extractors.mkdir(parents=True)
    shutil.copy(models / "discogs-effnet-bsdynamic-1.onnx", extractors)
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class TestDownload(ClassifierHelper):
    def test_download_fetches_heads_and_their_extractor(self, model_site):
        shutil.rmtree(self.models)
        self.config["audiofeatures"]["essentia"]["models_url"] = model_site
        self.essentia("--download-models")
        assert "All model files are present." in self.io.getoutput()
        assert sorted(p.name for p in self.models.iterdir()) == [
            "discogs-effnet-bsdynamic-1.onnx",
            "genre_discogs400-discogs-effnet-1.json",
            "genre_discogs400-discogs-effnet-1.onnx",
            "mood_happy-discogs-effnet-1.json",
            "mood_happy-discogs-effnet-1.onnx",
        ]
        json.loads(
            (self.models / "mood_happy-discogs-effnet-1.json").read_text()
        )
        self.add_track(self.audio.a120_flac, title="one")
        self.essentia()
        assert self.lib.items("essentia_mood_happy::.")

    def test_no_network_is_one_line(self):
        shutil.rmtree(self.models)
        self.config["audiofeatures"]["essentia"]["models_url"] = (
            "http://127.0.0.1:9/"
        )
        with pytest.raises(
            UserError, match=r"could not download .* fetch it yourself into"
        ):
            self.essentia("--download-models")
        # nothing half-downloaded is left behind
        assert not self.models.exists() or not any(self.models.iterdir())
