"""The analysis core of beets-audiofeatures: it never imports beets.

``essentia`` computes descriptors and classifier probabilities from audio
files; ``clap`` embeds audio and text, stores the vectors and searches
them; ``runner`` is the executor interface every analysis runs through
(``process_pool`` is its local, crash-tolerant implementation). The beets
side (``beetsplug.audiofeatures``) plans what each library item needs and
stores what comes back.
"""
