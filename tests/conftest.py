from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from beets.test._common import DummyIO
from beets.util import cached_classproperty

from tests import clap_fixtures, synth
from tests.matrix_audio import Matrix


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = [tool for tool in ("sox", "ffmpeg") if not shutil.which(tool)]
    if missing:
        raise pytest.UsageError(
            f"the tests need {' and '.join(missing)}: run scripts/system-deps.sh"
        )


@pytest.fixture
def io(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capteesys: pytest.CaptureFixture[str],
) -> DummyIO:
    dummy = DummyIO(monkeypatch, capteesys)
    if request.instance is not None:
        request.instance.io = dummy  # what beets' IOMixin reads
    return dummy


@pytest.fixture(autouse=True)
def _clear_type_cache() -> None:
    # beets caches Item._types per class; plugins change them per test.
    cached_classproperty.cache.clear()


class Audio:
    """The synthesised test files, made once per session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.a120_wav = synth.make_track(root / "a120.wav", 120, "Am")
        self.a120_flac = synth.encode(self.a120_wav, root / "a120.flac")
        self.a120_mp3 = synth.encode(self.a120_wav, root / "a120.mp3")
        self.a120_ogg = synth.encode(self.a120_wav, root / "a120.ogg")
        self.a120_m4a = synth.encode(self.a120_wav, root / "a120.m4a")
        self.c90_mp3 = synth.make_track(root / "c90.mp3", 90, "C")
        self.opus = synth.encode(self.a120_wav, root / "a120.opus")
        self.raw_aac = synth.encode(self.a120_wav, root / "a120.aac")
        self.six_channels = synth.encode(
            self.a120_wav, root / "six.wav", channels=6
        )
        self.silence = synth.make_silence(root / "silence.wav")
        self.truncated_wav = synth.truncate(
            self.a120_wav, root / "truncated.wav", 0.3
        )
        self.text = root / "notes.mp3"
        self.text.write_text("these are not the tracks you are looking for\n")
        self.empty = root / "empty.flac"
        self.empty.write_bytes(b"")


@pytest.fixture(autouse=True, scope="session")
def _offline() -> Iterator[None]:
    # The tests build their models; nothing may reach the hub.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


class ClapAssets:
    """A tokenizer, a model folder and a LAION checkpoint, all tiny."""

    def __init__(self, root: Path) -> None:
        from transformers import AutoTokenizer

        self.tokenizer_dir = clap_fixtures.make_tokenizer(root / "roberta")
        self.vocab_size = len(
            AutoTokenizer.from_pretrained(str(self.tokenizer_dir))
        )
        self.model_dir = clap_fixtures.make_model(
            root / "tiny-clap", self.tokenizer_dir
        )
        self.checkpoint, _ = clap_fixtures.make_laion_checkpoint(
            root / "laion" / "630k-audioset-best.pt", self.vocab_size
        )


@pytest.fixture(scope="session")
def clap(tmp_path_factory: pytest.TempPathFactory) -> ClapAssets:
    return ClapAssets(tmp_path_factory.mktemp("clap"))


@pytest.fixture(scope="session")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Audio:
    return Audio(tmp_path_factory.mktemp("audio"))


@pytest.fixture(scope="session")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    """The files of ``tests/matrix_audio.py``, made once per session."""
    return Matrix(tmp_path_factory.mktemp("matrix"))
