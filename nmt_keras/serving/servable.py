"""One loaded model version: the SavedModel, its SignatureDefs and a way to run them.

The SignatureDefs are read from `saved_model.pb` (the MetaGraphDef tagged "serve"), so
metadata, input names and dtypes are exactly what the real server sees; the signatures
are run through `tf.saved_model.load(...).signatures[name]`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

SERVE_TAG = "serve"
DEFAULT_SIGNATURE = "serving_default"


@dataclass(eq=False)
class Servable:
    """A loaded version of a model.

    Attributes:
        name: The model name.
        version: The version number (the directory name).
        path: The version directory.
        signature_defs: SignatureDefs of the "serve" MetaGraphDef, by key.
        loaded: The object returned by `tf.saved_model.load`.
    """

    name: str
    version: int
    path: str
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]
    loaded: Any = field(repr=False)

    def run(self, signature_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs a signature on numpy inputs.

        Args:
            signature_name: A key of `signature_defs`.
            inputs: One array per signature input alias.

        Returns:
            One array per signature output alias.
        """
        function = self.loaded.signatures[signature_name]
        tensors = {name: tf.constant(value) for name, value in inputs.items()}
        outputs = function(**tensors)
        return {name: value.numpy() for name, value in outputs.items()}


def read_signature_defs(version_path: str) -> dict[str, meta_graph_pb2.SignatureDef]:
    """Reads the SignatureDefs of the "serve" MetaGraphDef of a SavedModel.

    Args:
        version_path: A SavedModel directory.

    Returns:
        The signature map, by key.

    Raises:
        ValueError: No `saved_model.pb`, or no MetaGraphDef tagged "serve".
    """
    pb_path = os.path.join(version_path, "saved_model.pb")
    if not os.path.isfile(pb_path):
        raise ValueError(f"SavedModel file does not exist at: {pb_path}")
    saved_model = saved_model_pb2.SavedModel()
    with open(pb_path, "rb") as file:
        saved_model.ParseFromString(file.read())
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"Could not find meta graph def matching supplied tags: {{ {SERVE_TAG} }}")


def load_servable(name: str, version: int, version_path: str) -> Servable:
    """Loads a SavedModel version.

    Args:
        name: The model name.
        version: The version number.
        version_path: The version directory.

    Returns:
        The loaded servable (warmup is the caller's business).

    Raises:
        ValueError: The directory is not a loadable SavedModel.
    """
    signature_defs = read_signature_defs(version_path)
    try:
        loaded = tf.saved_model.load(version_path, tags=[SERVE_TAG])
    except Exception as error:  # noqa: BLE001 - report any loader failure as one error.
        raise ValueError(f"{type(error).__name__}: {error}") from error
    return Servable(name, version, version_path, signature_defs, loaded)
