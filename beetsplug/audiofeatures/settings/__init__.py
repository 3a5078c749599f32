"""The plugin's settings: one module per section (``essentia``, ``clap``,
``web``, ``cluster``), each a :class:`~.values.Settings` read through the
one reader in ``values``, and the defaults the plugin registers.

Imported on every beets command (for the defaults and field types), so
nothing here imports numpy, torch or the heavy parts of the core at
module level."""
