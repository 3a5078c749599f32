"""The analyses the plugin runs over library items, through one runner:
what each item needs (``essentia_plan``, ``clap``), the job a worker
gets, and how each result is stored on its item as it arrives
(``essentia``, ``clap``, ``clap_tags``); album values (``albums``) and
the vector store's report (``clap_store``: ``--stats``, ``--prune``,
``beet rm``). It stands on the settings and the floor, never on the
commands, the search services or the page."""
