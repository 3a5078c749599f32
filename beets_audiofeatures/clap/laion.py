"""Original LAION-CLAP ``.pt`` checkpoints: where they are, how they
are read safely, and how their parameters become ``ClapModel``'s (the
architecture is read off the tensor shapes, so any size loads)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .model import ModelError, first_line

if TYPE_CHECKING:
    import torch

LAION_DOWNLOAD = "https://huggingface.co/lukewys/laion_clap/resolve/main/"
#: Released LAION-CLAP checkpoints: audio tower and whether it is fused.
LAION_CHECKPOINTS = {
    "630k-best.pt": ("HTSAT-tiny", False),
    "630k-audioset-best.pt": ("HTSAT-tiny", False),
    "630k-fusion-best.pt": ("HTSAT-tiny", True),
    "630k-audioset-fusion-best.pt": ("HTSAT-tiny", True),
    "music_audioset_epoch_15_esc_90.14.pt": ("HTSAT-base", False),
    "music_speech_epoch_15_esc_89.25.pt": ("HTSAT-base", False),
    "music_speech_audioset_epoch_15_esc_89.98.pt": ("HTSAT-base", False),
}
#: Patch embedding width of each HTSAT size, as the checkpoint shows it.
AUDIO_TOWERS = {96: "HTSAT-tiny", 128: "HTSAT-base", 256: "HTSAT-large"}
#: How a setting names a checkpoint file.
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def checkpoint_dirs() -> list[Path]:
    """Where existing LAION-CLAP setups keep their ``.pt`` files."""
    dirs = []
    if env := os.environ.get("LAION_CLAP_CACHE"):
        dirs.append(Path(env))
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        dirs.append(Path(xdg) / "laion_clap")
    dirs.append(Path.home() / ".cache" / "laion_clap")
    return dirs


def locate_checkpoint(model: str) -> Path:
    """The ``.pt`` file a setting names: a path, or a bare released file
    name looked up where LAION-CLAP setups keep them."""
    path = Path(model).expanduser()
    if path.is_file():
        return path.resolve()
    looked = [path]
    if path.name == model:  # a bare name: search the usual places
        for folder in checkpoint_dirs():
            candidate = folder / model
            if candidate.is_file():
                return candidate.resolve()
            looked.append(candidate)
    where = ", ".join(str(p) for p in looked)
    hint = (
        f"; download it from {LAION_DOWNLOAD}{path.name}"
        if path.name in LAION_CHECKPOINTS
        else ""
    )
    raise ModelError(
        f"CLAP checkpoint {model} not found (looked at {where}){hint}"
    )


# -- LAION checkpoint -> ClapModel -------------------------------------------

_AUDIO_RENAMES = [
    (r"^audio_branch\.bn0\.", "audio_model.audio_encoder.batch_norm."),
    (r"^audio_branch\.", "audio_model.audio_encoder."),
    (r"\.norm1\.", ".layernorm_before."),
    (r"\.norm2\.", ".layernorm_after."),
    (r"\.attn\.proj\.", ".attention.output.dense."),
    (r"\.attn\.relative_position", ".attention.self.relative_position"),
    (r"\.mlp\.fc1\.", ".intermediate.dense."),
    (r"\.mlp\.fc2\.", ".output.dense."),
]
# Parts of a training checkpoint that embeddings never use.
_UNUSED = re.compile(
    r"^(audio_branch\.(head|tscam_conv|spectrogram_extractor|logmel_extractor)"
    r"|audio_transform|text_transform|text_branch\.embeddings\.position_ids"
    r"|.*\.attn_mask$)"
)


def rename_laion_state_dict(
    state: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """LAION-CLAP parameter names and layout -> ``ClapModel``'s."""
    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if _UNUSED.match(key):
            continue
        if key.startswith("text_branch."):
            new = "text_model." + key.removeprefix("text_branch.")
        elif m := re.match(r"^(audio|text)_projection\.([02])\.(.*)$", key):
            layer = "linear1" if m[2] == "0" else "linear2"
            new = f"{m[1]}_projection.{layer}.{m[3]}"
        elif key.startswith("audio_branch."):
            new = key
            for pattern, replacement in _AUDIO_RENAMES:
                new = re.sub(pattern, replacement, new)
            if ".attn.qkv." in new:  # one fused matrix -> three
                base = new.replace(".attn.qkv.", ".attention.self.")
                for part, chunk in zip(
                    ("query", "key", "value"),
                    tensor.chunk(3, dim=0),
                    strict=False,
                ):
                    renamed[base.replace(".self.", f".self.{part}.")] = chunk
                continue
        else:
            new = key
        renamed[new] = tensor
    return renamed


def laion_architecture(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """``ClapConfig`` arguments read off the tensor shapes of a LAION
    checkpoint (already renamed), so any size loads without a table."""
    audio = "audio_model.audio_encoder."
    width = state[audio + "patch_embed.proj.weight"].shape[0]
    depths = []
    heads = []
    layer = 0
    while f"{audio}layers.{layer}.blocks.0.layernorm_before.weight" in state:
        blocks = 0
        while (
            f"{audio}layers.{layer}.blocks.{blocks}.layernorm_before.weight"
            in state
        ):
            blocks += 1
        depths.append(blocks)
        table = state[
            f"{audio}layers.{layer}.blocks.0.attention.self."
            "relative_position_bias_table"
        ]
        heads.append(table.shape[1])
        layer += 1
    text = "text_model."
    text_layers = 0
    while (
        f"{text}encoder.layer.{text_layers}.attention.self.query.weight"
        in state
    ):
        text_layers += 1
    words = state[text + "embeddings.word_embeddings.weight"]
    hidden = words.shape[1]
    return {
        "audio_config": {
            "patch_embeds_hidden_size": width,
            "depths": depths,
            "num_attention_heads": heads,
            "hidden_size": state[audio + "norm.weight"].shape[0],
            "enable_fusion": audio + "patch_embed.mel_conv2d.weight" in state,
            "fusion_type": None,
        },
        "text_config": {
            "vocab_size": words.shape[0],
            "hidden_size": hidden,
            "num_hidden_layers": text_layers,
            "num_attention_heads": max(1, hidden // 64),
            "intermediate_size": state[
                text + "encoder.layer.0.intermediate.dense.weight"
            ].shape[0],
            "max_position_embeddings": state[
                text + "embeddings.position_embeddings.weight"
            ].shape[0],
            "type_vocab_size": state[
                text + "embeddings.token_type_embeddings.weight"
            ].shape[0],
        },
        "projection_dim": state["audio_projection.linear2.weight"].shape[0],
    }


def read_checkpoint(path: Path, trust: bool) -> dict[str, torch.Tensor]:
    """The state dict of a LAION ``.pt`` file, loaded without running
    pickled code unless the user trusts the file."""
    import pickle
    import warnings

    import torch

    if problem := _checkpoint_problem(path):
        raise ModelError(
            f"the CLAP checkpoint {path} {problem}: {download_again(path)}"
        )
    try:
        with warnings.catch_warnings():  # torch's notes on old pickles
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        raise ModelError(
            f"{path} needs full unpickling, which can run code hidden in the "
            "file; if you trust where it came from, set "
            "audiofeatures.clap.trust_checkpoint: yes"
        ) from exc
    except (OSError, RuntimeError, EOFError, ValueError, KeyError) as exc:
        raise ModelError(
            f"the CLAP checkpoint {path} is damaged ({first_line(exc)}): "
            f"{download_again(path)}"
        ) from exc
    state = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not state:
        raise ModelError(f"{path} holds no state dict")
    return {key.removeprefix("module."): value for key, value in state.items()}


def _checkpoint_problem(path: Path) -> str | None:
    """What is wrong with a ``.pt`` file that cannot be a checkpoint, seen
    from its first bytes: torch writes a zip archive (a legacy one is a
    pickle), so anything else is damaged or some other file."""
    import zipfile

    try:
        with open(path, "rb") as handle:
            start = handle.read(4)
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not start:
        return "is empty"
    if start.startswith(b"PK") and not is_zip:
        return "is cut short (its zip archive has no end)"
    if not is_zip and not start.startswith(b"\x80"):
        return "is not a PyTorch checkpoint (neither a zip nor a pickle)"
    return None


def download_again(path: Path) -> str:
    if path.name in LAION_CHECKPOINTS:
        return f"download it again from {LAION_DOWNLOAD}{path.name}"
    return "replace it with a complete copy"
