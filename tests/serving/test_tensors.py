"""Tests of the TensorProto <-> numpy conversion shared by the server and the client."""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from nmt_keras.serving import tensors
from nmt_keras.serving.tensors import dtype_name, from_ndarray, to_ndarray


def _ints(dtype: type) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.array([[info.min, 0, 1], [2, info.max - 1, info.max]], dtype=dtype)


# dtype enum -> (typed field, sample values with the extremes of the dtype).
SAMPLES = {
    types_pb2.DT_FLOAT: (
        "float_val",
        np.array([[0.0, -1.5, 3.25e38], [np.inf, -np.inf, 1e-45]], np.float32),
    ),
    types_pb2.DT_DOUBLE: (
        "double_val",
        np.array([[0.1, -2.5e300, 5e-324], [np.inf, -0.0, 1 / 3]], np.float64),
    ),
    types_pb2.DT_HALF: (
        "half_val",
        np.array([[0.0, -1.5, 65504.0], [np.inf, 6e-8, 0.1]], np.float16),
    ),
    types_pb2.DT_INT8: ("int_val", _ints(np.int8)),
    types_pb2.DT_INT16: ("int_val", _ints(np.int16)),
    types_pb2.DT_INT32: ("int_val", _ints(np.int32)),
    types_pb2.DT_INT64: ("int64_val", _ints(np.int64)),
    types_pb2.DT_UINT8: ("int_val", _ints(np.uint8)),
    types_pb2.DT_UINT16: ("int_val", _ints(np.uint16)),
    types_pb2.DT_UINT32: ("uint32_val", _ints(np.uint32)),
    types_pb2.DT_UINT64: ("uint64_val", _ints(np.uint64)),
    types_pb2.DT_BOOL: ("bool_val", np.array([[True, False, True], [False, False, True]])),
    types_pb2.DT_STRING: (
        "string_val",
        np.array([[b"", b"a\x00", "Grüße".encode()], [b"\xff\xfe", b" ", b"x" * 300]], object),
    ),
}
NUMERIC = [dtype for dtype in SAMPLES if dtype != types_pb2.DT_STRING]


def _ids(dtypes: list[int]) -> list[str]:
    return [dtype_name(dtype) for dtype in dtypes]


def _proto(dtype: int, shape: list[int], **fields: object) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype, **fields)
    for size in shape:
        proto.tensor_shape.dim.add().size = size
    return proto


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal values (NaN, -0.0 and all), shape and dtype."""
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    if expected.dtype == object:
        assert actual.tolist() == expected.tolist()
        assert all(type(value) is bytes for value in actual.reshape(-1))
    else:
        assert actual.tobytes() == expected.tobytes(), (actual, expected)


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(SAMPLES), ids=_ids(list(SAMPLES)))
def test_round_trip_in_typed_fields(dtype):
    field, values = SAMPLES[dtype]
    proto = from_ndarray(values)
    assert proto.dtype == dtype
    assert [dim.size for dim in proto.tensor_shape.dim] == [2, 3]
    assert not proto.tensor_content
    assert len(getattr(proto, field)) == values.size
    decoded = to_ndarray(proto)
    assert_same(decoded, values)
    assert decoded.flags.writeable and decoded.flags.c_contiguous


@pytest.mark.parametrize("dtype", NUMERIC, ids=_ids(NUMERIC))
def test_round_trip_in_tensor_content(dtype):
    _, values = SAMPLES[dtype]
    little_endian = values.astype(values.dtype.newbyteorder("<"))
    proto = _proto(dtype, [2, 3], tensor_content=little_endian.tobytes())
    decoded = to_ndarray(proto)
    assert_same(decoded, values)
    assert decoded.dtype.isnative and decoded.flags.writeable


def test_tensor_content_wins_over_typed_fields():
    proto = _proto(types_pb2.DT_INT32, [2], tensor_content=np.array([5, 6], "<i4").tobytes())
    proto.int_val.extend([1, 2])
    np.testing.assert_array_equal(to_ndarray(proto), [5, 6])


def test_bool_tensor_content_is_one_byte_a_value():
    proto = _proto(types_pb2.DT_BOOL, [3], tensor_content=bytes([0, 1, 7]))
    assert to_ndarray(proto).tolist() == [False, True, True]


def test_half_val_holds_the_bits():
    proto = from_ndarray(np.array([1.0, -2.0], np.float16))
    assert list(proto.half_val) == [0x3C00, 0xC000]


@pytest.mark.parametrize("dtype", list(SAMPLES), ids=_ids(list(SAMPLES)))
def test_scalars_and_empty_tensors(dtype):
    _, values = SAMPLES[dtype]
    scalar = values.reshape(-1)[2:3].reshape(())
    assert_same(to_ndarray(from_ndarray(scalar)), scalar)
    empty = values[:0]  # shape (0, 3)
    proto = from_ndarray(empty)
    assert [dim.size for dim in proto.tensor_shape.dim] == [0, 3]
    assert_same(to_ndarray(proto), empty)


def test_numbers_convert_to_the_given_dtype():
    proto = from_ndarray([1, 2], types_pb2.DT_FLOAT)
    assert list(proto.float_val) == [1.0, 2.0]
    assert_same(to_ndarray(proto), np.array([1, 2], np.float32))
    assert_same(to_ndarray(from_ndarray([300, -1], types_pb2.DT_INT16)), np.array([300, -1], "i2"))
    assert_same(to_ndarray(from_ndarray(True, types_pb2.DT_INT8)), np.array(1, np.int8))
    assert_same(to_ndarray(from_ndarray([0.5], types_pb2.DT_HALF)), np.array([0.5], np.float16))


def test_big_endian_arrays_are_written_by_value():
    values = np.array([1.5, -2.0], dtype=">f8")
    proto = from_ndarray(values)
    assert proto.dtype == types_pb2.DT_DOUBLE
    assert list(proto.double_val) == [1.5, -2.0]


@pytest.mark.parametrize(
    "values",
    [["Grüße", "a"], np.array(["Grüße", "a"]), np.array([b"Gr\xc3\xbc\xc3\x9fe", b"a"])],
    ids=["list of str", "unicode array", "bytes array"],
)
def test_strings_of_every_kind_become_utf8_bytes(values):
    proto = from_ndarray(values)
    assert proto.dtype == types_pb2.DT_STRING
    assert list(proto.string_val) == ["Grüße".encode(), b"a"]
    decoded = to_ndarray(proto)
    assert decoded.dtype == object and decoded.tolist() == ["Grüße".encode(), b"a"]


def test_lists_of_strings_keep_trailing_nuls():
    proto = from_ndarray([[b"a\x00", "b\x00"]])
    assert [dim.size for dim in proto.tensor_shape.dim] == [1, 2]
    assert list(proto.string_val) == [b"a\x00", b"b\x00"]


# -- one value for many, and none ------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(SAMPLES), ids=_ids(list(SAMPLES)))
def test_one_value_fills_the_shape(dtype):
    field, values = SAMPLES[dtype]
    one = from_ndarray(values.reshape(-1)[1:2])
    proto = _proto(dtype, [2, 3], **{field: getattr(one, field)})
    decoded = to_ndarray(proto)
    expected = np.empty((2, 3), dtype=values.dtype)
    expected.fill(values.reshape(-1)[1])  # not np.full, which strips the NUL of b"a\x00"
    assert_same(decoded, expected)
    assert decoded.flags.writeable


def test_one_string_value_keeps_trailing_nuls():
    proto = _proto(types_pb2.DT_STRING, [3], string_val=[b"a\x00"])
    assert to_ndarray(proto).tolist() == [b"a\x00"] * 3


def test_no_values_is_zeros():
    assert_same(to_ndarray(_proto(types_pb2.DT_FLOAT, [2])), np.zeros(2, np.float32))
    assert_same(to_ndarray(_proto(types_pb2.DT_BOOL, [1, 2])), np.zeros((1, 2), bool))
    strings = to_ndarray(_proto(types_pb2.DT_STRING, [2]))
    assert strings.dtype == object and strings.tolist() == [b"", b""]


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proto", "message"),
    [
        (_proto(types_pb2.DT_FLOAT, [3], float_val=[1.0, 2.0]), "float_val has 2 values"),
        (_proto(types_pb2.DT_FLOAT, [2], float_val=[1.0, 2.0, 3.0]), "float_val has 3 values"),
        (_proto(types_pb2.DT_INT32, [0], int_val=[1]), r"for shape \[0\]; expected 0"),
        (_proto(types_pb2.DT_STRING, [1, 3], string_val=[b"a", b"b"]), "string_val has 2"),
        (_proto(types_pb2.DT_INT32, [2], tensor_content=b"\x00" * 7), "has 7 bytes"),
        (_proto(types_pb2.DT_HALF, [2], tensor_content=b"\x00" * 8), "expected 4"),
        (_proto(types_pb2.DT_STRING, [1], tensor_content=b"\x01a"), "tensor_content"),
        (_proto(types_pb2.DT_FLOAT, [2, -1]), r"fully defined; it is \[2, -1\]"),
        (
            tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape={"unknown_rank": True}),
            "unknown rank",
        ),
        (_proto(types_pb2.DT_BFLOAT16, [1], half_val=[0]), "unsupported dtype: bfloat16"),
        (_proto(types_pb2.DT_COMPLEX64, [1], scomplex_val=[1, 2]), "dtype: complex64"),
        (_proto(types_pb2.DT_FLOAT_REF, [1], float_val=[1]), "dtype: float_ref"),
        (_proto(types_pb2.DT_INVALID, [1]), "dtype: invalid"),
        (_proto(999, [1]), "dtype: unknown dtype 999"),
    ],
)
def test_invalid_protos(proto, message):
    with pytest.raises(ValueError, match=message):
        to_ndarray(proto)


@pytest.mark.parametrize(
    ("values", "dtype", "message"),
    [
        ([1.5], types_pb2.DT_INT32, "cannot convert float64 values to int32"),
        ([128], types_pb2.DT_INT8, "out of the range of int8"),
        ([-1], types_pb2.DT_UINT64, "out of the range of uint64"),
        (np.array([2**63], np.uint64), types_pb2.DT_INT64, "out of the range of int64"),
        ([1], types_pb2.DT_BOOL, "cannot convert int64 values to bool"),
        (np.array(["1"]), types_pb2.DT_FLOAT, "cannot convert <U1 values to float"),
        (["1"], types_pb2.DT_FLOAT, "cannot convert object values to float"),
        ([1.0], types_pb2.DT_STRING, "cannot convert float64 values to string"),
        (np.array([b"a", 1], object), types_pb2.DT_STRING, "cannot convert int to string"),
        ([1.0], types_pb2.DT_BFLOAT16, "unsupported dtype: bfloat16"),
        ([1j], None, "no supported TensorFlow dtype for numpy dtype complex128"),
    ],
)
def test_invalid_arrays(values, dtype, message):
    with pytest.raises(ValueError, match=message):
        from_ndarray(values, dtype)


def test_dtype_name_is_tensorflows_data_type_string():
    assert [dtype_name(d) for d in (1, 7, 3, 19, 14)] == [
        "float",
        "string",
        "int32",
        "half",
        "bfloat16",
    ]
    assert dtype_name(999) == "unknown dtype 999"


# -- agreement with TensorFlow ---------------------------------------------------------------

AGREEMENT = [
    np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
    np.array([[1e300, -0.0], [np.inf, 5e-324]]),
    np.array([-3, 0, 2**31 - 1], np.int32),
    np.array([2**62, -(2**63)], np.int64),
    np.array([[0, 255]], np.uint8),
    np.array([7, -128], np.int8),
    np.array([[65535]], np.uint16),
    np.array([2**64 - 1], np.uint64),
    np.array([0.5, -65504, 6e-8], np.float16),
    np.array([True, False]),
    np.array(3.5, np.float32),
    np.zeros((0, 2), np.int32),
    np.array([[b"a\x00b", b""], ["Grüße".encode(), b"\xff"]], object),
]


@pytest.mark.parametrize("values", AGREEMENT, ids=lambda values: str(values.dtype))
def test_reads_what_tensorflow_writes(values):
    proto = tf.make_tensor_proto(values)
    assert_same(to_ndarray(proto), values)


@pytest.mark.parametrize("values", AGREEMENT, ids=lambda values: str(values.dtype))
def test_writes_what_tensorflow_reads(values):
    proto = from_ndarray(values)
    assert proto.dtype == tf.make_tensor_proto(values).dtype
    decoded = tf.make_ndarray(proto)
    if values.dtype == object:  # TensorFlow's own strings are object arrays of bytes too.
        assert decoded.tolist() == values.tolist()
    else:
        assert_same(decoded, values)


@pytest.mark.parametrize(
    ("value", "dtype", "shape"),
    [(7, tf.int32, [2, 2]), (0.25, tf.float64, [3]), (b"x", tf.string, [2, 1]), (1, tf.half, [2])],
)
def test_reads_tensorflows_constants(value, dtype, shape):
    proto = tf.make_tensor_proto(value, dtype=dtype, shape=shape)
    np.testing.assert_array_equal(to_ndarray(proto), tf.make_ndarray(proto))
    assert to_ndarray(proto).shape == tuple(shape)


def test_uses_no_tensorflow_python_api():
    """Only the generated protos: no `tf.make_ndarray`, no eager runtime."""
    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(tensors))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported == {
        "__future__",
        "math",
        "numpy",
        "numpy.typing",
        "tensorflow.core.framework",
    }
