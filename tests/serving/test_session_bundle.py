"""SessionBundle: SavedModels through TensorFlow's C++ session loader, as TF Serving runs them."""

import os
import shutil

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from nmt_keras.cli import main
from nmt_keras.export import AuditError, assert_servable, audit_saved_model
from nmt_keras.serving import ServerError, ServerOptions, start_server
from nmt_keras.serving.session_bundle import SessionBundle, SessionLoadError, SessionRunError
from tests.serving.conftest import text_request
from tests.serving.fake_models import (
    install_version,
    rename_op,
    save_keras_behind_a_module,
    write_warmup,
)

TEXTS = ["", "a", "x" * 100, "中文 ünïcode", "nul\0byte"]


@pytest.fixture(scope="module")
def bundle(echo_saved_model):
    return SessionBundle(echo_saved_model)


@pytest.fixture(scope="module")
def keras_behind_a_module(tmp_path_factory):
    return save_keras_behind_a_module(str(tmp_path_factory.mktemp("keras_module") / "model"))


def strings(texts):
    return np.array([text.encode() for text in texts], dtype=object)


def test_strings_of_any_length_and_script_round_trip(bundle):
    out = bundle.run("serving_default", {"text": strings(TEXTS)})
    expected = tf.strings.upper(tf.constant(TEXTS)).numpy()
    assert list(out["text_bytes"]) == [text.encode() for text in TEXTS]
    np.testing.assert_array_equal(out["upper"], expected)
    assert out["length"].dtype == np.int32 and out["score"].dtype == np.float32
    np.testing.assert_array_equal(out["length"], [len(text.encode()) for text in TEXTS])


def test_numeric_inputs_outputs_and_fetched_subsets(bundle):
    x, y = np.array([1.5, -2.0], np.float32), np.array([0.5, 4.0], np.float32)
    np.testing.assert_array_equal(bundle.run("add", {"x": x, "y": y})["sum"], [2.0, 2.0])
    out = bundle.run("serving_default", {"text": strings(["ab"])}, output_aliases=["length"])
    assert list(out) == ["length"]


def test_an_empty_batch_gives_empty_outputs(bundle):
    out = bundle.run("serving_default", {"text": np.array([], dtype=object)})
    assert {name: value.shape for name, value in out.items()} == {
        "upper": (0,),
        "score": (0,),
        "length": (0,),
        "text_bytes": (0,),
    }


def test_a_wrong_dtype_fails_with_the_sessions_status(bundle):
    with pytest.raises(SessionRunError) as info:
        bundle.run("add", {"x": np.array([1], np.int32), "y": np.array([1.0], np.float32)})
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "Expects arg[0] to be float but int32 is provided" in info.value.message


def test_unknown_signature_is_a_key_error(bundle):
    with pytest.raises(KeyError):
        bundle.run("nope", {"text": strings(["a"])})


def test_a_directory_that_is_not_a_saved_model_is_refused_in_one_line(tmp_path):
    with pytest.raises(SessionLoadError, match="cannot load .*nope") as info:
        SessionBundle(tmp_path / "nope")
    assert "\n" not in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SessionLoadError, match="empty"):
        SessionBundle(tmp_path / "empty")


def test_keras_variables_reached_through_a_module_fail_in_the_session_loader(
    keras_behind_a_module,
):
    # The object-graph loader runs it; TF Serving's loader does not.
    loaded = tf.saved_model.load(keras_behind_a_module)
    assert loaded.signatures["serving_default"](text=tf.constant(["ab"]))["score"].shape == (1,)
    with pytest.raises(SessionRunError, match="Could not find variable") as info:
        SessionBundle(keras_behind_a_module).run("serving_default", {"text": strings(["ab"])})
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]


def test_the_audit_refuses_it_naming_the_variable(keras_behind_a_module, capsys):
    report = audit_saved_model(keras_behind_a_module)
    assert not report.ok and report.violations == ()
    assert "Could not find variable" in report.load_error
    with pytest.raises(AuditError, match="cannot run on TF Serving: .*Could not find variable"):
        report.check()
    assert main(["audit", keras_behind_a_module]) == 1
    out = capsys.readouterr().out
    assert "C++ session loader: FAILED: " in out and "Could not find variable" in out


def test_the_server_refuses_it_when_warmup_fails_and_serves_the_error_without_warmup(
    keras_behind_a_module, tmp_path
):
    warmed = install_version(keras_behind_a_module, str(tmp_path / "warmed"), 1)
    write_warmup(warmed, [text_request(["warm"])])
    with pytest.raises(ServerError, match="Could not find variable") as info:
        start_server(
            ServerOptions(port=0, model_name="m", model_base_path=str(tmp_path / "warmed"))
        )
    assert "\n" not in str(info.value)
    # Without warmup records TF Serving loads the version, and every Predict fails.
    install_version(keras_behind_a_module, str(tmp_path / "cold"), 1)
    options = ServerOptions(port=0, model_name="m", model_base_path=str(tmp_path / "cold"))
    with start_server(options) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            with pytest.raises(grpc.RpcError) as rpc:
                stub.Predict(text_request(["ab"], model="m"), timeout=30)
    assert rpc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Could not find variable" in rpc.value.details()


def test_an_op_the_server_lacks_fails_the_load_naming_it(echo_saved_model, tmp_path):
    copy = shutil.copytree(echo_saved_model, tmp_path / "addons" / "1")
    rename_op(str(copy), "StringUpper", "Addons>GatherTree")
    with pytest.raises(SessionLoadError, match="Op type not registered 'Addons>GatherTree'"):
        SessionBundle(copy)
    with pytest.raises(AuditError, match="Addons>GatherTree"):
        assert_servable(copy)
    with pytest.raises(ServerError, match="Op type not registered 'Addons>GatherTree'"):
        start_server(ServerOptions(port=0, model_base_path=str(tmp_path / "addons")))
    assert os.path.isdir(copy), "a refused version is left as it was"


def test_nmt_keras_serve_refuses_it_in_one_line(keras_behind_a_module, tmp_path, capsys):
    warmed = install_version(keras_behind_a_module, str(tmp_path / "m"), 1)
    write_warmup(warmed, [text_request(["warm"])])
    status = main(["serve", "--port", "0", "--model_base_path", str(tmp_path / "m")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in err
    assert err.startswith("nmt-keras: error: Failed to load servable default version 1")
    assert "Could not find variable" in err
