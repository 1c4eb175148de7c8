"""Writing output files so that nothing is lost: atomically, and never over one of the inputs.

Every file the package writes goes through :func:`write_atomic`: the data goes to a temporary file in the target's
directory, is flushed to disk, and replaces the target with one ``rename``.  A reader therefore sees the old file or
the new one, never a partial one, and a failure (full disk, size limit, Ctrl-C) leaves the previous output intact.
A target that exists and is not a regular file (``/dev/null``, a FIFO) is refused, never replaced.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

_NOT_REGULAR = "not a regular file (a device, FIFO or socket); refusing to replace it"


class OutputPathError(ValueError):
    """An output path that cannot be used; the message names the flag and the path."""


def check_output_path(path: str | os.PathLike, inputs: Iterable[str | os.PathLike], flag: str) -> Path:
    """Refuse an output path that is empty, a directory, anything but a regular file (a device, a FIFO, a socket,
    or a link to one), or that is (or links to) one of ``inputs``."""
    if not str(path).strip():
        raise OutputPathError(f"{flag}: empty path; give a file path")
    out = Path(path)
    if out.is_dir():
        raise OutputPathError(f"{flag} {out}: is a directory; give a file path")
    if out.exists() and not out.is_file():
        raise OutputPathError(f"{flag} {out}: {_NOT_REGULAR}")
    parent = next((p for p in out.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise OutputPathError(f"{flag} {out}: {parent} is not a directory")
    if out.exists():
        for raw in inputs:
            p = Path(raw)
            try:
                same = p.exists() and os.path.samefile(out, p)
            except OSError:
                same = False
            if same:
                raise OutputPathError(f"{flag} {out}: is one of the inputs ({p}); writing it would destroy that input")
    return out


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file and a rename in the same directory.

    Missing parent directories are created.  Raises ``OSError`` naming ``path`` on failure; the target is then
    unchanged.
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if target.is_dir():
        raise IsADirectoryError(21, "is a directory; give a file path", str(target))
    if target.exists() and not target.is_file():  # the rename would replace a device or a FIFO with a file
        raise OSError(errno.EEXIST, _NOT_REGULAR, str(target))
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        mode = 0o666 & ~_umask()
        if target.exists():
            mode = target.stat().st_mode & 0o7777
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(exc, OSError):  # name the file the user asked for, not the temporary one
            raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
