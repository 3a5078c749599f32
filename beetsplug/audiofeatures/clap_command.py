"""``beet clap`` and ``beet clapquery``: embed tracks, search by prompt."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import confuse
import numpy as np
from beets import config as beets_config
from beets import ui
from beets.exceptions import UserError
from beets.util import displayable_path
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .batch import Failure, Tally, progress_bar
from .clap_audio import DecodeError, WindowPolicy, embed_tracks, require_ffmpeg
from .clap_model import (
    ClapEmbedder,
    ModelError,
    ModelSpec,
    model_identity,
    model_tag,
)
from .embedding_store import EmbeddingStore, atomic_save, stores
from .essentia_command import dump_path
from .fields import PROBABILITY, STRING
from .library_query import (
    CHUNK,
    each_item,
    item_chunks,
    item_id,
    matching_ids,
    split_ids,
)
from .search import Ranking, rank, unit
from .zero_shot import (
    DEFAULT_TEMPLATE,
    LabelSet,
    LabelSetError,
    parse_label_sets,
    probabilities,
    tag_values,
)

if TYPE_CHECKING:
    from beets.library import Item, Library

PIPELINE_VERSION = 1

DEFAULTS: dict[str, Any] = {
    "auto": False,
    "model": ModelSpec.model,
    "tokenizer": ModelSpec.tokenizer,
    "amodel": ModelSpec.amodel,
    "fusion": None,
    "trust_checkpoint": False,
    "device": "auto",
    "threads": 0,  # 0: torch's default, one per core
    "interop_threads": 1,
    "windows": 3,
    "batch_size": 9,  # three tracks of three windows
    "jobs": 2,
    "cache_dir": None,  # default: <beets config dir>/audiofeatures/clap
    "force": False,
    "limit": 20,
    # Zero-shot tags for `beet clap --tags`: name -> labels (heard as
    # the prompt template) or name -> {label: prompt}.
    "tags": {},
    "tag_prompt": DEFAULT_TEMPLATE,
}


class ClapOptions(Protocol):
    force: bool | None
    pretend: bool
    jobs: int | None
    dump: str | None
    stats: bool
    prune: bool
    tags: bool


@dataclass(frozen=True)
class ClapSettings:
    spec: ModelSpec
    policy: WindowPolicy
    cache_dir: Path
    jobs: int
    batch_size: int
    force: bool
    limit: int
    dump: Path | None
    label_sets: tuple[LabelSet, ...]

    @classmethod
    def from_config(
        cls, view: confuse.ConfigView, opts: Any = None
    ) -> ClapSettings:
        """Validated settings, CLI options first; one-line errors."""

        def opt(name: str) -> Any:
            return getattr(opts, name, None)

        def count(name: str, least: int) -> int:
            value = opt(name)
            if value is None:
                value = view[name].get(int)
            if value < least:
                raise UserError(
                    f"audiofeatures.clap.{name} must be {least} or more, "
                    f"not {value}"
                )
            return int(value)

        try:
            threads = count("threads", 0)
            spec = ModelSpec(
                model=view["model"].as_str().strip(),
                tokenizer=view["tokenizer"].as_str(),
                amodel=view["amodel"].as_choice(
                    ["auto", "HTSAT-tiny", "HTSAT-base", "HTSAT-large"]
                ),
                fusion=view["fusion"].get(confuse.Optional(bool)),
                trust_checkpoint=view["trust_checkpoint"].get(bool),
                device=view["device"].as_choice(["auto", "cpu", "cuda", "mps"]),
                threads=threads or (os.cpu_count() or 1),
                interop_threads=count("interop_threads", 1),
            )
            settings = cls(
                spec=spec,
                policy=WindowPolicy(count=count("windows", 1)),
                cache_dir=cache_dir(view),
                jobs=count("jobs", 1),
                batch_size=count("batch_size", 1),
                force=bool(opt("force") or view["force"].get(bool)),
                limit=count("limit", 1),
                dump=Path(opt("dump")).expanduser().resolve()
                if opt("dump")
                else None,
                label_sets=tuple(label_sets(view)),
            )
        except confuse.ConfigError as exc:
            raise UserError(f"audiofeatures.clap: {exc}") from exc
        if not spec.model:
            raise UserError("audiofeatures.clap.model is empty")
        return settings

    def identity(self) -> dict[str, Any]:
        pipeline = {
            "version": PIPELINE_VERSION,
            "seconds": 10,
            **self.policy.describe(),
        }
        try:
            return model_identity(self.spec, pipeline)
        except ModelError as exc:
            raise UserError(f"audiofeatures.clap: {exc}") from exc

    def store(self) -> EmbeddingStore:
        identity = self.identity()
        return EmbeddingStore(self.cache_dir, model_tag(identity))


def label_sets(view: confuse.ConfigView) -> list[LabelSet]:
    """The configured zero-shot label sets; one-line errors."""
    try:
        return parse_label_sets(
            view["tags"].get(dict), view["tag_prompt"].as_str()
        )
    except (LabelSetError, IndexError, KeyError) as exc:
        raise UserError(f"audiofeatures.clap.{exc}") from exc


def tag_field_types(view: confuse.ConfigView) -> dict[str, Any]:
    """Types of the configured zero-shot fields (none while the setting
    is malformed: ``beet clap`` reports that)."""
    try:
        sets = label_sets(view)
    except UserError:
        return {}
    types: dict[str, Any] = {"clap_tags_model": STRING}
    for label_set in sets:
        types[label_set.field] = STRING
        for label in label_set.labels:
            types[label_set.label_field(label)] = PROBABILITY
    return types


def cache_dir(view: confuse.ConfigView) -> Path:
    """Where the stores live (``cache_dir``, or beets' config folder)."""
    configured = view["cache_dir"].get(confuse.Optional(confuse.Filename()))
    if configured:
        return Path(configured)
    return Path(beets_config.config_dir()) / "audiofeatures" / "clap"


class ModelHolder:
    """Loads the model the first time it is needed, once."""

    def __init__(self, spec: ModelSpec, log: Any) -> None:
        self.spec = spec
        self.log = log
        self._embedder: ClapEmbedder | None = None

    def get(self) -> ClapEmbedder:
        if self._embedder is None:
            self.log.info("loading CLAP model {}", self.spec.model)
            try:
                self._embedder = ClapEmbedder(self.spec)
            except ModelError as exc:
                raise UserError(f"audiofeatures.clap: {exc}") from exc
        return self._embedder


def needs_embedding(item: Item, store: EmbeddingStore, force: bool) -> bool:
    return (
        force
        or item.get("clap_model") != store.tag
        or not store.has(item_id(item))
    )


def plan(
    items: Iterable[Item], store: EmbeddingStore, force: bool
) -> tuple[list[Item], Tally]:
    items = list(items)
    todo = [item for item in items if needs_embedding(item, store, force)]
    return todo, Tally(skipped=len(items) - len(todo))


class ClapRunner:
    """Embeds items and stores each vector as soon as it is computed."""

    def __init__(self, settings: ClapSettings, log: Any) -> None:
        self.settings = settings
        self.log = log
        try:
            self.store = settings.store().open(settings.identity())
        except OSError as exc:
            raise UserError(
                f"cannot create the CLAP cache in {settings.cache_dir}: "
                f"{exc.strerror or exc}"
            ) from exc
        self.model = ModelHolder(settings.spec, log)

    def run(
        self,
        lib: Library,
        items: Sequence[Item],
        tally: Tally,
        bar: tqdm | None = None,
        fold_index: bool = True,
    ) -> None:
        """Embed ``items``; failures are logged and added to ``tally``.

        ``fold_index`` rewrites the search index at the end; the import
        stage leaves that to the end of the import (the journal keeps the
        index correct meanwhile)."""
        if not items:
            return
        try:
            require_ffmpeg()
        except DecodeError as exc:
            raise UserError(f"audiofeatures: {exc}") from exc
        embedder = self.model.get()
        by_id = {item.id: item for item in items}
        tracks = [
            (
                item.id,
                os.fsdecode(os.path.abspath(item.path)),
                float(item.length or 0),
            )
            for item in items
        ]
        bar = bar or progress_bar(len(items), shown=False)
        try:
            with logging_redirect_tqdm([logging.getLogger("beets")]):
                for key, result in embed_tracks(
                    tracks,
                    embedder.embed_clips,
                    self.settings.policy,
                    decoders=self.settings.jobs,
                    batch_clips=self.settings.batch_size,
                ):
                    item = by_id[key]
                    if isinstance(result, Failure):
                        shown = displayable_path(item.path)
                        tally.failed.append((shown, result.reason))
                        self.log.error("{}: {}", shown, result.reason)
                    else:
                        self.keep(lib, item, result)
                        tally.done += 1
                    bar.update()
        finally:
            if fold_index:
                self.fold_index()

    def fold_index(self) -> None:
        """Bring the search index up to date; if that cannot be written
        now, the journal keeps it correct for the next reader."""
        try:
            self.store.index()
        except OSError as exc:
            self.log.warning(
                "the CLAP index could not be updated now ({}); the next "
                "query will", exc.strerror or exc,
            )  # fmt: skip

    def dump(self, lib: Library, item: Item, vector: np.ndarray) -> None:
        if self.settings.dump is None:
            return
        target = dump_path(item, lib, self.settings.dump, ".npy")
        atomic_save(Path(os.fsdecode(target)), vector)

    def keep(self, lib: Library, item: Item, vector: np.ndarray) -> None:
        try:
            self.store.put(item_id(item), vector)
        except OSError as exc:  # a full disk, a read-only cache: stop
            raise UserError(
                f"cannot write to the CLAP cache {self.store.folder}: "
                f"{exc.strerror or exc}; the tracks embedded so far are kept"
            ) from exc
        if self.settings.dump:
            self.dump(lib, item, vector)
        item["clap_model"] = self.store.tag
        item["clap_embedded"] = time.time()
        item.store()


def run_clap(
    view: confuse.ConfigView,
    log: Any,
    lib: Library,
    opts: ClapOptions,
    args: list[str],
) -> None:
    settings = ClapSettings.from_config(view, opts)
    if opts.stats or opts.prune:
        report_store(settings, lib, log, prune=opts.prune)
        return
    ids = matching_ids(lib, args)
    store = settings.store()
    # Items are loaded a chunk at a time: memory does not grow with
    # the size of the query.
    todo, skipped = split_ids(
        lib, ids, lambda item: needs_embedding(item, store, settings.force)
    )
    tally = Tally(skipped=skipped)
    if opts.pretend:
        log.info(
            "would embed {} of {} tracks with {} ({} windows each)",
            len(todo), len(ids), settings.spec.model, settings.policy.count,
        )  # fmt: skip
        for item in each_item(lib, todo):
            ui.print_(f"embed: {item}")
        return
    log.info(
        "embedding {} tracks with {} ({} already embedded)",
        len(todo), settings.spec.model, tally.skipped,
    )  # fmt: skip
    runner = ClapRunner(settings, log)
    if settings.dump:  # what is already embedded is dumped from the store
        waiting = set(todo)
        done = [number for number in ids if number not in waiting]
        for item in each_item(lib, done):
            if (vector := store.get(item_id(item))) is not None:
                runner.dump(lib, item, vector)
    try:
        with progress_bar(len(todo)) as bar:
            for chunk in item_chunks(lib, todo):
                runner.run(lib, chunk, tally, bar, fold_index=False)
    finally:
        runner.fold_index()
    log.info("{}", tally.summary("embedded"))
    if opts.tags:
        tag_items(settings, log, lib, ids, runner.store, runner.model)
    if tally.failed:
        raise UserError(
            f"{len(tally.failed)} of {len(todo)} tracks could not be "
            "embedded; the reasons are above"
        )


def report_store(
    settings: ClapSettings, lib: Library, log: Any, prune: bool
) -> None:
    """``--stats`` / ``--prune``: how the cache matches the library.

    embedded: a current vector; stale: embedded by another model or
    audio pipeline; missing: never embedded (or its vector is gone);
    orphaned: a vector whose track left the library.
    """
    current = settings.store()
    with lib.transaction() as tx:
        ids = {row[0] for row in tx.query("SELECT id FROM items")}
        tags: dict[int, str] = {
            row[0]: row[1]
            for row in tx.query(
                "SELECT entity_id, value FROM item_attributes "
                "WHERE key = 'clap_model'"
            )
        }
    on_disk = set(current.disk_ids().tolist())
    embedded = {i for i in ids if tags.get(i) == current.tag and i in on_disk}
    stale = {i for i in ids if tags.get(i) not in (None, current.tag)}
    missing = ids - embedded - stale
    lines = [
        f"model {settings.spec.model} (store {current.tag}):",
        (
            f"  embedded {len(embedded)}, missing {len(missing)}, "
            f"stale {len(stale)}, orphaned {len(on_disk - ids)}"
        ),
    ]
    for store in stores(settings.cache_dir):
        orphans = sorted(set(store.disk_ids().tolist()) - ids)
        if store.tag != current.tag:
            count = len(store.disk_ids())
            lines.append(
                f"  other store {store.tag}: {count} vectors, {len(orphans)} orphaned"
            )
        if prune and orphans:
            removed = store.discard(orphans)
            store.index()
            lines.append(
                f"  pruned {removed} orphaned vectors from {store.tag}"
            )
    if current.folder.is_dir():
        index = current.index()
        if set(index.ids.tolist()) != set(current.disk_ids().tolist()):
            index = current.rebuild()  # vector files changed behind its back
        lines.append(f"  index: {len(index)} vectors")
    for line in lines:
        ui.print_(line)


def forget_item(cache_dir: Path, item: Item) -> None:
    """An item left the library: its vectors leave every store."""
    for store in stores(cache_dir):
        store.discard([item_id(item)])


# -- clapquery ----------------------------------------------------------------


def prompt_vectors(
    store: EmbeddingStore, model: ModelHolder, prompts: Sequence[str]
) -> np.ndarray:
    """Text vectors, from the cache where possible: a repeated query never
    loads the model."""
    vectors: dict[str, np.ndarray] = {}
    for text in prompts:
        if (vector := store.get_prompt(text)) is not None:
            vectors[text] = vector
    missing = [text for text in prompts if text not in vectors]
    if missing:
        for text, vector in zip(
            missing, model.get().embed_texts(missing), strict=True
        ):
            store.put_prompt(text, vector)
            vectors[text] = vector
    return np.stack([vectors[text] for text in prompts]).astype(np.float32)


def query_items(lib: Library, query: Sequence[str], album: bool) -> list[Item]:
    if album:
        return [item for a in lib.albums(list(query)) for item in a.items()]
    return list(lib.items(list(query)))


def logit_scale(store: EmbeddingStore, model: ModelHolder) -> float:
    """The model's logit scale, remembered beside its vectors."""
    if (scale := store.get_logit_scale()) is None:
        scale = model.get().logit_scale
        store.put_logit_scale(scale)
    return scale


def tag_items(
    settings: ClapSettings,
    log: Any,
    lib: Library,
    ids: Sequence[int],
    store: EmbeddingStore,
    model: ModelHolder,
) -> None:
    """``--tags``: zero-shot labels for every item that has a vector."""
    sets = settings.label_sets
    if not sets:
        raise UserError(
            "no zero-shot tags are configured: add label sets under "
            "audiofeatures.clap.tags (see the docs)"
        )
    index = store.index()
    rows = index.positions(np.array(ids, np.int64))
    if len(rows) < len(ids):
        log.info(
            "{} of {} tracks have no vector and are not tagged",
            len(ids) - len(rows), len(ids),
        )  # fmt: skip
    if not len(rows):
        return
    scale = logit_scale(store, model)
    prompts = [prompt_vectors(store, model, s.prompts) for s in sets]
    tagged = index.ids[rows]
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        vectors = np.asarray(index.matrix[part])
        values: list[dict[str, Any]] = [{} for _ in part]
        for label_set, prompt in zip(sets, prompts, strict=True):
            for row, probs in enumerate(probabilities(vectors, prompt, scale)):
                values[row].update(tag_values(label_set, probs))
        fields_of = dict(zip(index.ids[part].tolist(), values, strict=True))
        with lib.transaction():
            for chunk in item_chunks(lib, list(fields_of)):
                for item in chunk:
                    item.update(fields_of[item_id(item)])
                    item["clap_tags_model"] = store.tag
                    item.store()
    log.info(
        "tagged {} tracks with {}",
        len(tagged), ", ".join(s.field for s in sets),
    )  # fmt: skip


def run_clapquery(
    view: confuse.ConfigView, log: Any, lib: Library, opts: Any, args: list[str]
) -> None:
    settings = ClapSettings.from_config(view, opts)
    args = list(args)
    prompts = list(opts.text or [])
    if not prompts and not opts.like and args:
        prompts.append(args.pop(0))
    if not prompts and not opts.like:
        raise UserError("clapquery needs a PROMPT (or --text / --like)")
    store = settings.store()
    if not store.folder.is_dir():
        raise UserError(
            f"no CLAP vectors for {settings.spec.model} yet: run beet clap first"
        )
    index = store.index()
    if not len(index):
        raise UserError(
            f"no tracks are embedded with {settings.spec.model}: run beet clap first"
        )
    model = ModelHolder(settings.spec, log)
    targets = [prompt_vectors(store, model, prompts)] if prompts else []
    exclude = None
    if opts.like:
        seeds = [item_id(item) for item in lib.items(opts.like)]
        exclude = index.positions(seeds)
        if not len(exclude):
            raise UserError(f"no embedded tracks match --like {opts.like}")
        seed = np.asarray(index.matrix[exclude]).mean(axis=0)
        targets.append(unit(seed)[None])
    avoid = (
        prompt_vectors(store, model, opts.negative) if opts.negative else None
    )
    rows = None
    if args:
        matching = [item_id(i) for i in query_items(lib, args, opts.album)]
        rows = index.positions(np.array(matching, np.int64))
        if unembedded := len(matching) - len(rows):
            log.info(
                "{} of the {} matching tracks have no vector yet (beet clap)",
                unembedded, len(matching),
            )  # fmt: skip
    labels = prompts + ([f"like {opts.like}"] if opts.like else [])
    limit = opts.limit or settings.limit

    def ranked(candidates: int | None) -> Ranking:
        return rank(
            index, np.concatenate(targets), avoid=avoid, rows=rows,
            exclude=exclude, limit=candidates, min_score=opts.min_score,
        )  # fmt: skip

    if opts.album:  # albums need every track's score
        show_albums(lib, ranked(None), labels, limit, opts)
        return
    # Some of the best vectors may belong to tracks that are gone: ask
    # for spares, and for everything if the spares run out.
    candidates = limit * 2 + 50
    found = _results(lib, store, ranked(candidates), limit)
    if len(found) < limit and candidates < len(index):
        found = _results(lib, store, ranked(None), limit)
    show_items(found, labels, opts)


def _results(
    lib: Library, store: EmbeddingStore, ranking: Ranking, limit: int
) -> list[tuple[Item, float, list[float]]]:
    found = []
    for number, score, scores in zip(
        ranking.ids, ranking.scores, ranking.per_prompt, strict=False
    ):
        item = lib.get_item(int(number))
        # A vector whose item is gone, or whose id beets gave to a new
        # track, is not a result.
        if item is None or item.get("clap_model") != store.tag:
            continue
        found.append((item, float(score), [float(s) for s in scores]))
        if len(found) == limit:
            break
    return found


def show_items(
    found: list[tuple[Item, float, list[float]]],
    labels: list[str],
    opts: Any,
) -> None:
    if opts.json:
        ui.print_(json.dumps([
            {
                "id": item.id,
                "path": displayable_path(item.path),
                "artist": item.artist,
                "album": item.album,
                "title": item.title,
                "score": round(score, 4),
                "scores": dict(zip(labels, (round(s, 4) for s in scores), strict=False)),
            }
            for item, score, scores in found
        ], indent=2, ensure_ascii=False))  # fmt: skip
    else:
        for item, score, scores in found:
            item["clap_score"] = score
            if opts.format:
                ui.print_(format(item, opts.format))
            else:
                detail = (
                    f" ({' '.join(f'{s:.3f}' for s in scores)})"
                    if len(scores) > 1
                    else ""
                )
                ui.print_(f"{score:.3f}{detail}  {item}")
    if opts.m3u:
        write_m3u(Path(opts.m3u), [item for item, _, _ in found])


def show_albums(
    lib: Library, ranking: Ranking, labels: list[str], limit: int, opts: Any
) -> None:
    with lib.transaction() as tx:
        album_of: dict[int, int] = {
            row[0]: row[1]
            for row in tx.query(
                "SELECT id, album_id FROM items WHERE album_id IS NOT NULL"
            )
        }
    scores: dict[int, list[float]] = defaultdict(list)
    for number, score in zip(
        ranking.ids.tolist(), ranking.scores.tolist(), strict=False
    ):
        if number in album_of:
            scores[album_of[number]].append(score)
    best = sorted(scores, key=lambda a: -float(np.mean(scores[a])))[:limit]
    albums = [(lib.get_album(a), float(np.mean(scores[a]))) for a in best]
    found = [(album, score) for album, score in albums if album is not None]
    if opts.json:
        ui.print_(json.dumps([
            {"id": album.id, "albumartist": album.albumartist,
             "album": album.album, "score": round(score, 4),
             "tracks": len(scores[item_id(album)])}
            for album, score in found
        ], indent=2, ensure_ascii=False))  # fmt: skip
    else:
        for album, score in found:
            album["clap_score"] = score
            ui.print_(
                format(album, opts.format)
                if opts.format
                else f"{score:.3f}  {album}"
            )
    if opts.m3u:
        write_m3u(
            Path(opts.m3u),
            [item for album, _ in found for item in album.items()],
        )


def write_m3u(path: Path, items: Sequence[Item]) -> None:
    lines = ["#EXTM3U"]
    for item in items:
        lines.append(
            f"#EXTINF:{round(item.length or 0)},{item.artist} - {item.title}"
        )
        lines.append(os.fsdecode(os.path.abspath(item.path)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        "\n".join(lines) + "\n", encoding="utf-8", errors="surrogateescape"
    )
    os.replace(tmp, path)
