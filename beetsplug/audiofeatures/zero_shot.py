"""CLAP zero-shot tags: label sets scored against cached track vectors.

A label set is a name and a few labels, each with the sentence CLAP
compares the track with (``mood: [happy, sad, relaxed]`` uses
``"happy music"``, ... through the prompt template). The probabilities
are a softmax over the labels of the cosine similarities times the
model's logit scale, as CLAP was trained. Only cached vectors are used:
no audio is decoded. No beets here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .descriptors import field_slug

PREFIX = "clap_"
DEFAULT_TEMPLATE = "{} music"


class LabelSetError(ValueError):
    """A label set in the configuration is malformed."""


@dataclass(frozen=True)
class LabelSet:
    name: str  # field slug
    labels: tuple[str, ...]  # field slugs, in order
    prompts: tuple[str, ...]  # what CLAP hears for each label

    @property
    def field(self) -> str:
        """The field holding the winning label."""
        return f"{PREFIX}{self.name}"

    def label_field(self, label: str) -> str:
        return f"{PREFIX}{self.name}_{label}"

    def fields(self) -> list[str]:
        return [self.field] + [self.label_field(label) for label in self.labels]


def parse_label_sets(
    config: Mapping[str, Any], template: str = DEFAULT_TEMPLATE
) -> list[LabelSet]:
    """Label sets from ``{name: [label, ...]}`` (prompt from the template)
    or ``{name: {label: prompt, ...}}``."""
    sets = []
    seen: set[str] = set()
    for raw_name, spec in config.items():
        name = field_slug(str(raw_name))
        if isinstance(spec, Mapping):
            pairs = [
                (str(label), str(prompt)) for label, prompt in spec.items()
            ]
        elif isinstance(spec, list | tuple):
            pairs = [(str(label), template.format(label)) for label in spec]
        else:
            raise LabelSetError(
                f"tags.{raw_name} must be a list of labels or a mapping "
                "of label: prompt"
            )
        labels = tuple(field_slug(label) for label, _ in pairs)
        if len(labels) < 2:
            raise LabelSetError(f"tags.{raw_name} needs at least two labels")
        if not name or not all(labels) or len(set(labels)) != len(labels):
            raise LabelSetError(
                f"tags.{raw_name}: names must be distinct and contain letters "
                "or digits"
            )
        if name in seen:
            raise LabelSetError(f"tags: {raw_name} is given twice")
        seen.add(name)
        sets.append(LabelSet(name, labels, tuple(p for _, p in pairs)))
    return sets


def probabilities(
    vectors: np.ndarray, prompt_vectors: np.ndarray, logit_scale: float
) -> np.ndarray:
    """Softmax over the labels (columns) of scaled cosine similarities."""
    logits = logit_scale * (vectors @ prompt_vectors.T)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    result: np.ndarray = weights / weights.sum(axis=1, keepdims=True)
    return result


def tag_values(
    label_set: LabelSet, row: np.ndarray, digits: int = 4
) -> dict[str, Any]:
    """Fields for one track: the winning label and each probability."""
    values: dict[str, Any] = {
        label_set.field: label_set.labels[int(row.argmax())]
    }
    for label, probability in zip(label_set.labels, row, strict=True):
        values[label_set.label_field(label)] = round(float(probability), digits)
    return values
