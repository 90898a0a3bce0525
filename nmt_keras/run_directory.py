"""A run directory: where a training run of either application writes what inference reads.

`RunDirectory` names the files every run has (its config) and checks that a run is
complete; each application's paths extend it (translation: `nmt_keras.run.RunPaths`;
next purchases: `nmt_keras.behaviour.run.BehaviourRunPaths`). TensorFlow-free.
"""

from __future__ import annotations

import dataclasses
import os

from nmt_keras.errors import NmtKerasError


class RunError(NmtKerasError, ValueError):
    """A run directory is missing, incomplete or belongs to another experiment."""


@dataclasses.dataclass(frozen=True)
class RunDirectory:
    """The files of one run directory.

    Attributes:
        root: The run directory.
    """

    root: str

    def file(self, name: str) -> str:
        """The path of `name` inside the run directory."""
        return os.path.join(self.root, name)

    @property
    def config(self) -> str:
        """The experiment config, as trained."""
        return self.file("config.yaml")

    def require(self, *paths: str) -> None:
        """Checks that the run directory and each of `paths` exist.

        Raises:
            RunError: Naming the missing directory, or the first missing file.
        """
        if not os.path.isdir(self.root):
            raise RunError(f"Run directory not found: {self.root}")
        for path in paths:
            if not os.path.isfile(path):
                raise RunError(f"Not a complete run directory: missing {path}")
