"""Prompts in the listener's own language: translated into English by a
real (tiny, random) Marian model before CLAP's text tower, once, shown,
cached by the prompt and both models' identities; English prompts and
``--no-translate`` never touch the translation model."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from beets_audiofeatures.clap import translation
from beets_audiofeatures.clap.translation import (
    PromptTranslation,
    TranslationCache,
    needs_translation,
)
from tests import synth
from tests.helpers import ClapHelper
from tests.translation_fixtures import RUSSIAN, session_model

SHOWN = re.compile(r'^searching for "(.+)" \(translated from "(.+)"\)$')


@pytest.fixture(scope="session")
def marian(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Marian model in the layout a hub snapshot has."""
    return session_model(tmp_path_factory, "opus-mt-ru-en")


@pytest.fixture(scope="session")
def other_marian(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model with other weights."""
    return session_model(tmp_path_factory, "opus-mt-ru-en", seed=1)


@pytest.mark.parametrize(
    ("prompt", "translated"),
    [
        (RUSSIAN, True),
        ("атмосферный doom metal", True),  # mixed scripts
        ("静かなピアノ", True),
        ("Ελληνική μουσική", True),
        ("atmospheric doom metal", False),
        ("songs like Björk and Motörhead", False),  # Latin letters
        ("1990s, 120 bpm!", False),
    ],
)
def test_prompts_in_another_script_are_translated(prompt, translated):
    assert needs_translation(prompt) is translated


def test_a_prompt_language_makes_latin_prompts_translated_too():
    assert needs_translation("ruhiges Klavier", "de")
    assert not needs_translation("ruhiges Klavier", "en")
    assert not needs_translation("120-140, 90%", "de")  # no words


def test_a_translation_is_cached_by_the_model_identity(marian, tmp_path):
    cache = TranslationCache(tmp_path)
    first = PromptTranslation(str(marian))
    [english] = first.english(cache, [RUSSIAN])
    assert english
    assert english != RUSSIAN
    again = PromptTranslation(str(marian))
    assert again.english(cache, [RUSSIAN, "calm piano"]) == [
        english,
        "calm piano",
    ]
    assert first.loaded
    assert not again.loaded


def test_a_hub_model_loads_from_the_hub_cache_known_by_revision(
    marian, tmp_path, monkeypatch
):
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--test-org--opus-mt-ru-en"
    for revision in ("a" * 40, "b" * 40):
        shutil.copytree(marian, repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cache = TranslationCache(tmp_path / "translations")
    first = PromptTranslation("test-org/opus-mt-ru-en")
    [english] = first.english(cache, [RUSSIAN])
    assert first.loaded
    assert english != RUSSIAN
    (repo / "refs" / "main").write_text("b" * 40)  # the model was updated
    again = PromptTranslation("test-org/opus-mt-ru-en")
    again.english(cache, [RUSSIAN])
    assert again.loaded  # translated anew, not taken from the cache


def test_a_translation_leaves_torch_its_threads(marian):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        translation.Translator(str(marian)).translate([RUSSIAN])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


class TranslatingLibrary(ClapHelper):
    @pytest.fixture(autouse=True)
    def _embedded(self, _clap: None, marian: Path, tmp_path: Path) -> None:
        self.add_track(self.audio.a120_flac, title="a-flac")
        self.add_track(self.audio.c90_mp3, title="c-mp3")
        self.clap()
        self.marian = tmp_path / "opus-mt-ru-en"
        shutil.copytree(marian, self.marian)
        self.settings_view = self.config["audiofeatures"]["clap"]
        self.settings_view["translate"] = str(self.marian)
        self.logged()

    def shown(self, lines: list[str]) -> dict[str, str]:
        """The prompts shown translated, and their English."""
        return {
            m[2]: m[1] for line in lines if (m := SHOWN.match(line))
        }  # fmt: skip

    def forbid_translator(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def no_model(*args: object) -> None:
            raise AssertionError("the translation model was loaded")

        monkeypatch.setattr(translation.Translator, "__init__", no_model)


class TestClapQuery(TranslatingLibrary):
    def test_a_russian_prompt_is_translated_shown_and_searched(self):
        found = json.loads(self.query(RUSSIAN, "--json"))
        lines = self.logged()
        assert f"loading translation model {self.marian}" in lines
        english = self.shown(lines)[RUSSIAN]
        as_english = json.loads(self.query(english, "--json", "--no-translate"))
        assert [(r["id"], r["score"]) for r in found] == [
            (r["id"], r["score"]) for r in as_english
        ]
        assert list(found[0]["scores"]) == [RUSSIAN]  # labelled as typed

    def test_a_repeated_prompt_loads_neither_model(self, monkeypatch):
        self.query(RUSSIAN)
        english = self.shown(self.logged())[RUSSIAN]
        self.forbid_translator(monkeypatch)
        self.query(RUSSIAN)
        lines = self.logged()
        assert self.shown(lines) == {RUSSIAN: english}  # still shown
        assert not [line for line in lines if line.startswith("loading")]

    def test_an_english_prompt_never_loads_the_translator(self, monkeypatch):
        self.forbid_translator(monkeypatch)
        self.query("atmospheric doom metal", "--not", "calm piano")
        assert not [line for line in self.logged() if "translat" in line]

    def test_no_translate_embeds_the_prompt_as_typed(self, monkeypatch):
        self.forbid_translator(monkeypatch)
        self.query(RUSSIAN, "--no-translate")
        assert not [line for line in self.logged() if "translat" in line]

    def test_every_prompt_and_not_is_translated_in_one_load(self):
        self.query("--text", RUSSIAN, "--text", "грустная скрипка", "--not",
                   "тяжёлые гитары")  # fmt: skip
        lines = self.logged()
        assert set(self.shown(lines)) == {
            RUSSIAN, "грустная скрипка", "тяжёлые гитары",
        }  # fmt: skip
        assert len([line for line in lines if "translation model" in line]) == 1

    def test_a_changed_translation_model_is_noticed(self, other_marian):
        self.query(RUSSIAN)
        self.logged()
        shutil.copy(
            other_marian / "model.safetensors",
            self.marian / "model.safetensors",
        )
        self.query(RUSSIAN)
        assert f"loading translation model {self.marian}" in self.logged()

    def test_the_translator_off_leaves_prompts_as_typed(self, monkeypatch):
        self.forbid_translator(monkeypatch)
        self.settings_view["translate"] = False
        self.query(RUSSIAN)
        assert not [line for line in self.logged() if "translat" in line]

    def test_a_long_prompt_in_mixed_scripts_is_translated(self):
        prompt = ("атмосферный doom metal, 静かな " * 40)[:1000]
        self.query(prompt)
        assert prompt in self.shown(self.logged())


class TestBadTranslation(TranslatingLibrary):
    def test_a_missing_model_is_one_line_naming_prompt_and_setting(self):
        shutil.rmtree(self.marian)
        line = self.fails("clapquery", RUSSIAN)
        assert line.startswith(
            f'audiofeatures.clap: cannot translate "{RUSSIAN}" (translate: '
            f"{self.marian}): the model cannot be loaded ("
        )
        assert line.endswith(
            "fix or turn off audiofeatures.clap.translate, or search with "
            "the prompt as typed (--no-translate, or as_typed=1 on the page)"
        )
        self.query(RUSSIAN, "--no-translate")  # as the line says

    def test_damaged_weights_are_one_line(self):
        (self.marian / "model.safetensors").write_bytes(b"\0" * 100)
        line = self.fails("clapquery", RUSSIAN)
        assert "the model cannot be loaded" in line

    def test_an_empty_translation_is_one_line(self):
        from transformers import MarianMTModel

        model = MarianMTModel.from_pretrained(str(self.marian))
        model.final_logits_bias[0, model.config.eos_token_id] = 1e4
        model.save_pretrained(str(self.marian))  # it says nothing at all
        line = self.fails("clapquery", RUSSIAN)
        assert line.startswith(
            f'audiofeatures.clap: cannot translate "{RUSSIAN}" (translate: '
            f"{self.marian}): its translation is empty; fix or turn off"
        )

    def test_an_english_prompt_works_without_the_model(self):
        shutil.rmtree(self.marian)
        self.query("atmospheric doom metal")

    def test_a_malformed_setting_is_one_line(self):
        self.settings_view["translate"] = 5
        assert self.fails("clapquery", "calm").startswith(
            "audiofeatures.clap.translate is 5: use a translation model"
        )
        self.settings_view["translate"] = False
        self.settings_view["prompt_language"] = "Russian!"
        assert self.fails("clapquery", "calm") == (
            "audiofeatures.clap.prompt_language is 'Russian!': use auto (by "
            "the script) or a language code such as de"
        )


class TestEveryPromptPath(TranslatingLibrary):
    def test_clapradio_text_is_translated_and_shown(self):
        radio = ("clapradio", "--json", "--ranked", "--max-per-artist", "0")
        self.io.getoutput()  # drop the output so far
        self.run_command(*radio, "--text", RUSSIAN)
        found = json.loads(self.io.getoutput())
        steered = [
            m[1]
            for line in self.logged()
            if (m := re.match(r'^steering by "(.+)" \(translated from', line))
        ]
        assert len(steered) == 1
        self.run_command(*radio, "--text", steered[0], "--no-translate")
        assert [r["id"] for r in found] == [
            r["id"] for r in json.loads(self.io.getoutput())
        ]

    def test_saved_playlists_translate_unless_they_say_no(self, tmp_path):
        self.settings_view["playlist_dir"] = str(tmp_path / "lists")
        self.settings_view["playlists"] = {
            "doom": {"prompt": RUSSIAN, "ranked": True},
            "literal": {"prompt": "грустная скрипка", "translate": False},
        }
        self.clap("--playlists")
        lines = self.logged()
        assert [line for line in lines if line.startswith("steering by")] == [
            line for line in lines if RUSSIAN in line
        ]
        assert len([line for line in lines if RUSSIAN in line]) == 1
        assert not [line for line in lines if "грустная" in line]
        assert sorted(p.name for p in (tmp_path / "lists").iterdir()) == [
            "doom.m3u8", "literal.m3u8",
        ]  # fmt: skip

    def test_zero_shot_labels_are_translated(self):
        self.settings_view["tags"] = {
            "mood": {"sad": "грустная музыка", "calm": "calm music"},
        }
        self.unload_plugins()  # the tag fields' types come from the config
        self.load_plugins("audiofeatures")
        self.clap("--tags")
        lines = self.logged()
        assert [line for line in lines if line.startswith("tagging ")] == [
            line for line in lines if "грустная музыка" in line
        ]
        assert not [line for line in lines if "calm music" in line]
        for item in self.lib.items():
            assert item["clap_mood"] in {"sad", "calm"}
            sad, calm = item["clap_mood_sad"], item["clap_mood_calm"]
            assert float(sad) + float(calm) == pytest.approx(1, abs=2e-3)

    def test_zero_shot_labels_stay_as_typed_with_no_translate(
        self, monkeypatch
    ):
        self.settings_view["tags"] = {
            "mood": {"sad": "грустная музыка", "calm": "calm music"},
        }
        self.unload_plugins()
        self.load_plugins("audiofeatures")
        self.forbid_translator(monkeypatch)
        self.clap("--tags", "--no-translate")
        assert not [line for line in self.logged() if "translated" in line]
        for item in self.lib.items():
            assert item["clap_mood"] in {"sad", "calm"}


def test_the_command_line_shows_no_library_noise(tmp_path, audio, clap, marian):
    """A new process's first translation prints the English line and
    nothing of transformers (its "Loading weights" bar on every load)."""
    env, _db = synth.library_of_copies(
        tmp_path, audio.a120_wav, 2,
        f"{{clap: {{model: '{clap.model_dir}', cache_dir: "
        f"'{tmp_path / 'cache'}', jobs: 1, windows: 1, "
        f"translate: '{marian}'}}}}",
    )  # fmt: skip
    subprocess.run([synth.BEET, "clap"], env=env, check=True)
    run = subprocess.run(
        [synth.BEET, "clapquery", RUSSIAN, "-n", "1"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = run.stderr.splitlines()
    assert all(line.startswith("audiofeatures: ") for line in lines), lines
    shown = [line for line in lines if SHOWN.match(line[15:])]
    assert len(shown) == 1, lines
