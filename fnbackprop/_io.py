"""Atomic file writes: a file appears under its final name complete, or not at all."""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_file(path: "str | os.PathLike") -> Iterator[BinaryIO]:
    """Yield a temporary file beside `path` that replaces `path` only if the block succeeds.

    The data are flushed and fsynced before the rename, so a crash (even SIGKILL) leaves either
    the old file or the new one, never a partial file under the final name. The file gets the
    permissions a plain `open(path, "w")` would give it (0666 less the umask), not the temporary
    file's private 0600.
    """
    path = Path(path)
    f = tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False
    )
    try:
        with f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(f.name, path)
    except BaseException:
        Path(f.name).unlink(missing_ok=True)
        raise


def write_text_atomic(path: "str | os.PathLike", text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_file(path) as f:
        f.write(text.encode("utf-8"))


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
