"""The page's map: its points and labels as sent, kept until the
database changes (embedding a track writes to it). At 100k tracks,
reading them is a second, sending them a few milliseconds."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from beetsplug.audiofeatures.search.map import library_map, map_payload
from beetsplug.audiofeatures.web.library_search import (
    LibrarySearch,
    database_stamp,
)

if TYPE_CHECKING:
    from beets.logging import BeetsLogger


class MapCache:
    """The current map of one server's library, computed once for
    concurrent first requests."""

    def __init__(
        self, search: LibrarySearch, sample: int, log: BeetsLogger
    ) -> None:
        self.search = search
        self.sample = sample
        self.log = log
        self._lock = threading.Lock()
        self._cached: tuple[Any, dict[str, Any], bytes] | None = None

    def current(self) -> tuple[dict[str, Any], bytes]:
        """The map as the page draws it, and as JSON bytes."""
        lib = self.search.lib
        stamp = database_stamp(lib.path)
        with self._lock:
            cached = self._cached
            if cached is None or stamp is None or cached[0] != stamp:
                store, index = self.search.index()
                projection = library_map(
                    lib, store, index, self.sample, self.log,
                    keys=self.search.source_keys(),
                )  # fmt: skip
                assert projection is not None
                payload = map_payload(lib, projection, None)
                body = json.dumps(
                    payload, ensure_ascii=False, separators=(",", ":")
                ).encode()
                self._cached = cached = (stamp, payload, body)
            return cached[1], cached[2]

    def warm(self) -> None:
        """Read (or compute) the map before the page asks for it; a
        failure waits for the page's request, which says it again."""
        try:
            self.current()
        except Exception as exc:
            self.log.debug("clapweb: the map is not ready: {}", exc)
