"""The settings of prompts in other languages than English, part of the
``audiofeatures.clap`` section: ``translate`` (the translation model, or
no) and ``prompt_language`` (which prompts it translates), and the text
model a command's prompts go through."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from beetsplug.audiofeatures.settings.values import Settings

if TYPE_CHECKING:
    from beets.logging import BeetsLogger

    from beets_audiofeatures.clap.model import ModelSpec
    from beets_audiofeatures.clap.prompts import ModelHolder
    from beets_audiofeatures.clap.translation import PromptTranslation


class TranslationSettings(Settings):
    """What ``ClapSettings`` reads of prompts in other languages."""

    @property
    def spec(self) -> ModelSpec:
        """The CLAP model's (``ClapSettings.spec``)."""
        raise NotImplementedError

    @cached_property
    def translate(self) -> str | None:
        """The translation model, or None: off (``no``), or turned off
        for this command by ``--no-translate``."""
        value = self.raw("translate")
        if value is False or value is None or value == "":
            model = None
        elif isinstance(value, str) and value.strip():
            model = value.strip()
        else:
            raise self.bad(
                "translate",
                "a translation model (a hub id such as "
                "Helsinki-NLP/opus-mt-ru-en, or a folder) or no",
            )
        language = self.raw("prompt_language")
        if language != "auto" and not (
            isinstance(language, str)
            and language.isascii()
            and language.isalpha()
            and 2 <= len(language) <= 3
        ):
            raise self.bad(
                "prompt_language",
                "auto (by the script) or a language code such as de",
            )
        return None if self.option("no_translate") else model

    def prompt_translation(
        self,
        announce: Callable[[str], object] | None = None,
        shown: Callable[[str, str], object] | None = None,
    ) -> PromptTranslation | None:
        """How prompts become English, or None when they are embedded as
        typed (``announce`` hears the model load, ``shown`` each
        translated prompt and its English)."""
        if self.translate is None:
            return None
        from beets_audiofeatures.clap.translation import PromptTranslation

        return PromptTranslation(
            self.translate, str(self.raw("prompt_language")).lower(),
            announce, shown,
        )  # fmt: skip

    def text_model(
        self, log: BeetsLogger, verb: str = "searching for"
    ) -> ModelHolder:
        """The CLAP model for a command's prompts, loaded when a prompt
        is not cached; a prompt that needs it is translated first, and
        its English shown in one line (``searching for "calm piano"
        (translated from ...)``), so a bad translation can be seen."""
        from beets_audiofeatures.clap.prompts import ModelHolder

        def announce(line: str) -> None:
            log.info("{}", line)

        def shown(text: str, english: str) -> None:
            log.info('{} "{}" (translated from "{}")', verb, english, text)

        return ModelHolder(
            self.spec, announce, self.prompt_translation(announce, shown)
        )
