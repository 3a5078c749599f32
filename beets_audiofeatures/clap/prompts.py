"""The CLAP model, loaded once and only when needed, and prompt vectors
from the prompt cache (a repeated query never loads the model). No
beets here: the adapter hands in how a load is announced."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from beets_audiofeatures.clap.embedder import ClapEmbedder
from beets_audiofeatures.clap.identity import tokenizer_identity
from beets_audiofeatures.clap.model import ModelSpec
from beets_audiofeatures.clap.store import EmbeddingStore
from beets_audiofeatures.clap.translation import (
    PromptTranslation,
    TranslationCache,
)


class ModelHolder:
    """Loads the model the first time it is needed, once; ``announce``
    hears one line (``loading CLAP model ...``) when it does. Prompts go
    through ``translation`` first, when there is one."""

    def __init__(
        self,
        spec: ModelSpec,
        announce: Callable[[str], object] | None = None,
        translation: PromptTranslation | None = None,
    ) -> None:
        self.spec = spec
        self.announce = announce
        self.translation = translation
        self._embedder: ClapEmbedder | None = None

    def get(self) -> ClapEmbedder:
        if self._embedder is None:
            if self.announce is not None:
                self.announce(f"loading CLAP model {self.spec.model}")
            self._embedder = ClapEmbedder(self.spec)
        return self._embedder

    @functools.cached_property
    def tokenizer(self) -> str:
        """What makes the prompts' tokens, for the prompt cache's keys."""
        return tokenizer_identity(self.spec)

    def english(
        self, store: EmbeddingStore, prompts: Sequence[str]
    ) -> list[str]:
        """The prompts as the text tower is to read them: translated
        where they need it (cached in the store, beside the vectors)."""
        if self.translation is None:
            return list(prompts)
        cache = TranslationCache(store.folder / "translations")
        return self.translation.english(cache, prompts)


def prompt_vectors(
    store: EmbeddingStore,
    model: ModelHolder,
    prompts: Sequence[str],
    as_typed: bool = False,
) -> np.ndarray:
    """Text vectors, from the cache where possible; a prompt that needs
    translating is embedded as its English (``ModelHolder.english``),
    unless asked for ``as_typed``."""
    prompts = list(prompts) if as_typed else model.english(store, prompts)
    vectors: dict[str, np.ndarray] = {}
    tokenizer = model.tokenizer
    for text in prompts:
        if (vector := store.get_prompt(text, tokenizer)) is not None:
            vectors[text] = vector
    missing = list(dict.fromkeys(t for t in prompts if t not in vectors))
    if missing:
        for text, vector in zip(
            missing, model.get().embed_texts(missing), strict=True
        ):
            store.put_prompt(text, vector, tokenizer)
            vectors[text] = vector
    return np.stack([vectors[text] for text in prompts]).astype(np.float32)


def logit_scale(store: EmbeddingStore, model: ModelHolder) -> float:
    """The model's logit scale, remembered beside its vectors."""
    if (scale := store.get_logit_scale()) is None:
        scale = model.get().logit_scale
        store.put_logit_scale(scale)
    return scale
