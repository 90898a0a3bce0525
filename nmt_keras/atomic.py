"""Files written whole or not at all, with the permissions of any new file.

A reader (TF Serving, a second worker, a user's shell) never sees a half-written
tokenizer, config or plot: the data goes to a temporary file beside the target, which
replaces the target only once complete. Temporary files are created private (0600), so
the finished file is given the mode a new file gets under the process's umask (0644
under the usual 022), as `open()` would have.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO


def umask() -> int:
    """The process's umask (read by setting it, then restored)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The permission bits `open()` gives a new file under the current umask."""
    return 0o666 & ~umask()


def new_directory_mode() -> int:
    """The permission bits `os.mkdir()` gives a new directory under the current umask."""
    return 0o777 & ~umask()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """Opens a temporary file that replaces `path` when the block ends without error.

    Args:
        path: The file to write; its directory is created if missing.
        mode: `"wb"` or `"w"`.
        **open_kwargs: Passed to `open()` (`encoding=`, ...).

    Yields:
        The open temporary file. On an exception it is removed and `path` is untouched.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with open(descriptor, mode, **open_kwargs) as file:
            yield file
        os.chmod(temporary, new_file_mode())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
