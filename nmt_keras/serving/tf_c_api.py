"""ctypes bindings to the TensorFlow C API in the installed wheel: the C++ session loader.

TensorFlow Serving loads a SavedModel with the C++ `SavedModelBundle` loader
(`tensorflow/cc/saved_model/loader.cc`): it imports the "serve" MetaGraph into a
`Session`, runs the saver's restore op and the init op, and then runs every request with
`Session::Run`. The TensorFlow wheel ships that loader behind its C API
(`libtensorflow_cc.so.2`: `TF_LoadSessionFromSavedModel`, `TF_SessionRun`,
`TF_LoadLibrary`), so this module reaches the server's own code path from Python without a
compiler and without `tf.saved_model.load`, which takes another path (the object graph).

Only what a session bundle needs is bound: status, library loading, graph, session,
tensors of numeric and string dtypes. Every call that takes a `TF_Status` is checked and
raises `CApiError` with TensorFlow's code and message.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import importlib.util
import os
from collections.abc import Iterable, Sequence

import numpy as np
from tensorflow.core.framework import types_pb2

from nmt_keras.serving.tensors import NUMPY_DTYPES

#: TF_DataType enums are DataType enums (tensorflow/c/tf_datatype.h).
TF_STRING = types_pb2.DT_STRING
#: sizeof(TF_TString) (tensorflow/core/platform/ctstring_internal.h).
TSTRING_SIZE = 24
#: TF_Code of an OK status.
TF_OK = 0


class CApiError(RuntimeError):
    """A TensorFlow C API call failed.

    Attributes:
        code: The TF_Code (same numbering as gRPC status codes).
        message: TensorFlow's message.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Buffer(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("length", ctypes.c_size_t),
        ("data_deallocator", ctypes.c_void_p),
    ]


class _Output(ctypes.Structure):
    _fields_ = [("oper", ctypes.c_void_p), ("index", ctypes.c_int)]


class _TString(ctypes.Structure):
    _fields_ = [("raw", ctypes.c_char * TSTRING_SIZE)]


_P = ctypes.c_void_p
# name -> (restype, argtypes) of every function used.
_PROTOTYPES = {
    "TF_NewStatus": (_P, []),
    "TF_DeleteStatus": (None, [_P]),
    "TF_GetCode": (ctypes.c_int, [_P]),
    "TF_Message": (ctypes.c_char_p, [_P]),
    "TF_LoadLibrary": (_P, [ctypes.c_char_p, _P]),
    "TF_NewGraph": (_P, []),
    "TF_DeleteGraph": (None, [_P]),
    "TF_GraphOperationByName": (_P, [_P, ctypes.c_char_p]),
    "TF_NewSessionOptions": (_P, []),
    "TF_DeleteSessionOptions": (None, [_P]),
    "TF_SetConfig": (None, [_P, ctypes.c_void_p, ctypes.c_size_t, _P]),
    "TF_NewBuffer": (ctypes.POINTER(_Buffer), []),
    "TF_DeleteBuffer": (None, [ctypes.POINTER(_Buffer)]),
    "TF_LoadSessionFromSavedModel": (
        _P,
        [_P, _P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, _P]
        + [ctypes.POINTER(_Buffer), _P],
    ),
    "TF_CloseSession": (None, [_P, _P]),
    "TF_DeleteSession": (None, [_P, _P]),
    "TF_SessionRun": (
        None,
        [_P, _P, ctypes.POINTER(_Output), ctypes.POINTER(_P), ctypes.c_int]
        + [ctypes.POINTER(_Output), ctypes.POINTER(_P), ctypes.c_int]
        + [ctypes.POINTER(_P), ctypes.c_int, _P, _P],
    ),
    "TF_AllocateTensor": (
        _P,
        [ctypes.c_int, ctypes.POINTER(ctypes.c_int64), ctypes.c_int, ctypes.c_size_t],
    ),
    "TF_DeleteTensor": (None, [_P]),
    "TF_TensorType": (ctypes.c_int, [_P]),
    "TF_NumDims": (ctypes.c_int, [_P]),
    "TF_Dim": (ctypes.c_int64, [_P, ctypes.c_int]),
    "TF_TensorByteSize": (ctypes.c_size_t, [_P]),
    "TF_TensorData": (_P, [_P]),
    "TF_StringInit": (None, [_P]),
    "TF_StringCopy": (None, [_P, ctypes.c_char_p, ctypes.c_size_t]),
    "TF_StringGetDataPointer": (_P, [_P]),
    "TF_StringGetSize": (ctypes.c_size_t, [_P]),
    "TF_StringDealloc": (None, [_P]),
}


def _package_dir(package: str) -> str:
    """The directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CApiError(5, f"The Python package {package} is not installed.")
    return list(spec.submodule_search_locations)[0]


@functools.cache
def library() -> ctypes.CDLL:
    """The wheel's `libtensorflow_cc.so.2`, with the prototypes of the bound functions set."""
    path = os.path.join(_package_dir("tensorflow"), "libtensorflow_cc.so.2")
    lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    for name, (restype, argtypes) in _PROTOTYPES.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


class Status:
    """A `TF_Status`, usable as a context manager that raises on a failed call."""

    def __init__(self) -> None:
        self._lib = library()
        self.pointer = self._lib.TF_NewStatus()

    def check(self) -> None:
        """Raises `CApiError` if the last call that used this status failed."""
        code = self._lib.TF_GetCode(self.pointer)
        if code != TF_OK:
            message = self._lib.TF_Message(self.pointer).decode("utf-8", "replace")
            raise CApiError(code, message)

    def __enter__(self) -> Status:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._lib.TF_DeleteStatus(self.pointer)


def tensorflow_text_op_libraries() -> list[str]:
    """The op libraries of the installed tensorflow-text (TF Serving links its `ops_lib`)."""
    return sorted(glob.glob(os.path.join(_package_dir("tensorflow_text"), "python/ops/*.so")))


@functools.cache
def load_op_libraries(paths: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Registers custom op libraries with `TF_LoadLibrary`, once per process.

    Args:
        paths: Shared objects to load; the tensorflow-text op libraries by default.

    Returns:
        The paths loaded.

    Raises:
        CApiError: If a library cannot be loaded.
    """
    paths = tuple(paths) if paths is not None else tuple(tensorflow_text_op_libraries())
    lib = library()
    for path in paths:
        with Status() as status:
            lib.TF_LoadLibrary(path.encode(), status.pointer)
            status.check()
    return paths


def new_tensor(array: np.ndarray, dtype: int) -> int:
    """Copies `array` into a new `TF_Tensor*` of TF_DataType `dtype` (caller deletes it).

    String tensors take an object array of `bytes` (or `str`, encoded as UTF-8).

    Raises:
        ValueError: If `dtype` is not a supported TF_DataType.
    """
    lib = library()
    dims = (ctypes.c_int64 * array.ndim)(*array.shape)
    if dtype == TF_STRING:
        flat = array.reshape(-1)
        tensor = lib.TF_AllocateTensor(dtype, dims, array.ndim, TSTRING_SIZE * flat.size)
        strings = (_TString * flat.size).from_address(lib.TF_TensorData(tensor))
        for element, value in zip(strings, flat, strict=True):
            data = value if isinstance(value, bytes) else str(value).encode("utf-8")
            lib.TF_StringInit(ctypes.addressof(element))
            lib.TF_StringCopy(ctypes.addressof(element), data, len(data))
        return tensor
    numpy_dtype = NUMPY_DTYPES.get(dtype)
    if numpy_dtype is None:
        raise ValueError(f"Expected a numeric or string TF_DataType. Received: dtype={dtype}")
    values = np.ascontiguousarray(array, dtype=numpy_dtype)
    tensor = lib.TF_AllocateTensor(dtype, dims, array.ndim, values.nbytes)
    ctypes.memmove(lib.TF_TensorData(tensor), values.ctypes.data, values.nbytes)
    return tensor


def delete_tensor(tensor: int, owned_strings: bool) -> None:
    """Frees a `TF_Tensor*`; `owned_strings` for string tensors made by `new_tensor`."""
    lib = library()
    if owned_strings and lib.TF_TensorType(tensor) == TF_STRING:
        count = lib.TF_TensorByteSize(tensor) // TSTRING_SIZE
        strings = (_TString * count).from_address(lib.TF_TensorData(tensor))
        for element in strings:
            lib.TF_StringDealloc(ctypes.addressof(element))
    lib.TF_DeleteTensor(tensor)


def tensor_to_ndarray(tensor: int) -> np.ndarray:
    """Copies a `TF_Tensor*` into a numpy array (strings: an object array of `bytes`).

    Raises:
        ValueError: If the tensor's dtype has no numpy equivalent here.
    """
    lib = library()
    shape = tuple(lib.TF_Dim(tensor, i) for i in range(lib.TF_NumDims(tensor)))
    dtype = lib.TF_TensorType(tensor)
    data = lib.TF_TensorData(tensor)
    if dtype == TF_STRING:
        count = int(np.prod(shape, dtype=np.int64))
        strings = (_TString * count).from_address(data) if count else []
        values = [
            ctypes.string_at(
                lib.TF_StringGetDataPointer(ctypes.addressof(s)),
                lib.TF_StringGetSize(ctypes.addressof(s)),
            )
            for s in strings
        ]
        array = np.empty(count, dtype=object)
        array[:] = values
        return array.reshape(shape)
    numpy_dtype = NUMPY_DTYPES.get(dtype)
    if numpy_dtype is None:
        raise ValueError(f"Cannot convert a tensor of TF_DataType {dtype} to numpy.")
    size = lib.TF_TensorByteSize(tensor)
    return np.frombuffer(ctypes.string_at(data, size), dtype=numpy_dtype).reshape(shape)


class Session:
    """A session loaded by `TF_LoadSessionFromSavedModel`, with its graph.

    Args:
        export_dir: The SavedModel directory.
        tags: The MetaGraph's tags ("serve" for TF Serving).
        config: A serialized `ConfigProto` for the session, or empty for the defaults.

    Attributes:
        meta_graph_def: The serialized `MetaGraphDef` the loader imported.

    Raises:
        CApiError: With TensorFlow's message if the loader fails (a missing op, an
            unreadable checkpoint, a missing tag, ...).
    """

    def __init__(self, export_dir: str, tags: Sequence[str], config: bytes = b"") -> None:
        self._lib = lib = library()
        self._graph = lib.TF_NewGraph()
        self._session = None
        options = lib.TF_NewSessionOptions()
        meta_graph = lib.TF_NewBuffer()
        try:
            with Status() as status:
                if config:
                    lib.TF_SetConfig(options, config, len(config), status.pointer)
                    status.check()
                tag_array = (ctypes.c_char_p * len(tags))(*(tag.encode() for tag in tags))
                session = lib.TF_LoadSessionFromSavedModel(
                    options,
                    None,
                    os.fspath(export_dir).encode(),
                    tag_array,
                    len(tags),
                    self._graph,
                    meta_graph,
                    status.pointer,
                )
                status.check()
            self._session = session
            self.meta_graph_def = ctypes.string_at(
                meta_graph.contents.data, meta_graph.contents.length
            )
        except BaseException:
            lib.TF_DeleteGraph(self._graph)
            raise
        finally:
            lib.TF_DeleteBuffer(meta_graph)
            lib.TF_DeleteSessionOptions(options)

    def output(self, tensor_name: str) -> _Output:
        """The graph endpoint of a tensor name such as `serve_text:0`.

        Raises:
            KeyError: If the graph has no such operation.
        """
        op_name, _, index = tensor_name.partition(":")
        operation = self._lib.TF_GraphOperationByName(self._graph, op_name.encode())
        if not operation:
            raise KeyError(f"The graph has no operation {op_name!r} (tensor {tensor_name}).")
        return _Output(operation, int(index or 0))

    def run(
        self,
        feeds: Iterable[tuple[_Output, np.ndarray, int]],
        fetches: Sequence[_Output],
    ) -> list[np.ndarray]:
        """One `Session::Run`: feeds `(endpoint, array, TF_DataType)`, returns the fetches.

        Raises:
            CApiError: With TensorFlow's code and message if the run fails.
        """
        feeds = list(feeds)
        inputs = (_Output * len(feeds))(*(endpoint for endpoint, _, _ in feeds))
        input_values = (_P * len(feeds))()
        outputs = (_Output * len(fetches))(*fetches)
        output_values = (_P * len(fetches))()
        try:
            for i, (_, array, dtype) in enumerate(feeds):
                input_values[i] = new_tensor(array, dtype)
            with Status() as status:
                self._lib.TF_SessionRun(
                    self._session,
                    None,
                    inputs,
                    input_values,
                    len(feeds),
                    outputs,
                    output_values,
                    len(fetches),
                    None,
                    0,
                    None,
                    status.pointer,
                )
                status.check()
            return [tensor_to_ndarray(value) for value in output_values]
        finally:
            for value in input_values:
                if value:
                    delete_tensor(value, owned_strings=True)
            for value in output_values:
                if value:
                    delete_tensor(value, owned_strings=False)

    def close(self) -> None:
        """Closes and deletes the session and its graph (idempotent)."""
        if self._session is None:
            return
        session, self._session = self._session, None
        with Status() as status:
            self._lib.TF_CloseSession(session, status.pointer)
            self._lib.TF_DeleteSession(session, status.pointer)
        self._lib.TF_DeleteGraph(self._graph)

    def __del__(self) -> None:
        self.close()
