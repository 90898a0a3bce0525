"""TensorProto <-> numpy conversion, as the real server writes and reads tensors.

The real server answers with typed fields (`string_val`, `float_val`, `int_val`, ...), not
`tensor_content` (`Tensor::AsProtoField`), and reads either form. Type names in error
messages follow TensorFlow's `DataTypeString` ("float", "string", "int32").
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

# dtype enum -> name of the repeated TensorProto field that holds its values.
_TYPED_FIELDS: dict[int, str] = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
}


def dtype_name(dtype: int) -> str:
    """Returns TensorFlow's `DataTypeString` for a dtype enum, e.g. 1 -> "float"."""
    try:
        return types_pb2.DataType.Name(dtype)[3:].lower()
    except ValueError:
        return f"unknown dtype {dtype}"


def to_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Parses a TensorProto into a numpy array.

    Args:
        proto: A tensor in typed-field or `tensor_content` form.

    Returns:
        The array; strings come back as an object array of `bytes`.

    Raises:
        ValueError: The proto is not a valid dense tensor (the real server's
            "tensor parsing error").
    """
    if proto.dtype == types_pb2.DT_INVALID or proto.dtype >= 100:
        raise ValueError(f"unsupported dtype {proto.dtype}")
    if proto.tensor_shape.unknown_rank or any(d.size < 0 for d in proto.tensor_shape.dim):
        raise ValueError("the shape must be fully defined")
    try:
        array = tf.make_ndarray(proto)
    except Exception as error:  # noqa: BLE001 - any parse failure is a bad request.
        raise ValueError(str(error)) from error
    expected = tuple(d.size for d in proto.tensor_shape.dim)
    if tuple(array.shape) != expected:
        raise ValueError(f"shape {array.shape} does not match {expected}")
    return array


def from_ndarray(array: np.ndarray, dtype: int | None = None) -> tensor_pb2.TensorProto:
    """Builds a TensorProto with typed value fields, like `Tensor::AsProtoField`.

    Args:
        array: The values (numpy array, or anything `np.asarray` accepts).
        dtype: The TensorFlow dtype enum; inferred from the array when None.

    Returns:
        The tensor proto.
    """
    array = np.asarray(array)
    if dtype is None:
        dtype = tf.as_dtype(array.dtype).as_datatype_enum
    field = _TYPED_FIELDS.get(dtype)
    if field is None:
        # Half, bfloat16, complex and friends: TensorFlow's own encoder.
        return tf.make_tensor_proto(array, dtype=tf.dtypes.as_dtype(dtype))
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in array.shape:
        proto.tensor_shape.dim.add().size = int(size)
    flat = array.reshape(-1)
    if dtype == types_pb2.DT_STRING:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in flat)
    else:
        getattr(proto, field).extend(flat.tolist())
    return proto
