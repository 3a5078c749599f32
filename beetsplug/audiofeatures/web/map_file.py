"""``beet clapmap -o map.html``: the page's map as one HTML file that
works offline and without a server (plotly.js, the drawing code and the
points inline)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

FOLDER = resources.files(__package__)
MARKERS = ("/*PLOTLY*/", "/*MAPJS*/", "/*POINTS*/null")


def plotly_bundle() -> Path:
    """plotly.js as the ``plotly`` wheel ships it (the page serves it
    too)."""
    return Path(
        str(resources.files("plotly") / "package_data" / "plotly.min.js")
    )


def script_json(value: Any) -> str:
    """JSON to place inside a ``<script>`` element: ``<`` is escaped, so
    no tag text can close the element."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def inline_script(code: str) -> str:
    """Code placed in a ``<script>`` element cannot end it early."""
    return code.replace("</script", "<\\/script")


def map_html(payload: dict[str, Any]) -> str:
    page = (FOLDER / "templates" / "map_file.html").read_text(encoding="utf-8")
    parts = {
        "/*PLOTLY*/": inline_script(
            plotly_bundle().read_text(encoding="utf-8")
        ),
        "/*MAPJS*/": inline_script(
            (FOLDER / "static" / "map.js").read_text(encoding="utf-8")
        ),
        "/*POINTS*/null": script_json(payload),
    }
    # Split on the template's markers only: nothing inserted is searched.
    out = [page]
    for marker in MARKERS:
        head, tail = out.pop().split(marker)
        out += [head, parts[marker], tail]
    return "".join(out)
