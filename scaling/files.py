"""Atomic file writes: a reader, a crash or a SIGKILL sees the old file or the new one, never part of one.

A write goes to `<name>.tmp.<host>.<pid>` in the target's directory, is flushed and fsync'ed, renamed over
the target (os.replace, atomic on POSIX) and the directory fsync'ed. A target that exists and is neither a
regular file nor a directory (a device such as /dev/null, a FIFO, a socket) is written in place: renaming
over it would replace the device node itself with a regular file. If anything fails, the temp file is
deleted (the target stays as it was) and the OSError names the target, not its temp file.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

from scaling.errors import os_error_about

__all__ = ["atomic_write_bytes", "atomic_write_text", "fsync_dir", "temp_name", "writing"]


def temp_name(path: Path, tag: str = "") -> Path:
    """The temp file of an atomic write of `path` (same directory: the rename stays on one filesystem);
    `tag` tells apart concurrent writers of one path within one process (threads of a server)."""
    suffix = f".{tag}" if tag else ""
    return path.with_name(f"{path.name}.tmp.{socket.gethostname()}.{os.getpid()}{suffix}")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _special(path: Path) -> bool:
    """True for an existing target that is not a regular file or a directory (a device, FIFO or socket)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@contextlib.contextmanager
def writing(path: str | os.PathLike[str], tag: str = "") -> Iterator[Path]:
    """Yield the file to write for an atomic write of `path` (its temp file, `temp_name(path, tag)`, or
    `path` itself when it is a device or FIFO); on leaving, fsync it, rename it over `path` and fsync the
    directory."""
    path = Path(path)
    if _special(path):
        try:
            yield path
        except OSError as exc:
            raise os_error_about(exc, path) from None
        return
    tmp = temp_name(path, tag)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise os_error_about(exc, path) from None
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically (see the module docstring)."""
    with writing(path) as target, open(target, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode())
