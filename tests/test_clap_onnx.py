"""The onnx route: the tiny CLAP model's audio tower really exported and
really run by ONNX Runtime, beside the torch route it must agree with."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from beets.exceptions import UserError

from beets_audiofeatures.clap.audio import WindowPolicy
from beets_audiofeatures.clap.embedder import ClapEmbedder
from beets_audiofeatures.clap.identity import model_identity, model_tag
from beets_audiofeatures.clap.model import CLIP_SAMPLES, ModelSpec
from beets_audiofeatures.clap.onnx_route import RouteError
from beets_audiofeatures.clap.store import stores
from tests import clap_fixtures
from tests.conftest import ClapAssets
from tests.helpers import ClapHelper

ROOT = Path(__file__).resolve().parent.parent


def clips(count: int = 3, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal((count, CLIP_SAMPLES))
    return (0.1 * noise).astype(np.float32)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1))


def exports(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/audio-*.onnx"))


@pytest.fixture(scope="module")
def digest_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Weight digests and the fallback export folder: the user's cache.
    xdg = tmp_path_factory.mktemp("xdg")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(xdg))
        yield xdg


@pytest.fixture(scope="module")
def torch_route(clap: ClapAssets, digest_cache: Path) -> ClapEmbedder:
    return ClapEmbedder(ModelSpec(model=str(clap.model_dir)))


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


def onnx_route(
    model: Path | str, export_dir: Path, precision: str = "fp32"
) -> ClapEmbedder:
    return ClapEmbedder(
        ModelSpec(
            model=str(model),
            route="onnx",
            precision=precision,
            export_dir=str(export_dir),
        )
    )


def test_fp32_onnx_vectors_are_the_torch_routes(
    clap: ClapAssets, torch_route: ClapEmbedder, export_dir: Path
):
    embedder = onnx_route(clap.model_dir, export_dir)
    data = clips()
    onnx = embedder.embed_clips(data)
    assert embedder.onnx is not None  # ONNX Runtime made these
    assert cosines(onnx, torch_route.embed_clips(data)).min() >= 0.999
    np.testing.assert_allclose(np.linalg.norm(onnx, axis=1), 1, atol=1e-5)


def test_int8_onnx_vectors_stay_close_to_the_torch_routes(
    clap: ClapAssets, torch_route: ClapEmbedder, export_dir: Path
):
    embedder = onnx_route(clap.model_dir, export_dir, "int8")
    data = clips()
    assert (
        cosines(embedder.embed_clips(data), torch_route.embed_clips(data)).min()
        >= 0.99
    )


def test_the_onnx_route_does_not_change_prompt_vectors(
    clap: ClapAssets, torch_route: ClapEmbedder, export_dir: Path
):
    embedder = onnx_route(clap.model_dir, export_dir)
    prompts = clap_fixtures.CAPTIONS[:3]
    np.testing.assert_array_equal(
        embedder.embed_texts(prompts), torch_route.embed_texts(prompts)
    )
    assert embedder.onnx is None  # prompts alone never export


def test_a_laion_checkpoint_exports_and_agrees_with_torch(
    clap: ClapAssets, digest_cache: Path, tmp_path: Path
):
    spec = ModelSpec(
        model=str(clap.checkpoint), tokenizer=str(clap.tokenizer_dir)
    )
    data = clips()
    torch_vectors = ClapEmbedder(spec).embed_clips(data)
    onnx = ClapEmbedder(
        replace(spec, route="onnx", export_dir=str(tmp_path))
    ).embed_clips(data)
    assert cosines(onnx, torch_vectors).min() >= 0.999
    assert [p.name for p in exports(tmp_path)] == ["audio-fp32.onnx"]


def test_the_export_is_made_once_and_reused(
    clap: ClapAssets, digest_cache: Path, tmp_path: Path
):
    onnx_route(clap.model_dir, tmp_path).audio_embedding()
    (export,) = exports(tmp_path)
    made = export.stat().st_mtime_ns
    again = onnx_route(clap.model_dir, tmp_path)
    again.audio_embedding()
    assert exports(tmp_path) == [export]
    assert export.stat().st_mtime_ns == made
    assert again.onnx is not None
    assert again.onnx.path == export


def test_a_changed_model_is_exported_again(
    clap: ClapAssets, digest_cache: Path, tmp_path: Path
):
    model = shutil.copytree(clap.model_dir, tmp_path / "model")
    data = clips()
    first = onnx_route(model, tmp_path / "onnx").embed_clips(data)
    # New weights under the same name, as a re-download would leave them.
    shutil.rmtree(model)
    clap_fixtures.make_model(model, clap.tokenizer_dir, seed=7)
    second = onnx_route(model, tmp_path / "onnx").embed_clips(data)
    retrained = ClapEmbedder(ModelSpec(model=str(model))).embed_clips(data)
    assert len(exports(tmp_path / "onnx")) == 2
    assert cosines(second, retrained).min() >= 0.999
    assert cosines(first, retrained).min() < 0.99


def test_an_unwritable_export_folder_falls_back_to_the_users_cache(
    clap: ClapAssets, digest_cache: Path, tmp_path: Path
):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    embedder = onnx_route(clap.model_dir, not_a_folder / "onnx")
    embedder.audio_embedding()
    assert embedder.onnx is not None
    assert embedder.onnx.path.is_relative_to(digest_cache)


def test_an_export_that_cannot_be_written_anywhere_is_one_line(
    clap: ClapAssets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_folder))
    embedder = onnx_route(clap.model_dir, not_a_folder / "onnx")
    with pytest.raises(RouteError) as error:
        embedder.audio_embedding()
    line = str(error.value)
    assert "\n" not in line
    assert "onnx route cannot write its export" in line
    assert "audiofeatures.clap.route to torch" in line


def test_int8_on_the_torch_route_is_refused(clap: ClapAssets):
    with pytest.raises(RouteError, match="torch route runs fp32 only"):
        ClapEmbedder(ModelSpec(model=str(clap.model_dir), precision="int8"))


# A Python where onnxruntime is not installed: no folder of sys.path
# holds it, for everything the process imports (transformers probes it).
NO_ONNXRUNTIME = """
import sys
from importlib.machinery import PathFinder


class WithoutOnnxRuntime(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] == "onnxruntime":
            return None  # as if it were in no folder of sys.path
        return super().find_spec(name, path, target)


sys.meta_path[:] = [
    WithoutOnnxRuntime if finder is PathFinder else finder
    for finder in sys.meta_path
]
"""

CHECK_BOTH_ROUTES = """
import sys
from beets_audiofeatures.clap.audio import WindowPolicy
from beets_audiofeatures.clap.embedder import ClapEmbedder
from beets_audiofeatures.clap.identity import model_identity, model_tag
from beets_audiofeatures.clap.model import ModelSpec
from beets_audiofeatures.errors import SetupError

try:
    ClapEmbedder(ModelSpec(model=sys.argv[1], route="onnx"))
except SetupError as exc:
    print("onnx:", exc.line())
embedder = ClapEmbedder(ModelSpec(model=sys.argv[1]))
import numpy as np
print("torch:", embedder.embed_clips(np.zeros((1, 480000), np.float32)).shape)
"""


def test_a_missing_onnxruntime_is_one_line_and_torch_still_works(
    clap: ClapAssets, tmp_path: Path
):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(NO_ONNXRUNTIME))
    done = subprocess.run(
        [sys.executable, "-c", CHECK_BOTH_ROUTES, str(clap.model_dir)],
        env={
            "PYTHONPATH": f"{site}:{ROOT}",
            "HF_HUB_OFFLINE": "1",
            "XDG_CACHE_HOME": str(tmp_path / "xdg"),
            "HOME": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    onnx, torch = done.stdout.strip().splitlines()
    assert onnx == (
        "onnx: audiofeatures.clap: the onnx route needs onnxruntime, which "
        "cannot be imported (No module named 'onnxruntime'): pip install "
        "'beets-audiofeatures[clap-onnx]', or set audiofeatures.clap.route "
        "to torch"
    )
    assert torch == "torch: (1, 32)"


class TestClapCommandOnnxRoute(ClapHelper):
    def test_beet_clap_on_the_onnx_route_stores_vectors_of_its_own(self):
        ids = self.library()
        settings = self.config["audiofeatures"]["clap"]
        self.clap()
        torch_store = self.store()
        settings["route"] = "onnx"
        self.clap()
        (onnx_store,) = [
            s for s in stores(self.stores) if s.tag != torch_store.tag
        ]
        assert self.item(ids["a-flac"])["clap_model"] == onnx_store.tag
        for number in ids.values():
            onnx = self.vector(number, onnx_store)
            assert onnx @ self.vector(number, torch_store) >= 0.999
        assert len(torch_store.index()) == 4  # untouched, never mixed
        assert [p.name for p in exports(self.cache / "onnx")] == [
            "audio-fp32.onnx"
        ]
        settings["precision"] = "int8"
        self.clap("title:a-flac")
        assert len(list(stores(self.stores))) == 3

    def test_the_torch_route_keeps_the_store_it_had_before_routes(self):
        self.library()
        self.config["audiofeatures"]["clap"]["route"] = "torch"
        self.clap("title:a-flac")
        # The tag as the plugin computed it before there were routes.
        pipeline = {"version": 1, "seconds": 10, **WindowPolicy(2).describe()}
        model = ModelSpec(model=str(self.assets.model_dir))
        assert self.store().tag == model_tag(model_identity(model, pipeline))

    def test_an_unknown_route_is_one_line(self):
        self.library()
        self.config["audiofeatures"]["clap"]["route"] = "tensorflow"
        with pytest.raises(UserError, match=r"route.*one of torch, onnx"):
            self.clap()
        assert not self.cache.exists() or not list(self.cache.rglob("*.npy"))

    def test_int8_on_the_torch_route_is_one_line_before_any_work(self):
        self.library()
        self.config["audiofeatures"]["clap"]["precision"] = "int8"
        line = self.fails("clap")
        assert line == (
            "audiofeatures.clap: the torch route runs fp32 only, not int8: "
            "set audiofeatures.clap.route to onnx, or precision to fp32"
        )
        assert not self.cache.exists() or not list(self.cache.rglob("*.npy"))
