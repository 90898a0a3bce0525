"""Versions on a live server: policies, labels, reload config, roll-out, warmup, start-up."""

import os
import re
import threading
import time

import grpc
import pytest
from google.protobuf import text_format
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from nmt_keras.serving import ServerError, ServerOptions, start_server
from tests.serving.conftest import text_request
from tests.serving.fake_models import install_version, write_warmup

State = get_model_status_pb2.ModelVersionStatus.State


def config_text(name, base, policy="", labels=None):
    label_text = " ".join(
        f'version_labels {{ key: "{k}" value: {v} }}' for k, v in (labels or {}).items()
    )
    return (
        f'config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" '
        f"{policy} {label_text} }}"
    )


def stubs(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return (
        channel,
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
    )


def states(model_stub, name):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    response = model_stub.GetModelStatus(request, timeout=30)
    return {s.version: s.state for s in response.model_version_status}


@pytest.fixture
def three_versions(echo_saved_model, tmp_path):
    base = str(tmp_path / "echo")
    for version in (1, 2, 3):
        install_version(echo_saved_model, base, version)
    os.makedirs(os.path.join(base, "tmp-4"))  # not an integer: ignored
    return base


def test_specific_policy_and_labels_from_a_config_file(three_versions, tmp_path):
    path = tmp_path / "models.config"
    policy = "model_version_policy { specific { versions: 1 versions: 3 } }"
    labels = {"stable": 1, "canary": 3}
    path.write_text(
        f"model_config_list {{ {config_text('echo', three_versions, policy, labels)} }}"
    )
    options = ServerOptions(port=0, model_config_file=str(path), file_system_poll_wait_seconds=0)
    with start_server(options) as server:
        channel, predict, model = stubs(server)
        with channel:
            assert predict.Predict(text_request(["a"]), timeout=30).model_spec.version.value == 3
            served = predict.Predict(text_request(["a"], label="stable"), timeout=30)
            assert served.model_spec.version.value == 1
            served = predict.Predict(text_request(["a"], label="canary"), timeout=30)
            assert served.model_spec.version.value == 3
            with pytest.raises(grpc.RpcError) as info:
                predict.Predict(text_request(["a"], version=2), timeout=30)
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            assert info.value.details() == "Servable not found for request: Specific(echo, 2)"
            assert states(model, "echo") == {3: State.AVAILABLE, 1: State.AVAILABLE}
            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = "echo"
            versions = [s.version for s in model.GetModelStatus(request).model_version_status]
            assert versions == [3, 1]  # newest first, like the real server


def reload(model_stub, text):
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(f"model_config_list {{{text}}}", request.config)  # unvalidated
    return model_stub.HandleReloadConfigRequest(request, timeout=60)


def test_reload_config(three_versions, echo_saved_model, tmp_path):
    other = str(tmp_path / "other")
    install_version(echo_saved_model, other, 7)
    options = ServerOptions(
        port=0, model_name="echo", model_base_path=three_versions, file_system_poll_wait_seconds=0
    )
    with start_server(options) as server:
        channel, predict, model = stubs(server)
        with channel:
            assert states(model, "echo") == {3: State.AVAILABLE}
            # Add a model, switch echo to all versions with a label.
            response = reload(
                model,
                config_text("echo", three_versions, "model_version_policy { all {} }", {"old": 1})
                + config_text("other", other),
            )
            assert response.status.error_code == 0
            assert states(model, "echo") == {v: State.AVAILABLE for v in (1, 2, 3)}
            served = predict.Predict(text_request(["a"], label="old"), timeout=30)
            assert served.model_spec.version.value == 1
            served = predict.Predict(text_request(["a"], model="other"), timeout=30)
            assert served.model_spec.version.value == 7
            # Remove "echo": its versions end, requests are NOT_FOUND.
            reload(model, config_text("other", other))
            assert set(states(model, "echo").values()) == {State.END}
            with pytest.raises(grpc.RpcError) as info:
                predict.Predict(text_request(["a"]), timeout=30)
            assert info.value.details() == "Servable not found for request: Latest(echo)"
            # A model whose base path does not exist fails the reload, others keep serving.
            with pytest.raises(grpc.RpcError) as info:
                reload(model, config_text("other", other) + config_text("ghost", "/no/such/dir"))
            assert info.value.code() == grpc.StatusCode.UNKNOWN
            assert "1 model(s) did not become available" in info.value.details()
            assert "Could not find base path /no/such/dir for servable ghost" in (
                info.value.details()
            )
            # A label on a version that is not loaded.
            with pytest.raises(grpc.RpcError) as info:
                reload(model, config_text("other", other, labels={"x": 8}))
            assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert info.value.details() == (
                "Request to assign label to version 8 of model other, which is not currently "
                "available for inference"
            )
            assert predict.Predict(text_request(["a"], model="other"), timeout=30).outputs


def test_reload_config_rejects_an_invalid_config(echo_server):
    channel, _, model = stubs(echo_server)
    with channel:
        request = model_management_pb2.ReloadConfigRequest()
        with pytest.raises(grpc.RpcError) as info:
            model.HandleReloadConfigRequest(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Only ModelConfigList is currently supported" in info.value.details()
        with pytest.raises(grpc.RpcError) as info:
            reload(model, config_text("echo", "relative/path"))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "to have an absolute path" in info.value.details()


def test_rollout_under_load_loses_no_request(echo_saved_model, tmp_path):
    base = str(tmp_path / "echo")
    install_version(echo_saved_model, base, 1)
    options = ServerOptions(
        port=0, model_name="echo", model_base_path=base, file_system_poll_wait_seconds=0.1
    )
    with start_server(options) as server:
        channel, predict, model = stubs(server)
        stop = threading.Event()
        failures: list[Exception] = []
        versions_seen: list[set[int]] = [set() for _ in range(4)]

        def hammer(index):
            while not stop.is_set():
                try:
                    response = predict.Predict(text_request(["roll out"]), timeout=30)
                    versions_seen[index].add(response.model_spec.version.value)
                except Exception as error:  # noqa: BLE001 - counted, asserted below.
                    failures.append(error)

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
        with channel:
            for thread in threads:
                thread.start()
            time.sleep(0.3)
            install_version(echo_saved_model, base, 2)
            deadline = time.time() + 30
            while time.time() < deadline and states(model, "echo").get(1) != State.END:
                time.sleep(0.05)
            time.sleep(0.3)
            stop.set()
            for thread in threads:
                thread.join()
            assert failures == []
            assert states(model, "echo") == {2: State.AVAILABLE, 1: State.END}
            assert set.union(*versions_seen) == {1, 2}
            with pytest.raises(grpc.RpcError) as info:
                predict.Predict(text_request(["a"], version=1), timeout=30)
            assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_warmup_records_are_replayed(echo_saved_model, tmp_path):
    base = str(tmp_path / "echo")
    version_dir = install_version(echo_saved_model, base, 1)
    write_warmup(version_dir, [text_request(["warm"]), text_request(["up"], signature="slow")])
    # The "slow" record lacks its `seconds` input: it fails, so the version fails to load.
    options = ServerOptions(port=0, model_name="echo", model_base_path=base)
    with pytest.raises(ServerError) as info:
        start_server(options)
    message = str(info.value)
    assert "Failed to load servable echo version 1" in message
    assert re.search("Record 1 of .*tf_serving_warmup_requests failed", message)
    assert "input size does not match signature" in message
    write_warmup(
        version_dir, [text_request(["warm"]), text_request(["up"], output_filter=["upper"])]
    )
    with start_server(options) as server:
        assert server.manager.model_names() == ["echo"]


def test_a_failing_new_version_keeps_the_old_one_serving(echo_saved_model, tmp_path):
    base = str(tmp_path / "echo")
    install_version(echo_saved_model, base, 1)
    options = ServerOptions(port=0, model_name="echo", model_base_path=base)
    with start_server(options) as server:
        broken = os.path.join(base, "2")
        os.makedirs(broken)
        with open(os.path.join(broken, "saved_model.pb"), "wb") as file:
            file.write(b"not a saved model")
        server.manager.poll()
        channel, predict, model = stubs(server)
        with channel:
            assert states(model, "echo")[1] == State.AVAILABLE
            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = "echo"
            request.model_spec.version.value = 2
            (status,) = model.GetModelStatus(request, timeout=30).model_version_status
            assert status.state == State.END
            assert "Failed to load servable echo version 2" in status.status.error_message
            assert predict.Predict(text_request(["a"]), timeout=30).model_spec.version.value == 1


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "Could not find base path {base} for servable echo"),
        ("empty", "No versions of servable echo found under base path {base}"),
        ("corrupt", "Failed to load servable echo version 1:"),
    ],
)
def test_startup_failures_are_one_line_server_errors(tmp_path, setup, message):
    base = str(tmp_path / "echo")
    if setup != "missing":
        os.makedirs(os.path.join(base, "not-a-version"))
    if setup == "corrupt":
        os.makedirs(os.path.join(base, "1"))
        with open(os.path.join(base, "1", "saved_model.pb"), "wb") as file:
            file.write(b"\x00garbage")
    with pytest.raises(ServerError) as info:
        start_server(ServerOptions(port=0, model_name="echo", model_base_path=base))
    assert message.format(base=base) in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ServerOptions(port=0), "Expected --model_base_path"),
        (
            ServerOptions(port=0, model_config_file="/x.config", model_base_path="/m"),
            "Expected either --model_config_file or --model_name/--model_base_path",
        ),
        (ServerOptions(port=70000, model_base_path="/m"), "Expected a port in [0, 65535]"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ServerError) as info:
        start_server(options)
    assert message in str(info.value)
