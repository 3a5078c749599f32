"""The OpenSubsonic API of ``beet clapweb``: every Subsonic app as a
front end to the library and its sonic similarity (``docs/subsonic.rst``).

``responses`` builds the ``subsonic-response`` envelope (XML, JSON,
JSONP) and holds the error codes, ``auth`` checks the credentials of
``audiofeatures.web.users``, ``ids`` makes the stable ids (never a
path), ``catalogue`` describes and lists songs, albums and artists,
``media`` sends audio and cover art, ``similarity`` answers the radios
and paths of the CLAP vectors (through ``search.radio``), ``calls``
holds one call's parameters and the table of methods, which
``browsing`` (system, browsing, lists) and ``playback`` (search, media,
scrobble, playlists, similarity) fill, and ``endpoints`` is the
Blueprint that routes ``/rest/<method>`` to them.
"""
