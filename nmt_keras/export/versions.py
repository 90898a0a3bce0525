"""The TF Serving model layout: `model_base_path/<integer version>/`, published atomically.

TF Serving polls `model_base_path` and loads every directory whose name is an integer,
even a half-written one; it ignores any other name. A version is therefore built in a
hidden, non-integer staging directory inside `model_base_path` (same file system) and
renamed into place in one step.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

from nmt_keras.atomic import new_directory_mode, new_file_mode
from nmt_keras.errors import NmtKerasError

STAGING_PREFIX = ".tmp-export-"


class VersionError(NmtKerasError, ValueError):
    """A requested export version is invalid or already taken."""


def list_versions(model_base_path: str) -> list[int]:
    """The integer versions in `model_base_path`, ascending (empty if it does not exist)."""
    if not os.path.isdir(model_base_path):
        return []
    return sorted(
        int(name)
        for name in os.listdir(model_base_path)
        if name.isascii() and name.isdigit() and os.path.isdir(os.path.join(model_base_path, name))
    )


def next_version(model_base_path: str) -> int:
    """One more than the highest version in `model_base_path`, or 1 if there is none."""
    versions = list_versions(model_base_path)
    return versions[-1] + 1 if versions else 1


def saved_model_dir(path: str) -> str:
    """`path` if it is a SavedModel directory, else its highest version directory.

    Lets a command take either `saved_models/nmt/3` or `saved_models/nmt`.

    Raises:
        FileNotFoundError: If `path` is neither a SavedModel nor a directory of versions.
    """
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = list_versions(path)
    if not versions:
        raise FileNotFoundError(
            f"Expected a SavedModel directory or a model base path with integer versions. "
            f"Received: {path}"
        )
    return os.path.join(path, str(versions[-1]))


def resolve_version(model_base_path: str, version: int | None) -> int:
    """Checks an explicit version, or picks the next free one.

    Raises:
        ValueError: If `version` is not a positive integer or already exists.
    """
    if version is None:
        return next_version(model_base_path)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise VersionError(
            f"Expected version to be a positive integer. Received: version={version}"
        )
    if version in list_versions(model_base_path):
        raise VersionError(
            f"Version {version} already exists: {os.path.join(model_base_path, str(version))}. "
            f"Pass another version, or none for the next free one "
            f"({next_version(model_base_path)})."
        )
    return version


def _make_readable(directory: str) -> None:
    """Gives `directory` and everything below it the modes new files get under the umask."""
    directory_mode, file_mode = new_directory_mode(), new_file_mode()
    for root, _, files in os.walk(directory):
        os.chmod(root, directory_mode)
        for name in files:
            os.chmod(os.path.join(root, name), file_mode)


@contextlib.contextmanager
def staged_version(model_base_path: str, version: int) -> Iterator[str]:
    """Yields an empty staging directory, then renames it to `model_base_path/<version>`.

    The staging directory is inside `model_base_path` and has a non-integer name, so
    TF Serving never sees it. If the body raises (or the rename fails), the staging
    directory is removed and nothing is published. Everything published gets the mode
    of a new file or directory under the process's umask (0644 / 0755 under the usual
    022), not `mkdtemp`'s private 0700 or the 0600 of a copied asset, so a server that
    runs as another user can read it.

    Raises:
        ValueError: If `model_base_path/<version>` appeared while the version was built.
    """
    os.makedirs(model_base_path, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=model_base_path)
    final = os.path.join(model_base_path, str(version))
    try:
        yield staging
        if os.path.lexists(final):
            raise VersionError(f"Version {version} was created while exporting: {final}")
        _make_readable(staging)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
