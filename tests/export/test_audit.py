import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from nmt_keras.export import AuditError, assert_servable, audit_saved_model
from nmt_keras.export.audit import NEWER_TF_TEXT_OPS

SPEC = tf.TensorSpec([None], tf.float32, name="x")


def save(module, path):
    tf.saved_model.save(module, str(path), signatures=module.f.get_concrete_function())
    return path


class Doubler(tf.Module):
    @tf.function(input_signature=[SPEC])
    def f(self, x):
        return {"y": 2.0 * x}


class PyFunction(tf.Module):
    @tf.function(input_signature=[SPEC])
    def f(self, x):
        return {"y": tf.py_function(lambda v: 2.0 * v, [x], tf.float32)}


class NumpyFunction(tf.Module):
    @tf.function(input_signature=[SPEC])
    def f(self, x):
        return {"y": tf.numpy_function(lambda v: (2.0 * v).astype(np.float32), [x], tf.float32)}


class JitCompiled(tf.Module):
    @tf.function(input_signature=[SPEC], jit_compile=True)
    def f(self, x):
        return {"y": 2.0 * x}


def test_clean_saved_model_passes_with_op_counts(tmp_path):
    report = assert_servable(save(Doubler(), tmp_path / "clean"))
    assert report.ok and report.violations == ()
    assert report.op_counts["Mul"] >= 1 and report.op_counts["Placeholder"] >= 1
    assert report.functions and "OK" in report.summary()


@pytest.mark.parametrize(("module", "op"), [(PyFunction, "EagerPyFunc"), (NumpyFunction, "PyFunc")])
def test_python_function_fails_naming_the_op_and_function(tmp_path, module, op):
    path = save(module(), tmp_path / "python")
    report = audit_saved_model(path)
    assert not report.ok
    assert {violation.op for violation in report.violations} == {op}
    assert report.violations[0].function.startswith("__inference_f")
    with pytest.raises(AuditError, match=op) as info:
        report.check()
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value) and report.violations[0].function in str(info.value)
    with pytest.raises(AuditError, match=op):
        assert_servable(path)


def test_jit_compiled_function_fails(tmp_path):
    report = audit_saved_model(save(JitCompiled(), tmp_path / "jit"))
    assert "_XlaMustCompile" in {violation.op for violation in report.violations}
    with pytest.raises(AuditError, match="_XlaMustCompile.*jit_compile=True"):
        report.check()


def write_graph(path, top_level_ops, function_ops):
    """A hand-made saved_model.pb: one meta graph, one library function."""
    saved_model = saved_model_pb2.SavedModel()
    graph = saved_model.meta_graphs.add().graph_def
    for index, op in enumerate(top_level_ops):
        graph.node.add(name=f"n{index}", op=op)
    function = graph.library.function.add()
    function.signature.name = "__inference_decode_1"
    for index, op in enumerate(function_ops):
        function.node_def.add(name=f"f{index}", op=op)
    path.mkdir()
    (path / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    return path


def test_denied_ops_anywhere_in_the_graph(tmp_path):
    ops = ["Addons>GatherTree", "XlaDynamicUpdateSlice", *sorted(NEWER_TF_TEXT_OPS)]
    path = write_graph(tmp_path / "denied", ["Placeholder", "MyCustomOp"], ["AddV2", *ops])
    report = audit_saved_model(path, run=False)
    found = {(violation.op, violation.function) for violation in report.violations}
    assert found == {("MyCustomOp", "<graph>"), *((op, "__inference_decode_1") for op in ops)}
    assert report.op_counts["AddV2"] == 1
    with pytest.raises(AuditError, match="MyCustomOp"):
        report.check()


def test_calls_of_library_functions_are_not_ops(tmp_path):
    path = write_graph(tmp_path / "calls", ["__inference_decode_1"], ["SentencepieceOp"])
    report = audit_saved_model(path, run=False).check()
    assert report.op_counts == {"SentencepieceOp": 1}


def test_missing_saved_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="saved_model.pb"):
        audit_saved_model(tmp_path)
