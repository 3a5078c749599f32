"""Tiny real Marian translation models, built offline by the tests.

A SentencePiece vocabulary trained on a few Russian and English music
captions (``source.spm``, ``target.spm``, ``vocab.json``: what
``MarianTokenizer`` reads) and a random ``MarianMTModel`` small enough to
translate in milliseconds, saved in ``save_pretrained`` layout: the
layout a hub snapshot of ``Helsinki-NLP/opus-mt-ru-en`` has. Random
weights translate into garbage: the tests check the path a prompt takes,
not what it comes out as.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

#: A prompt the tests translate.
RUSSIAN = "атмосферный дум-метал"

CAPTIONS = [
    "атмосферный дум-метал",
    "спокойное фортепиано ночью",
    "тяжёлые гитары и барабаны",
    "грустная скрипка",
    "atmospheric doom metal",
    "calm piano at night",
    "heavy guitars and drums",
    "a sad violin",
    "джаз с контрабасом и щётками",
    "jazz with double bass and brushes",
]
#: What opus-mt vocabularies start with (``<pad>`` comes last).
SPECIALS = ["</s>", "<unk>"]


def train_vocabulary(folder: Path, vocab_size: int = 120) -> None:
    """``source.spm`` and ``target.spm`` (one shared model) and the
    ``vocab.json`` mapping its pieces to ids, specials first as in the
    opus-mt models."""
    import sentencepiece

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(CAPTIONS * 5), encoding="utf-8")
    prefix = folder / "spm"
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(prefix), vocab_size=vocab_size,
        model_type="unigram", character_coverage=1.0, pad_id=-1, bos_id=-1,
        eos_id=-1, unk_id=0, hard_vocab_limit=False,
        minloglevel=2,
    )  # fmt: skip
    pieces = sentencepiece.SentencePieceProcessor(model_file=f"{prefix}.model")
    vocab = {name: n for n, name in enumerate(SPECIALS)}
    for n in range(pieces.get_piece_size()):
        vocab.setdefault(pieces.id_to_piece(n), len(vocab))
    vocab["<pad>"] = len(vocab)
    for name in ("source.spm", "target.spm"):
        (folder / name).write_bytes(Path(f"{prefix}.model").read_bytes())
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    for leftover in (corpus, Path(f"{prefix}.model"), Path(f"{prefix}.vocab")):
        leftover.unlink()


def marian_config(vocab_size: int, base: bool = False) -> Any:
    """A tiny Marian, or (``base``) the size of the opus-mt models:
    d_model 512, 6 + 6 layers, 8 heads, feed-forward 2048."""
    from transformers import MarianConfig

    width, layers, heads, ffn = (512, 6, 8, 2048) if base else (16, 1, 2, 32)
    return MarianConfig(
        vocab_size=vocab_size, d_model=width, encoder_layers=layers,
        decoder_layers=layers, encoder_attention_heads=heads,
        decoder_attention_heads=heads, encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn, max_position_embeddings=512,
        pad_token_id=vocab_size - 1, eos_token_id=0,
        decoder_start_token_id=vocab_size - 1,
    )  # fmt: skip


def opus_generation(vocab_size: int) -> Any:
    """How the opus-mt models generate (their generation_config.json):
    a beam of four, never the padding."""
    from transformers import GenerationConfig

    return GenerationConfig(
        num_beams=4, max_length=512, bad_words_ids=[[vocab_size - 1]],
        pad_token_id=vocab_size - 1, eos_token_id=0,
        decoder_start_token_id=vocab_size - 1,
    )  # fmt: skip


def make_translation_model(
    folder: Path, seed: int = 0, base: bool = False, vocab_size: int = 0
) -> Path:
    """A random ``MarianMTModel`` and its tokenizer in ``save_pretrained``
    layout; ``vocab_size`` pads the vocabulary to a real model's (about
    60,000) for the benchmarks."""
    import torch
    from transformers import MarianMTModel, MarianTokenizer

    train_vocabulary(folder)
    if vocab_size:
        vocab = json.loads((folder / "vocab.json").read_text())
        del vocab["<pad>"]
        for n in range(len(vocab), vocab_size - 1):
            vocab[f"▁filler{n}"] = n
        vocab["<pad>"] = len(vocab)
        (folder / "vocab.json").write_text(
            json.dumps(vocab, ensure_ascii=False)
        )
    tokenizer = MarianTokenizer(
        source_spm=str(folder / "source.spm"),
        target_spm=str(folder / "target.spm"),
        vocab=str(folder / "vocab.json"),
        source_lang="ru", target_lang="en",
    )  # fmt: skip
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(seed)
    model = MarianMTModel(marian_config(len(tokenizer.encoder), base))
    model.generation_config = opus_generation(len(tokenizer.encoder))
    model.save_pretrained(str(folder))
    return folder


_BUILT: dict[tuple[str, int], Path] = {}


def session_model(
    factory: pytest.TempPathFactory, name: str, seed: int = 0
) -> Path:
    """A tiny model built once per test session (each test module's
    session fixture asks for it here)."""
    if (name, seed) not in _BUILT:
        _BUILT[name, seed] = make_translation_model(factory.mktemp(name), seed)
    return _BUILT[name, seed]
