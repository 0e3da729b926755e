"""Writing files so that nothing is lost: the one helper every file microgradx writes goes through."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import ArgumentError

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path`` in one step.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path`` is left
    as it was. The data is flushed to disk before the rename, so even a crash of the machine cannot leave
    a renamed file with missing contents. The new file keeps the mode of the one it replaces, and a
    symlink stays a symlink: the file it names is replaced.
    """
    if mode not in ("w", "wb"):
        raise ArgumentError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(os.path.realpath(path))
    if not path.parent.is_dir():    # open's own error would name the temporary file instead
        raise FileNotFoundError(errno.ENOENT, "no such folder to write into", str(path.parent))
    try:
        replaced_mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        replaced_mode = None        # a new file: the mode open() gives it under the umask
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # NOTE: the temporary file is opened inside the try, and removed by name: a Ctrl-C that lands just
    # after it was created, before any file object holds it, still removes it. Exclusive creation ("x")
    # never opens a file that is not ours.
    opened = False
    try:
        with open(tmp, mode.replace("w", "x")) as f:
            opened = True
            yield f
            f.flush()
            os.fsync(f.fileno())
        if replaced_mode is not None:
            os.chmod(tmp, replaced_mode)
        os.replace(tmp, path)
    except BaseException as e:
        # Only open()'s FileExistsError says the name was someone else's; any other error, even one
        # that comes before `opened` is set, leaves a file of ours.
        if opened or not isinstance(e, FileExistsError):
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
