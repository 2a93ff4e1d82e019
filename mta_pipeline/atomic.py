"""The one way this project writes a local file: a unique temporary name, fsync, then rename.

Readers never see half a file, a crash leaves the previous version whole, and two writers of one
path never share a temporary name. Kept free of Dagster so the `mta` command can use it cheaply.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_open(path: Path | str) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces `path` only when the block ends normally."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path | str, data: bytes) -> None:
    """Replace `path` with `data` in one piece."""
    with atomic_open(path) as fh:
        fh.write(data)
