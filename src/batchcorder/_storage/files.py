"""Creating the cache file privately and safely."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["create_private_file", "ensure_directory", "remove_created_directories"]

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

    The directory must exist (see :func:`ensure_directory`).

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
    path = directory / f"batchcorder-{uuid.uuid4().hex}{suffix}"
    fd = os.open(path, _CREATE_FLAGS, 0o600)
    return path, fd
