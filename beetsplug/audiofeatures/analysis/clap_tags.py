"""``beet clap --tags``: zero-shot labels from the stored vectors,
through the one runner (the executor scores rows of the index)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from beets_audiofeatures.clap.prompts import (
    ModelHolder,
    logit_scale,
    prompt_vectors,
)
from beets_audiofeatures.clap.store import EmbeddingStore
from beets_audiofeatures.clap.zero_shot import LabelSet, Tagger
from beets_audiofeatures.errors import CommandError
from beets_audiofeatures.runner import Tally, count
from beetsplug.audiofeatures.analysis.runner import Runner
from beetsplug.audiofeatures.library_query import item_id, source_key
from beetsplug.audiofeatures.settings.clap import ClapSettings

if TYPE_CHECKING:
    from beets.library import Item, Library
    from beets.logging import BeetsLogger


def require_label_sets(settings: ClapSettings) -> tuple[LabelSet, ...]:
    if not settings.label_sets:
        raise CommandError(
            "no zero-shot tags are configured: add label sets under "
            "audiofeatures.clap.tags (see the docs)"
        )
    return settings.label_sets


@dataclass(frozen=True)
class Row:
    """Where a track's current vector is in the index."""

    number: int


class TagAnalysis:
    """Zero-shot tags for every track with a current vector."""

    verb = "tagged"
    doing = "tagging"
    result = "its tags are"
    again = "the next beet clap --tags tags it again"
    batched = True  # cheap to compute: one commit per chunk of tracks

    def __init__(
        self,
        settings: ClapSettings,
        store: EmbeddingStore,
        model: ModelHolder,
    ) -> None:
        self.sets = require_label_sets(settings)
        self.store = store
        self.model = model
        # No store yet: nothing has a vector (and reading the index of a
        # store that does not exist would create an empty one).
        self.index = store.index() if store.folder.is_dir() else None
        self.method = f"into {', '.join(s.field for s in self.sets)}"

    def needs(self, item: Item) -> Row | None:
        key = source_key(item)
        if self.index is None or key is None:
            return None
        row = self.index.row(item_id(item))
        if row is None or self.index.key_at(row) != key:
            return None  # no vector, or one of other audio
        return Row(row)

    def describe(self, need: Row) -> str:
        return ""

    def task(self, item: Item, need: Row) -> int:
        return need.number

    def executor(self) -> Tagger:
        assert self.index is not None  # a plan with work has an index
        prompts = [
            prompt_vectors(self.store, self.model, s.prompts) for s in self.sets
        ]
        scale = logit_scale(self.store, self.model)
        return Tagger(self.index.matrix, self.sets, prompts, scale)

    def keep(
        self, item: Item, need: Row, values: dict[str, Any], tally: Tally
    ) -> None:
        # A label taken out of a set leaves its probability behind, from
        # a softmax over other labels: it goes, as the set's others are
        # replaced (a set taken out of the settings is left alone).
        prefixes = tuple(f"{s.field}_" for s in self.sets)
        stored = item.keys(computed=False)
        for field in [
            k for k in stored if k.startswith(prefixes) and k not in values
        ]:
            del item[field]
        item.update(values)
        item["clap_tags_model"] = self.store.tag
        item.store()

    def close(self) -> None:
        pass


def tag_items(
    settings: ClapSettings,
    log: BeetsLogger,
    lib: Library,
    ids: Sequence[int],
    store: EmbeddingStore,
    model: ModelHolder,
) -> None:
    """``--tags``: zero-shot labels for every item that has a vector
    (labels in another language read as their English translation)."""
    if model.translation is None:  # the embedding model's, for the tags too
        model.translation = settings.text_model(log, "tagging").translation
    analysis = TagAnalysis(settings, store, model)
    runner = Runner(lib, analysis, log)
    plan = runner.plan_ids(ids)
    if unembedded := plan.skipped:
        log.info(
            "{} of {} {} no vector and {} not tagged",
            unembedded, count(len(ids), "track"),
            "has" if unembedded == 1 else "have",
            "is" if unembedded == 1 else "are",
        )  # fmt: skip
    if not plan:
        return
    tally = Tally()
    runner.run_all(plan, tally)
    log.info(
        "tagged {} with {}",
        count(tally.done, "track"), ", ".join(s.field for s in analysis.sets),
    )  # fmt: skip
