"""Tiny real CLAP models, built offline by the tests themselves.

A byte-level BPE tokenizer trained with ``tokenizers`` on a few captions,
a random ``ClapModel`` small enough to run in milliseconds, saved in
``save_pretrained`` layout, and the same kind of model written as an
original LAION-CLAP training checkpoint (``module.``-prefixed LAION
parameter names, fused ``qkv`` matrices, optimizer state).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

CAPTIONS = [
    "dusty jazz piano at night",
    "distorted guitar riffs and pounding drums",
    "a calm ambient pad with soft rain",
    "upbeat electronic dance music with a four on the floor kick",
    "a solo violin playing a slow sad melody",
    "rainy night jazz piano trio with brushed drums",
    "heavy metal with screaming vocals",
    "acoustic folk song with finger picked guitar",
    "a choir singing in a large church",
    "funky bass line with brass stabs",
]
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def make_tokenizer(folder: Path) -> Path:
    """A RoBERTa-style tokenizer (specials at ids 0-4 like roberta-base)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        CAPTIONS * 20, vocab_size=400, min_frequency=1, special_tokens=SPECIALS
    )
    bpe.save_model(str(folder))
    # Loaded from the files, as a user's roberta-base folder would be.
    tokenizer = RobertaTokenizer.from_pretrained(str(folder))
    assert len(tokenizer) > len(SPECIALS), "the fixture tokenizer is empty"
    tokenizer.save_pretrained(str(folder))
    return folder


def tiny_config(
    vocab_size: int,
    fusion: bool = False,
    width: int = 16,
    projection_dim: int = 32,
) -> Any:
    from transformers import ClapConfig

    return ClapConfig(
        audio_config={
            "patch_embeds_hidden_size": width,
            "depths": [1, 1, 2, 1],
            "num_attention_heads": [1, 2, 2, 4],
            "hidden_size": width * 8,
            "enable_fusion": fusion,
        },
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 1,
            "intermediate_size": 96,
        },
        projection_dim=projection_dim,
    )


def make_model(
    folder: Path, tokenizer_dir: Path, seed: int = 0, projection_dim: int = 32
) -> Path:
    """A random ClapModel + processor in ``save_pretrained`` layout
    (vectors of ``projection_dim``; the benchmarks ask for a real
    model's 512)."""
    import torch
    from transformers import (
        AutoTokenizer,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
    )

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(seed)
    model = ClapModel(
        tiny_config(len(tokenizer), projection_dim=projection_dim)
    )
    model.save_pretrained(str(folder))
    features = ClapFeatureExtractor(
        frequency_min=50, frequency_max=14_000, truncation="rand_trunc",
        padding="repeatpad",
    )  # fmt: skip
    ClapProcessor(
        feature_extractor=features, tokenizer=tokenizer
    ).save_pretrained(str(folder))
    return folder


# ClapModel name -> LAION-CLAP name, written out from the LAION sources
# (htsat.py: Swin blocks with norm1/attn.qkv/attn.proj/norm2/mlp.fc1/fc2,
# bn0; model.py: text_branch, *_projection as Sequential(0: Linear,
# 1: ReLU, 2: Linear)).
_TO_LAION = [
    (r"^text_model\.", "text_branch."),
    (r"^(audio|text)_projection\.linear1\.", r"\1_projection.0."),
    (r"^(audio|text)_projection\.linear2\.", r"\1_projection.2."),
]
_TO_LAION_AUDIO = [
    (r"^audio_model\.audio_encoder\.batch_norm\.", "audio_branch.bn0."),
    (r"^audio_model\.audio_encoder\.", "audio_branch."),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"\.attention\.output\.dense\.", ".attn.proj."),
    (r"\.attention\.self\.relative_position", ".attn.relative_position"),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.blocks\.(\d+)\.output\.dense\.", r".blocks.\1.mlp.fc2."),
]


def laion_state_dict(model: Any) -> dict[str, Any]:
    """``model``'s parameters as a LAION-CLAP checkpoint names them."""
    import torch

    hf = model.state_dict()
    out: dict[str, Any] = {}
    for key, tensor in hf.items():
        if key.endswith("token_type_ids"):
            continue
        qkv = re.match(r"(.*\.attention\.self\.)(query)\.(weight|bias)$", key)
        if qkv and key.startswith("audio_model."):
            prefix, _, kind = qkv.groups()
            fused = torch.cat(
                [hf[f"{prefix}{p}.{kind}"] for p in ("query", "key", "value")]
            )
            name = prefix.replace("attention.self.", "attn.qkv.") + kind
            key, tensor = name, fused
        elif re.match(
            r".*\.attention\.self\.(key|value)\.", key
        ) and key.startswith("audio_model."):
            continue
        renames = (
            _TO_LAION_AUDIO if key.startswith("audio_model.") else _TO_LAION
        )
        for pattern, replacement in renames:
            key = re.sub(pattern, replacement, key)
        out[key] = tensor
    # Parts a training checkpoint carries that embeddings do not use.
    width = model.config.audio_config.hidden_size
    out["audio_branch.head.weight"] = torch.zeros(527, width)
    out["audio_branch.tscam_conv.weight"] = torch.zeros(527, width, 2, 3)
    out["audio_transform.sequential.0.weight"] = torch.zeros(4, 4)
    out["text_transform.sequential.3.weight"] = torch.zeros(4, 4)
    return out


def make_laion_checkpoint(
    path: Path, vocab_size: int, fusion: bool = False, seed: int = 1
) -> tuple[Path, Any]:
    """A random model saved the way LAION's training code saves one."""
    import torch
    from transformers import ClapModel

    torch.manual_seed(seed)
    model = ClapModel(tiny_config(vocab_size, fusion=fusion)).eval()
    state = {"module." + k: v for k, v in laion_state_dict(model).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"epoch": 15, "name": path.stem, "state_dict": state,
         "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}},
        path,
    )  # fmt: skip
    return path, model
