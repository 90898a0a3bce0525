"""A SavedModel loaded the way TensorFlow Serving loads it: a session bundle.

`tensorflow_model_server` never calls `tf.saved_model.load`. Its `SavedModelBundle` loader
imports the MetaGraph tagged "serve" into a `Session`, runs the saver's restore op on
`variables/` and the init op, and then answers each Predict with one `Session::Run` that
feeds and fetches the tensor names of the SignatureDef. `SessionBundle` does exactly
that through TensorFlow's C API (`tf_c_api`), after registering the tensorflow-text op
libraries the server links. A SavedModel that loads and runs here loads and runs there;
one that fails here (an op the server lacks, a variable the restore op never writes)
fails there, with the same status code and message.

Example:
    >>> bundle = SessionBundle("saved_models/demo/1")
    >>> bundle.run("serving_default", {"text": np.array([b"Tengo hambre."], object)})
    {'length': array([5], dtype=int32), 'score': ..., 'translation': array([b"I'm hungry."])}
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2

from nmt_keras.errors import NmtKerasError
from nmt_keras.serving import tf_c_api
from nmt_keras.serving.signatures import SERVE_TAG
from nmt_keras.serving.tensors import NUMPY_DTYPES

#: TF_DataType of each numpy dtype kind a request can carry.
_TF_DTYPES = {dtype: enum for enum, dtype in NUMPY_DTYPES.items()}


class SessionLoadError(NmtKerasError, ValueError):
    """The C++ session loader cannot load a SavedModel (the message is one line)."""


class SessionRunError(RuntimeError):
    """`Session::Run` failed on a signature.

    Attributes:
        code: TensorFlow's error code, numbered like gRPC status codes.
        message: TensorFlow's message.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "unknown error"


def tf_dtype(array: np.ndarray) -> int:
    """The TF_DataType of a numpy array: strings for object, bytes and str arrays.

    Raises:
        ValueError: If the dtype has no TensorFlow equivalent.
    """
    if array.dtype.kind in "OSU":
        return tf_c_api.TF_STRING
    try:
        return _TF_DTYPES[array.dtype]
    except KeyError:
        raise ValueError(f"Cannot feed a numpy array of dtype {array.dtype}.") from None


class SessionBundle:
    """A SavedModel version loaded into a TensorFlow session by the C++ loader.

    Args:
        path: The SavedModel directory (`.../<version>`).
        tags: The MetaGraph to load (TF Serving: "serve").
        config: A serialized `tf.compat.v1.ConfigProto` for the session (threads), or
            empty for TensorFlow's defaults.

    Attributes:
        path: The SavedModel directory.
        signature_defs: The SignatureDefs of the loaded MetaGraph, by key.

    Raises:
        SessionLoadError: If the loader fails, naming the directory and TensorFlow's
            reason (for example `Op type not registered 'Addons>GatherTree'`).
    """

    def __init__(
        self, path: str | os.PathLike, tags: Sequence[str] = (SERVE_TAG,), config: bytes = b""
    ) -> None:
        self.path = os.fspath(path)
        try:
            tf_c_api.load_op_libraries()
            self._session = tf_c_api.Session(self.path, tags, config)
        except tf_c_api.CApiError as error:
            raise SessionLoadError(
                f"TensorFlow's C++ SavedModel loader cannot load {self.path}: "
                f"{_first_line(error.message)}"
            ) from error
        meta_graph = meta_graph_pb2.MetaGraphDef.FromString(self._session.meta_graph_def)
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = dict(meta_graph.signature_def)

    def run(
        self,
        signature_name: str,
        inputs: dict[str, np.ndarray],
        output_aliases: Sequence[str] = (),
    ) -> dict[str, np.ndarray]:
        """Runs a signature by its SignatureDef's tensor names, in one `Session::Run`.

        Args:
            signature_name: A key of `signature_defs`.
            inputs: One array per input alias of the signature (strings as object arrays
                of `bytes`); fed with their own dtype, so a mismatch fails as on the server.
            output_aliases: The outputs to fetch; all of them when empty.

        Returns:
            One array per fetched output alias.

        Raises:
            KeyError: For an unknown signature, input or output alias.
            SessionRunError: With TensorFlow's code and message if the run fails (a
                variable that was never restored: `Could not find variable ...`).
        """
        signature = self.signature_defs[signature_name]
        aliases = list(output_aliases) or sorted(signature.outputs)
        feeds = [
            (self._session.output(signature.inputs[alias].name), array, tf_dtype(array))
            for alias, array in ((alias, np.asarray(value)) for alias, value in inputs.items())
        ]
        fetches = [self._session.output(signature.outputs[alias].name) for alias in aliases]
        try:
            values = self._session.run(feeds, fetches)
        except tf_c_api.CApiError as error:
            raise SessionRunError(error.code, error.message) from error
        return dict(zip(aliases, values, strict=True))

    def close(self) -> None:
        """Frees the session now (it is also freed when the bundle is garbage collected)."""
        self._session.close()
