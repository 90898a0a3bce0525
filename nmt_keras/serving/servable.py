"""One loaded model version: a session bundle, its SignatureDefs and a way to run them.

A version is loaded as TF Serving loads it (`SessionBundle`: MetaGraph import, restore,
init op) and its signatures are run by their SignatureDefs' tensor names. With
server-side batching, each signature's calls go through a `BatchScheduler`, which merges
concurrent requests into one `Session::Run`.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field

import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2

from nmt_keras.serving.batching import BatchingParameters, BatchScheduler
from nmt_keras.serving.session_bundle import SessionBundle


@dataclass(eq=False)
class Servable:
    """A loaded version of a model.

    Attributes:
        name: The model name.
        version: The version number (the directory name).
        bundle: The session bundle of the version directory.
        batching: Server-side batching, or None to run every request on its own.
    """

    name: str
    version: int
    bundle: SessionBundle = field(repr=False)
    batching: BatchingParameters | None = None
    _schedulers: dict[str, BatchScheduler] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # One scheduler (queue and batch threads) per signature, as TF Serving has.
        self._schedulers = {
            name: BatchScheduler(
                functools.partial(self.bundle.run, name),
                self.batching,
                name=f"{self.name}-{self.version}-{name}",
            )
            for name in (self.signature_defs if self.batching is not None else ())
        }
        # Unloading a version only drops the manager's reference: requests in flight
        # keep theirs, and the batch threads stop once the last one is gone.
        weakref.finalize(self, _close_schedulers, list(self._schedulers.values()))

    @property
    def path(self) -> str:
        """The version directory."""
        return self.bundle.path

    @property
    def signature_defs(self) -> dict[str, meta_graph_pb2.SignatureDef]:
        """The SignatureDefs of the loaded MetaGraph, by key."""
        return self.bundle.signature_defs

    def run(self, signature_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs a signature on numpy inputs, through the batch scheduler when batching.

        Args:
            signature_name: A key of `signature_defs`.
            inputs: One array per signature input alias.

        Returns:
            One array per signature output alias (batch first).

        Raises:
            SessionRunError: If the session fails (TensorFlow's code and message).
            RequestError: If the batch scheduler refuses the request.
        """
        if self.batching is None:
            return self.bundle.run(signature_name, inputs)
        return self._schedulers[signature_name].submit(inputs)


def _close_schedulers(schedulers: list[BatchScheduler]) -> None:
    for scheduler in schedulers:
        scheduler.close()
