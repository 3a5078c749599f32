"""A digest of a few blocks spread over a stretch of a file: it tells
files apart for a few reads, whatever their size. The audio in a track
(``audio_files.audio_digest``), a worker's copy of a track
(``audio_files.copy_identity``) and the files of the CLAP index
(``clap.index``) are each told apart this way.

Nothing here imports beets.
"""

from __future__ import annotations

import hashlib
import os


def sampled_digest(
    fd: int,
    offset: int,
    length: int,
    blocks: int,
    block: int,
    digest_size: int = 8,
) -> str:
    """A blake2b, in hex, of ``length`` and of ``blocks`` blocks of
    ``block`` bytes spread evenly over the ``length`` bytes from
    ``offset`` of the open file ``fd``, the first and the last included
    (of all those bytes when they are no more than ``blocks * block``).
    ``ValueError`` when the file holds fewer bytes than that."""
    digest = hashlib.blake2b(
        length.to_bytes(8, "little"), digest_size=digest_size
    )
    if length <= blocks * block:
        spans = [(offset, length)]
    else:
        last = length - block
        spans = [
            (offset + last * n // max(1, blocks - 1), block)
            for n in range(blocks)
        ]
    for start, size in spans:
        read = os.pread(fd, size, start)
        if len(read) != size:
            raise ValueError(f"the file ends before byte {start + size}")
        digest.update(read)
    return digest.hexdigest()
