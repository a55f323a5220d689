"""Creating the cache file privately and safely."""

from __future__ import annotations

import os
import re
import stat
import uuid
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    # The checker types the name as the module, which None is not.
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "create_private_file",
    "ensure_directory",
    "remove_created_directories",
    "sweep_stale_files",
]

#: The names of the files :func:`create_private_file` makes, and only those.
_CACHE_FILE_NAME = re.compile(r"batchcorder-[0-9a-f]{32}\.arrow")

# O_NOFOLLOW refuses a symlink planted at the file's path; O_EXCL refuses any
# existing entry at all, so the file is always one this process created.
_CREATE_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def ensure_directory(directory: Path) -> list[Path]:
    """Create ``directory`` (private to the user) and any missing parents.

    Returns
    -------
    list of Path
        The directories this call created, deepest first, so that whoever
        removes the file can remove them too.

    Raises
    ------
    ValueError
        If ``directory`` exists and is not a directory.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> root = Path(tempfile.mkdtemp())
    >>> [path.relative_to(root).as_posix() for path in ensure_directory(root / "a" / "b")]
    ['a/b', 'a']
    >>> ensure_directory(root / "a" / "b")
    []
    """
    missing = [path for path in (directory, *directory.parents) if not path.exists()]
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise ValueError(
            f"disk_path must be a directory, but {str(directory)!r} is a file"
        ) from None
    return missing


def remove_created_directories(created: list[Path]) -> None:
    """Remove the directories :func:`ensure_directory` created, if they are empty."""
    for path in created:
        try:
            path.rmdir()
        except OSError:
            return  # not empty: someone else's files are there now


def create_private_file(directory: Path, suffix: str = ".arrow") -> tuple[Path, int]:
    """Create a new file readable and writable only by the user, in ``directory``.

    The directory must exist (see :func:`ensure_directory`). The descriptor
    holds an exclusive ``flock`` for as long as it (or a copy of it in a
    forked child) is open: the mark of a live file that
    :func:`sweep_stale_files` never removes. The kernel drops the lock when
    the process ends, however it ends, so a file left by a killed process is
    found stale by the next cache in the directory.

    Returns
    -------
    tuple of (Path, int)
        The file's path and an open read-write descriptor.

    Examples
    --------
    >>> import os, stat, tempfile
    >>> from pathlib import Path
    >>> path, fd = create_private_file(Path(tempfile.mkdtemp()))
    >>> oct(stat.S_IMODE(os.stat(path).st_mode))
    '0o600'
    >>> os.close(fd); path.unlink()
    """
    while True:
        path = directory / f"batchcorder-{uuid.uuid4().hex}{suffix}"
        fd = os.open(path, _CREATE_FLAGS, 0o600)
        if fcntl is None:
            return path, fd
        try:
            # Blocks only while a sweep that found the file before the lock
            # holds it; that sweep then removes the name, so check it.
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(path, os.fstat(fd)):
                return path, fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _same_file(path: Path, found: os.stat_result) -> bool:
    """Whether ``path`` still names the file ``found`` describes."""
    try:
        named = path.lstat()
    except FileNotFoundError:
        return False
    return (named.st_dev, named.st_ino) == (found.st_dev, found.st_ino)


def sweep_stale_files(directory: Path) -> list[Path]:
    """Remove the cache files in ``directory`` that no live process holds.

    A cache file is live while its creator (or a child it forked) has it
    open with its ``flock`` (:func:`create_private_file`); a file whose lock
    can be taken was left by a process that ended without closing its cache
    (SIGKILL, ``os._exit``, a crash). Only files named as this module names
    them, owned by this user, are looked at; a live process's file is never
    removed. On systems without ``flock`` nothing is swept.

    Returns
    -------
    list of Path
        The files removed.

    Examples
    --------
    >>> import os, tempfile
    >>> from pathlib import Path
    >>> directory = Path(tempfile.mkdtemp())
    >>> live, fd = create_private_file(directory)
    >>> sweep_stale_files(directory)  # the descriptor (and its lock) is open
    []
    >>> os.close(fd)  # what the end of a killed process does
    >>> sweep_stale_files(directory) == [live], live.exists()
    (True, False)
    """
    if fcntl is None:
        return []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    return [
        entry
        for entry in entries
        if _CACHE_FILE_NAME.fullmatch(entry.name) and _remove_if_stale(entry)
    ]


def _remove_if_stale(path: Path) -> bool:
    """Remove ``path`` if no process holds its lock; whether it was removed."""
    assert fcntl is not None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False  # gone meanwhile, a symlink, or not ours to open
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_uid != os.getuid():
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held: a live process's file
        if not _same_file(path, found):
            return False
        path.unlink()
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
