"""TensorProto <-> numpy conversion: the one implementation, for the server and the client.

Written on the generated protos (`tensorflow.core.framework.*_pb2`) and numpy only, without
TensorFlow's Python API (`tf.make_ndarray`, `tf.make_tensor_proto`) or its eager runtime,
following TensorFlow's C++ `Tensor::FromProto` and `Tensor::AsProtoField`:

* `to_ndarray` reads either form of a dense tensor: `tensor_content` (the values' raw
  little-endian bytes; it wins when set) or the dtype's typed repeated field (`float_val`,
  `int_val`, ...). A typed field holds every value, or one value that fills the whole tensor
  (TensorFlow's form of a constant: shape `[3]` with one `float_val` is three copies), or none
  (zeros, empty strings). Any other count is an error, although TensorFlow would pad it with
  the last value.
* `from_ndarray` writes the typed fields, as the real server answers.

Supported dtypes: float, double, half (bit patterns in `half_val`), int8/16/32/64,
uint8/16/32/64, bool and string (`string_val` only; strings come back as an object array of
`bytes`). Every malformed or unsupported tensor raises a `ValueError` saying why. Type names
in messages follow TensorFlow's `DataTypeString` ("float", "string", "int32").
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from tensorflow.core.framework import tensor_pb2, types_pb2

# Numeric dtype enum -> (numpy dtype, layout of its values in `tensor_content`, typed field).
_NUMERIC: dict[int, tuple[np.dtype, np.dtype, str]] = {
    types_pb2.DT_FLOAT: (np.dtype(np.float32), np.dtype("<f4"), "float_val"),
    types_pb2.DT_DOUBLE: (np.dtype(np.float64), np.dtype("<f8"), "double_val"),
    types_pb2.DT_HALF: (np.dtype(np.float16), np.dtype("<f2"), "half_val"),
    types_pb2.DT_INT8: (np.dtype(np.int8), np.dtype("i1"), "int_val"),
    types_pb2.DT_INT16: (np.dtype(np.int16), np.dtype("<i2"), "int_val"),
    types_pb2.DT_INT32: (np.dtype(np.int32), np.dtype("<i4"), "int_val"),
    types_pb2.DT_INT64: (np.dtype(np.int64), np.dtype("<i8"), "int64_val"),
    types_pb2.DT_UINT8: (np.dtype(np.uint8), np.dtype("u1"), "int_val"),
    types_pb2.DT_UINT16: (np.dtype(np.uint16), np.dtype("<u2"), "int_val"),
    types_pb2.DT_UINT32: (np.dtype(np.uint32), np.dtype("<u4"), "uint32_val"),
    types_pb2.DT_UINT64: (np.dtype(np.uint64), np.dtype("<u8"), "uint64_val"),
    # One byte a value; any non-zero byte is true.
    types_pb2.DT_BOOL: (np.dtype(np.bool_), np.dtype("u1"), "bool_val"),
}
#: Numeric dtype enum -> numpy dtype (native byte order); strings are object arrays.
NUMPY_DTYPES: dict[int, np.dtype] = {enum: dtype for enum, (dtype, _, _) in _NUMERIC.items()}
# Numpy dtype (native byte order) -> dtype enum, for `from_ndarray` without a dtype.
_ENUMS = {numpy_dtype: enum for enum, numpy_dtype in NUMPY_DTYPES.items()}
# Typed field -> dtype of the values it holds (`half_val`: the float16 bits in an int32).
_FIELD_DTYPES = {
    "float_val": np.dtype(np.float32),
    "double_val": np.dtype(np.float64),
    "half_val": np.dtype(np.int32),
    "int_val": np.dtype(np.int32),
    "int64_val": np.dtype(np.int64),
    "uint32_val": np.dtype(np.uint32),
    "uint64_val": np.dtype(np.uint64),
    "bool_val": np.dtype(np.bool_),
}
# Numpy dtype kind of a numeric dtype -> the array kinds `from_ndarray` converts to it.
_CONVERTIBLE_KINDS = {"b": "b", "i": "biu", "u": "biu", "f": "biuf"}


def dtype_name(dtype: int) -> str:
    """Returns TensorFlow's `DataTypeString` for a dtype enum, e.g. 1 -> "float"."""
    try:
        return types_pb2.DataType.Name(dtype)[3:].lower()
    except ValueError:
        return f"unknown dtype {dtype}"


def to_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Parses a TensorProto into a numpy array.

    Args:
        proto: A dense tensor in typed-field or `tensor_content` form.

    Returns:
        A new, writeable array of the proto's shape, in native byte order; strings come back
        as an object array of `bytes`.

    Raises:
        ValueError: The proto is not a valid dense tensor of a supported dtype (the real
            server's "tensor parsing error"): an unsupported dtype, a shape of unknown rank or
            with an unknown (negative) dimension, a string tensor in `tensor_content`, or a
            number of values (or of `tensor_content` bytes) that does not fit the shape.
    """
    if proto.dtype != types_pb2.DT_STRING and proto.dtype not in _NUMERIC:
        raise ValueError(f"unsupported dtype: {dtype_name(proto.dtype)}")
    if proto.tensor_shape.unknown_rank:
        raise ValueError("the shape must be fully defined; it has unknown rank")
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise ValueError(f"the shape must be fully defined; it is {list(shape)}")
    if proto.dtype == types_pb2.DT_STRING:
        if proto.tensor_content:
            raise ValueError("string tensors in tensor_content are not supported; use string_val")
        values = np.empty(len(proto.string_val), dtype=object)
        values[:] = list(proto.string_val)
        return _fill(values, shape, "string_val", b"")
    numpy_dtype, content_dtype, field = _NUMERIC[proto.dtype]
    if proto.tensor_content:
        expected = math.prod(shape) * content_dtype.itemsize
        if len(proto.tensor_content) != expected:
            raise ValueError(
                f"tensor_content has {len(proto.tensor_content)} bytes for shape "
                f"{list(shape)} of {dtype_name(proto.dtype)}; expected {expected}"
            )
        content = np.frombuffer(proto.tensor_content, dtype=content_dtype)
        return content.astype(numpy_dtype).reshape(shape)
    values = np.asarray(getattr(proto, field), dtype=_FIELD_DTYPES[field])
    if proto.dtype == types_pb2.DT_HALF:
        values = values.astype(np.uint16).view(np.float16)
    else:  # Narrower integers wrap, like TensorFlow's static_cast.
        values = values.astype(numpy_dtype)
    return _fill(values, shape, field, 0)


def from_ndarray(array: npt.ArrayLike, dtype: int | None = None) -> tensor_pb2.TensorProto:
    """Builds a TensorProto with typed value fields, like `Tensor::AsProtoField`.

    Args:
        array: The values (numpy array, or anything `np.asarray` accepts). Strings are `bytes`
            or `str` (encoded as UTF-8), in an object, bytes or unicode array or in (nested)
            lists; a list keeps its strings' trailing NULs, which a numpy bytes array loses.
        dtype: The TensorFlow dtype enum; inferred from the array when None (object, bytes and
            unicode arrays are strings).

    Returns:
        The tensor proto.

    Raises:
        ValueError: The dtype is unsupported (or none fits the array's), or the values do not
            convert to it: strings for a numeric dtype or the reverse, floats for an integer
            dtype, integers out of its range, numbers for bool.
    """
    if not isinstance(array, np.ndarray):
        values = array
        array = np.asarray(values)
        if array.dtype.kind in "SU":  # Fixed-width numpy strings drop trailing NULs.
            array = np.asarray(values, dtype=object)
    if dtype is None:
        dtype = _dtype_of(array)
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    flat = array.reshape(-1)
    if dtype == types_pb2.DT_STRING:
        if flat.size and flat.dtype.kind not in "OSU":
            raise ValueError(f"cannot convert {flat.dtype} values to string")
        proto.string_val.extend(_to_bytes(value) for value in flat)
        return proto
    if dtype not in _NUMERIC:
        raise ValueError(f"unsupported dtype: {dtype_name(dtype)}")
    numpy_dtype, _, field = _NUMERIC[dtype]
    if flat.size and flat.dtype.kind not in _CONVERTIBLE_KINDS[numpy_dtype.kind]:
        raise ValueError(f"cannot convert {flat.dtype} values to {dtype_name(dtype)}")
    values = flat.astype(numpy_dtype)
    if flat.dtype.kind in "iu" and numpy_dtype.kind in "iu" and not np.array_equal(values, flat):
        raise ValueError(f"values out of the range of {dtype_name(dtype)}")
    if dtype == types_pb2.DT_HALF:
        values = values.view(np.uint16)
    getattr(proto, field).extend(values.tolist())
    return proto


def _fill(values: np.ndarray, shape: tuple[int, ...], field: str, zero: object) -> np.ndarray:
    """Shapes the values of a typed field: all of them, or one (or none) filling the shape."""
    size = math.prod(shape)
    if len(values) == size:
        return values.reshape(shape)
    if len(values) > 1 or size == 0:
        raise ValueError(
            f"{field} has {len(values)} values for shape {list(shape)}; expected {size} "
            "(or 1 value to fill it, or none for zeros)"
        )
    array = np.empty(shape, dtype=values.dtype)
    # `fill`, not `np.full`: a `bytes` fill must stay as it is (numpy strips trailing NULs).
    array.fill(values[0] if len(values) else zero)
    return array


def _dtype_of(array: np.ndarray) -> int:
    """The dtype enum for an array's values."""
    if array.dtype.kind in "OSU":
        return types_pb2.DT_STRING
    enum = _ENUMS.get(array.dtype.newbyteorder("="))
    if enum is None:
        raise ValueError(f"no supported TensorFlow dtype for numpy dtype {array.dtype}")
    return enum


def _to_bytes(value: object) -> bytes:
    """A string tensor element as bytes; `str` is encoded as UTF-8."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError(f"cannot convert {type(value).__name__} to string; expected bytes or str")
