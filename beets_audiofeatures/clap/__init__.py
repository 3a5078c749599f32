"""CLAP: the model, audio windows, the embedding store, search, zero-shot tags."""
