"""Checked, durable writes of state files: every byte is on disk, or a StateWriteError.

A write can fail whole (ENOSPC, EDQUOT, EROFS, EPERM, EACCES, EIO) or in part (a short
write). Either way the caller gets one error naming the file and the cause, and what was on
disk before is left as it was: a replaced file is written beside it and renamed over it only
once complete; an appended line that could not be written in full is cut off again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from .errors import StateWriteError

_REMEDY = {
    errno.ENOSPC: "free some space",
    errno.EDQUOT: "free some space or raise the quota",
    errno.EROFS: "make the file system writable",
    errno.EPERM: "fix the permissions",
    errno.EACCES: "fix the permissions",
}

DEFAULT_MODE = 0o644


def write_error(path: Path | str, e: OSError) -> StateWriteError:
    """The one line a failed state write is reported as."""
    name = errno.errorcode.get(e.errno or 0)
    cause = e.strerror or str(e)
    if name:
        cause = f"{cause} [{name}]"
    remedy = _REMEDY.get(e.errno or 0, "fix the cause")
    return StateWriteError(
        f"{path}: cannot write ({cause}); what was recorded before is intact:"
        f" {remedy}, then run the command again"
    )


def write_all(fd: int, data: bytes, path: Path | str) -> None:
    """Write every byte, however many calls it takes; a write that stops short is an error."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError as e:
            raise write_error(path, e) from None
        if written <= 0:  # never for a regular file, but then it would loop forever
            done = len(data) - len(view)
            short = OSError(errno.EIO, f"short write ({done} of {len(data)} bytes)")
            raise write_error(path, short)
        view = view[written:]


def fsync(fd: int, path: Path | str) -> None:
    try:
        os.fsync(fd)
    except OSError as e:
        raise write_error(path, e) from None


def fsync_dir(directory: Path) -> None:
    """Make a rename, a creation or an unlink in directory durable."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise write_error(directory, e) from None
    try:
        fsync(fd, directory)
    finally:
        os.close(fd)


def append(fd: int, data: bytes, path: Path | str, *, sync: bool = True) -> None:
    """Append data to an O_APPEND file and fsync it, or leave the file as it was.

    `sync=False` only writes: the data reaches the disk with the file's next fsync (which
    covers every byte written before it) or whatever replaces the file.

    A failed append is cut off again, so no torn line sits in front of the next one. When
    even that fails the error says so: the file must not be appended to any more.
    """
    try:
        start = os.fstat(fd).st_size
    except OSError as e:
        raise write_error(path, e) from None
    try:
        write_all(fd, data, path)
        if sync:
            fsync(fd, path)
    except StateWriteError as e:
        try:
            os.ftruncate(fd, start)
        except OSError:
            e.torn = True
        raise


def replace(path: Path, data: bytes) -> None:
    """Replace path's content atomically (temp file, fsync, rename, fsync of the directory).

    The file keeps its mode; a new one gets DEFAULT_MODE (less the umask). On failure the
    previous file is untouched and the temp file removed.
    """
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    except OSError as e:
        raise write_error(path, e) from None
    tmp = temp_path_for(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, DEFAULT_MODE)
    except OSError as e:
        raise write_error(tmp, e) from None
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode)  # os.open's mode is cut by the umask; this is not
        except OSError as e:
            raise write_error(tmp, e) from None
        write_all(fd, data, tmp)
        fsync(fd, tmp)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    try:
        os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise write_error(path, e) from None
    fsync_dir(path.parent)


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


def read_state(path: Path) -> bytes:
    """A state file's bytes; OSError when it is not a regular file.

    A journal or manifest that is a FIFO, a device or a link to one (/dev/full, /dev/zero)
    would otherwise block the read forever or fill memory with zeros.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
        if kind != stat.S_IFREG:
            what = _KINDS.get(kind, "not a regular file")
            raise OSError(errno.EINVAL, f"it is {what}, not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def temp_path_for(path: Path) -> Path:
    """Where replace() writes path's next content: hidden, beside it, one per process."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def move(path: Path, target: Path) -> None:
    """Give a state file a new name in its directory, never over an existing file."""
    try:
        os.link(path, target)
    except OSError as e:
        raise write_error(target, e) from None
    fsync_dir(target.parent)
    unlink(path)


def unlink(path: Path) -> None:
    """Remove a state file (gone already is fine) and make its removal durable."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise write_error(path, e) from None
    fsync_dir(path.parent)
