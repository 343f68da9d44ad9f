"""Write a file whole or not at all: the command line's outputs (profiles, dashboards, rule files,
replayed transitions, the README's metrics table).

Written in place, a run that fails mid-write (a full disk, a file-size limit, Ctrl-C, a damaged
input found half-way) left a truncated file where the previous good one was: a profile that
``monitor serve`` then refused, a README cut short. Here the bytes go to a temporary file beside
the target, which replaces it (``os.replace``, atomic on POSIX) only once everything is written
and fsynced (the folder too, so that the rename survives a power loss); on any failure the
temporary file is removed and the target is left as it was. Checkpoints are written through it as
well (:func:`monitor.checkpoint.save`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["OutputFileError", "atomic_output"]


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable: without it a power loss soon after may bring back the old
    file (or none) although the new one was fsynced. Best effort: some file systems refuse it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class OutputFileError(Exception):
    """An output file could not be written; the message names the file, the cause and the fix."""


def _error(path: Path, err: OSError) -> OutputFileError:
    reason = err.strerror or str(err)
    return OutputFileError(f"cannot write {path}: {reason}. Fix: name a file in a folder that exists and that you may "
                           "write to, with room left on its disk")


@contextmanager
def atomic_output(path: str | Path, mode: str = "w", *, make_parents: bool = False) -> Iterator[IO[Any]]:
    """Open ``path`` for writing (``mode`` ``"w"`` text as UTF-8, or ``"wb"``) through a temporary
    file beside it that replaces ``path`` when the block ends without an exception.

    A target that is no regular file (``/dev/stdout``, a FIFO) is written through as ``open``
    writes it. The new file gets the mode an ordinary ``open`` would give it (the existing file's, else 0666
    less the umask): a temporary file's 0600 would keep e.g. Grafana's user from reading a
    rebuilt dashboard. ``make_parents`` creates missing folders first (as ``monitor reference
    build -o`` and ``monitor dashboards build --out`` always did).

    Raises
    ------
    OutputFileError
        When a folder, the temporary file or the replacement cannot be written; ``path`` is then
        unchanged.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     target = Path(folder) / "out.txt"
    ...     _ = target.write_text("old")
    ...     try:
    ...         with atomic_output(target) as fh:
    ...             _ = fh.write("half")
    ...             raise RuntimeError("crash mid-write")
    ...     except RuntimeError:
    ...         pass
    ...     target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('old', ['out.txt'])
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    if make_parents:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            # mkdir's own "File exists" read as if the output file were refused for existing
            reason = ("a file stands where a folder of that path is needed" if err.errno in (errno.EEXIST, errno.ENOTDIR)
                      else err.strerror or str(err))
            raise OutputFileError(f"cannot create the folder {path.parent} for {path}: {reason}. Fix: name a file in a "
                                  "folder that exists or can be created") from None
    try:
        try:
            st = path.stat()
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            # /dev/stdout, a FIFO: written through as open() does (replacing one would remove it)
            with open(path, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as direct:
                yield direct
            return
        perm = None if st is None else st.st_mode & 0o7777
        path = Path(os.path.realpath(path))  # a symlink stays one: its target is replaced
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    except OSError as err:
        raise _error(path, err) from None
    try:
        with (os.fdopen(fd, "wb") if mode == "wb" else os.fdopen(fd, "w", encoding="utf-8")) as fh:
            if perm is not None:
                os.chmod(fh.fileno(), perm)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as err:  # Ctrl-C too: the target stays whole
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(err, OSError):  # a full disk, a size limit: raised by a write in the block or here
            raise _error(path, err) from None
        raise
