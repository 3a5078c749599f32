"""The services beneath ``beet clapquery``, ``clapradio``, ``clappath``,
``clapdupes``, the saved playlists and the page: the library's vectors
(``vectors``: the embedded index, the current rows of a query, seeds,
ranked results), radios and paths with their DJ rules (``radio``,
``radio_rules``), the saved playlists and the map (``map``). Requests
come in typed (``QueryRequest``, ``RadioRequest``); answers go out as
items and rows; errors are the core's ``RequestError``."""
