"""CLAP zero-shot tags: label sets scored against cached track vectors.

A label set is a name and a few labels, each with the sentence CLAP
compares the track with (``mood: [happy, sad, relaxed]`` uses
``"happy music"``, ... through the prompt template). The probabilities
are a softmax over the labels of the cosine similarities times the
model's logit scale, as CLAP was trained. Only cached vectors are used:
no audio is decoded. No beets here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from string import Formatter
from typing import Any

import numpy as np

from ..errors import SetupError
from ..naming import field_slug
from ..runner import Job

PREFIX = "clap_"
DEFAULT_TEMPLATE = "{} music"


class LabelSetError(SetupError, ValueError):
    """A label set in the configuration is malformed."""

    def line(self) -> str:
        # The message starts with the setting's own name (tags.mood).
        return f"audiofeatures.clap.{self}"


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


def check_template(template: object) -> str:
    """The prompt template, if it holds ``{}`` once (where the label
    goes): without it every label would be the same sentence."""
    if isinstance(template, str):
        try:
            fields = [
                (name, spec, conversion)
                for _, name, spec, conversion in Formatter().parse(template)
                if name is not None
            ]
        except ValueError:  # a lone brace
            fields = []
        if fields in ([("", "", None)], [("0", "", None)]):
            return template
    raise LabelSetError(
        f"tag_prompt is {template!r}: use a sentence with {{}} once, where "
        "the label goes, such as '{} music'"
    )


def parse_label_sets(
    config: object, template: object = DEFAULT_TEMPLATE
) -> list[LabelSet]:
    """Label sets from ``{name: [label, ...]}`` (prompt from the template)
    or ``{name: {label: prompt, ...}}``; ``LabelSetError`` names what is
    wrong, whatever the configuration holds."""
    if config is None:  # ``tags:`` left empty
        return []
    if not isinstance(config, Mapping):
        raise LabelSetError(
            f"tags is {config!r}: use a mapping of name: [label, ...] or "
            "name: {label: prompt, ...}"
        )
    template = check_template(template)
    sets = []
    seen: set[str] = set()
    for raw_name, spec in config.items():
        name = field_slug(str(raw_name))
        if isinstance(spec, Mapping):
            pairs = list(spec.items())
        elif isinstance(spec, list | tuple):
            pairs = [(label, template.format(label)) for label in spec]
        else:
            raise LabelSetError(
                f"tags.{raw_name} is {spec!r}: use a list of labels or a "
                "mapping of label: prompt"
            )
        for label, prompt in pairs:
            if isinstance(label, bool) or not isinstance(
                label, str | int | float
            ):
                raise LabelSetError(
                    f"tags.{raw_name} has the label {label!r}: use words"
                )
            if not isinstance(prompt, str) or not prompt.strip():
                raise LabelSetError(
                    f"tags.{raw_name}.{label} is {prompt!r}: use a sentence "
                    "that describes the label"
                )
        labels = tuple(field_slug(str(label)) for label, _ in pairs)
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


class Tagger:
    """Zero-shot tags as an executor: each job's task is its row in
    ``matrix``; the rows are scored ``batch`` at a time, in this
    process (no audio is decoded)."""

    def __init__(
        self,
        matrix: np.ndarray,
        sets: Sequence[LabelSet],
        prompts: Sequence[np.ndarray],
        scale: float,
        batch: int = 500,
    ) -> None:
        self.matrix = matrix
        self.sets = sets
        self.prompts = prompts
        self.scale = scale
        self.batch = batch

    def run(
        self, jobs: Iterable[Job[int]]
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(job id, tag fields)`` for each job."""
        todo = list(jobs)
        for start in range(0, len(todo), self.batch):
            part = todo[start : start + self.batch]
            vectors = np.asarray(self.matrix[[job.task for job in part]])
            scored = [
                probabilities(vectors, prompt, self.scale)
                for prompt in self.prompts
            ]
            # Row n of each score matrix is the vector of the job that
            # asked for row n of the matrix: one array, never apart.
            for row, job in enumerate(part):
                values: dict[str, Any] = {}
                for label_set, scores in zip(self.sets, scored, strict=True):
                    values.update(tag_values(label_set, scores[row]))
                yield job.id, values

    def close(self, wait: bool = True) -> None:
        """Nothing to stop: it runs in this process."""
