"""Writing files so that nothing is lost: the one helper every file microgradx writes goes through."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path`` in one step.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path`` is left
    as it was. The data is flushed to disk before the rename, so even a crash of the machine cannot leave
    a renamed file with missing contents.
    """
    # Through a symlink to the file it names, so that the link stays a link.
    path = Path(os.path.realpath(path))
    if not path.parent.is_dir():    # mkstemp's own error would name the temporary file instead
        raise FileNotFoundError(errno.ENOENT, "no such folder to write into", str(path.parent))
    # mkstemp makes the file private (0600): give it the mode of the file it replaces, or else the mode
    # any new file gets under the umask.
    try:
        file_mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        file_mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)   # the only portable way to read the umask is to set it and put it back
    os.umask(mask)
    return mask
