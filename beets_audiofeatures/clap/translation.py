"""Prompts in the listener's own language: which need translating, the
translation model that turns them into English before CLAP's text tower
(a Marian model through ``transformers``, on the CPU), and the cache of
what each prompt became.

CLAP's text tower learnt English captions only: a Russian prompt is byte
pieces it never saw. A prompt in another script is translated first, by
the model ``audiofeatures.clap.translate`` names (a hub id such as
``Helsinki-NLP/opus-mt-ru-en``, downloaded once like the CLAP model, or
a ``save_pretrained`` folder). Which prompts need it is told by their
letters (``needs_translation``): a rule, not a statistical detector,
because music prompts are short and full of borrowed words (``doom
metal``, ``lo-fi``) that detectors misread, and an English prompt must
never pay for the translation model. The English text is cached by the
prompt and the translation model's identity, and the prompt vector by
the English text in the CLAP model's store, so a repeated prompt loads
neither model. No beets here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..atomic_files import atomic_write
from ..errors import SetupError
from .digests import WeightDigests, default_digest_cache
from .hub import from_pretrained, hub_revision, not_a_hub_id
from .model import first_line

#: ``prompt_language``'s default: tell the language by the letters.
BY_SCRIPT = "auto"
#: The files of a model folder its translations depend on.
MODEL_FILES = (
    "config.json", "generation_config.json", "source.spm", "target.spm",
    "vocab.json", "tokenizer_config.json", "tokenizer.json",
    "sentencepiece.bpe.model", "spiece.model",
)  # fmt: skip
#: The most tokens a translation may have beyond its prompt's length
#: (random or broken weights never stop on their own).
MOST_EXTRA_TOKENS = 16
#: The translations a long-running page keeps to show.
MOST_REMEMBERED = 1000
#: Marian's longest input, in tokens.
MOST_INPUT_TOKENS = 512


class TranslationError(SetupError):
    """A prompt cannot be translated; the message names the prompt, the
    setting and the way on."""

    section = "clap"


def needs_translation(text: str, language: str = BY_SCRIPT) -> bool:
    """Whether ``text`` is to be translated. By script (``auto``): a
    prompt with a letter of a script other than Latin (Cyrillic, Greek,
    CJK, Arabic, ...), mixed or not. With a ``prompt_language`` other
    than English, Latin letters are that language's too, so every prompt
    with a letter is."""
    if language not in (BY_SCRIPT, "en"):
        return any(ch.isalpha() for ch in text)
    return any(ch.isalpha() and not _latin(ch) for ch in text)


@functools.lru_cache(maxsize=4096)
def _latin(letter: str) -> bool:
    return unicodedata.name(letter, "").startswith("LATIN")


def translation_identity(model: str, digests: Path | None = None) -> str:
    """What the translations depend on, as a short digest: a folder's
    weights and tokenizer files (their SHA-256, remembered by size and
    date as the CLAP weights' are), or a hub id and the revision the
    local hub cache holds ("" as the revision when it cannot tell yet)."""
    folder = Path(model).expanduser()
    parts: list[Any]
    if folder.is_dir():
        known = WeightDigests(digests or default_digest_cache())
        files = [folder / name for name in MODEL_FILES]
        files += sorted(folder.glob("*.safetensors")) or sorted(
            folder.glob("*.bin")
        )
        parts = [(f.name, known.digest(f)) for f in files if f.is_file()]
        known.save()
    else:
        parts = [model, hub_revision(model) or ""]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


class Translator:
    """A loaded translation model and its tokenizer."""

    def __init__(self, model: str) -> None:
        self.name = model
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        if (problem := not_a_hub_id(model)) is not None:
            raise TranslationError(f"the model cannot be loaded ({problem})")
        try:
            self.tokenizer = from_pretrained(AutoTokenizer, model)
            self.model = from_pretrained(AutoModelForSeq2SeqLM, model)
        except Exception as exc:  # safetensors, sentencepiece, torch
            raise TranslationError(
                f"the model cannot be loaded ({first_line(exc)})"
            ) from exc
        self.model.eval()

    def translate(self, texts: Sequence[str]) -> list[str]:
        """The English of each text, in one batch."""
        import torch

        batch = self.tokenizer(
            list(texts), return_tensors="pt", padding=True, truncation=True,
            max_length=MOST_INPUT_TOKENS,
        )  # fmt: skip
        longest = int(batch["input_ids"].shape[1])
        # One thread: a prompt is a few tokens of small products, where
        # waking a second thread costs more than it gives (8 tokens took
        # 0.21 s on one thread, 0.7-2.8 s on two, on 2 shared cores).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                # Greedy, not the opus-mt beam of four: a prompt is a few
                # words, and each beam costs as much as the whole search.
                tokens = self.model.generate(
                    **batch, num_beams=1,
                    max_length=min(
                        MOST_INPUT_TOKENS, longest * 2 + MOST_EXTRA_TOKENS
                    ),
                )  # fmt: skip
        finally:
            torch.set_num_threads(threads)
        return [
            " ".join(text.split())
            for text in self.tokenizer.batch_decode(
                tokens, skip_special_tokens=True
            )
        ]


class TranslationCache:
    """What each prompt became, one small JSON file per prompt and
    translation model identity, under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, text: str, identity: str) -> Path:
        digest = hashlib.sha256(f"{identity}\0{text}".encode()).hexdigest()
        return self.folder / f"{digest[:32]}.json"

    def get(self, text: str, identity: str) -> str | None:
        try:
            entry = json.loads(self.path(text, identity).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("text") != text:
            return None
        english = entry.get("english")
        return english if isinstance(english, str) and english else None

    def put(self, text: str, identity: str, english: str) -> None:
        """Remember a translation, if the cache can be written (a
        read-only cache costs a translation next time)."""
        entry = {"text": text, "english": english}
        with (
            contextlib.suppress(OSError),
            atomic_write(self.path(text, identity), "w") as out,
        ):
            out.write(json.dumps(entry, ensure_ascii=False))


class PromptTranslation:
    """How prompts become English for one command or page: the
    translation model (``model``, loaded the first time a prompt that is
    not cached needs it, once), ``language`` (``prompt_language``), and
    ``shown``, which hears each prompt that was translated and its
    English. ``translated`` keeps them, for the page."""

    def __init__(
        self,
        model: str,
        language: str = BY_SCRIPT,
        announce: Callable[[str], object] | None = None,
        shown: Callable[[str, str], object] | None = None,
    ) -> None:
        self.model = model
        self.language = language
        self.announce = announce
        self.shown = shown
        self.translated: dict[str, str] = {}
        self._translator: Translator | None = None
        self._identity: str | None = None

    @property
    def loaded(self) -> bool:
        """Whether the translation model was loaded."""
        return self._translator is not None

    def identity(self) -> str:
        """``translation_identity``, kept once it is known for good (a
        hub model's revision may first appear with its download)."""
        if self._identity is None:
            identity = translation_identity(self.model)
            folder = Path(self.model).expanduser()
            if self._translator is None and not folder.is_dir():
                return identity
            self._identity = identity
        return self._identity

    def translator(self, prompt: str) -> Translator:
        if self._translator is None:
            if self.announce is not None:
                self.announce(f"loading translation model {self.model}")
            try:
                self._translator = Translator(self.model)
            except TranslationError as exc:
                raise self.failure(prompt, str(exc)) from exc
        return self._translator

    def failure(self, prompt: str, reason: str) -> TranslationError:
        """The one line for a prompt that cannot be translated."""
        shown = prompt if len(prompt) <= 60 else prompt[:57] + "..."
        return TranslationError(
            f'cannot translate "{shown}" (translate: {self.model}): '
            f"{reason}; fix or turn off audiofeatures.clap.translate, or "
            "search with the prompt as typed (--no-translate, or as_typed=1 on the page)"
        )

    def english(
        self, cache: TranslationCache, prompts: Sequence[str]
    ) -> list[str]:
        """Each prompt as CLAP is to read it: English prompts as typed,
        the others translated (from the cache where possible)."""
        found: dict[str, str] = {}
        pending = []
        for text in dict.fromkeys(prompts):
            if not needs_translation(text, self.language):
                continue
            if (english := cache.get(text, self.identity())) is not None:
                found[text] = english
            else:
                pending.append(text)
        if pending:
            translator = self.translator(pending[0])
            try:
                translated = translator.translate(pending)
            except Exception as exc:  # torch, sentencepiece: one line
                raise self.failure(pending[0], first_line(exc)) from exc
            identity = self.identity()
            for text, english in zip(pending, translated, strict=True):
                if not english:
                    raise self.failure(text, "its translation is empty")
                cache.put(text, identity, english)
                found[text] = english
        if len(self.translated) > MOST_REMEMBERED:  # a page runs for months
            self.translated.clear()
        for text, english in found.items():
            if text not in self.translated and self.shown is not None:
                self.shown(text, english)
            self.translated[text] = english
        return [found.get(text, text) for text in prompts]
