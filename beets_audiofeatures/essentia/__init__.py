"""Essentia: descriptors, keys, profiles, trained classifiers."""
