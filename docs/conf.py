"""Sphinx configuration; the field reference is generated from the
plugin's descriptor table, so the docs cannot drift from the code."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from beets_audiofeatures.essentia.descriptors import (  # noqa: E402
    DESCRIPTORS,
    SVM_MODELS,
    svm_class_field,
)

project = "beets-audiofeatures"
author = "beets-audiofeatures developers"
copyright = "2026, beets-audiofeatures developers"  # noqa: A001
extensions: list[str] = []
exclude_patterns = ["_build", "_generated/*.inc"]
html_theme = "alabaster"


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        c.ljust(w) for c, w in zip(cells, widths, strict=True)
    ).rstrip()


def field_table() -> str:
    rows = [
        [
            f"``{d.field}``",
            d.kind.value,
            d.unit,
            d.group or "",
            f"``{d.album_field}`` ({d.album.label})" if d.album else "",
            f"``{d.source}``" if d.source else "",
            d.doc,
        ]
        for d in DESCRIPTORS
    ]
    header = [
        "Field",
        "Type",
        "Unit",
        "Profile",
        "Album (-a)",
        "Source",
        "Meaning",
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(7)]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, _row(header, widths), rule]
    lines += [_row(r, widths) for r in rows]
    lines.append(rule)
    svm = [
        f"- ``{svm_class_field(m)}``: {', '.join(c)}"
        for m, c in SVM_MODELS.items()
    ]
    return "\n".join(lines) + "\n\n.. svm-start\n\n" + "\n".join(svm) + "\n"


generated = HERE / "_generated"
generated.mkdir(exist_ok=True)
table, svm = field_table().split("\n.. svm-start\n")
(generated / "fields.inc").write_text(table)
(generated / "svm.inc").write_text(svm)
