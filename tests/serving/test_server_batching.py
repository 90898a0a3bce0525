"""`nmt-keras serve --enable_batching`: concurrent Predict calls merged into one session run."""

import threading

import grpc
import pytest
from tensorflow_serving.apis import prediction_service_pb2_grpc

from nmt_keras.cli import build_parser
from nmt_keras.serving import ServerError, ServerOptions, start_server
from nmt_keras.serving.session_bundle import SessionBundle
from nmt_keras.serving.tensors import to_ndarray
from tests.serving.conftest import text_request
from tests.serving.fake_models import install_version

CLIENTS = 4


@pytest.fixture
def session_runs(monkeypatch):
    """Records the batch size of every `SessionBundle.run` call."""
    sizes = []
    original = SessionBundle.run

    def run(self, signature_name, inputs, output_aliases=()):
        sizes.append(len(next(iter(inputs.values()))))
        return original(self, signature_name, inputs, output_aliases)

    monkeypatch.setattr(SessionBundle, "run", run)
    return sizes


def batching_server(echo_saved_model, tmp_path, parameters):
    base = str(tmp_path / "echo")
    install_version(echo_saved_model, base, 1)
    path = tmp_path / "batching.txt"
    path.write_text(parameters)
    options = ServerOptions(
        port=0,
        model_name="echo",
        model_base_path=base,
        file_system_poll_wait_seconds=0,
        enable_batching=True,
        batching_parameters_file=str(path),
    )
    return start_server(options)


def test_concurrent_requests_are_merged_into_one_run(echo_saved_model, tmp_path, session_runs):
    # A batch waits up to 10 s for its 4th sentence, so the 4 clients always share one run.
    parameters = f"max_batch_size {{ value: {CLIENTS} }} batch_timeout_micros {{ value: 10000000 }}"
    barrier = threading.Barrier(CLIENTS)
    results = {}
    with batching_server(echo_saved_model, tmp_path, parameters) as server:
        session_runs.clear()  # warmup

        def client(index):
            with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                barrier.wait()
                response = stub.Predict(text_request([f"client {index}"]), timeout=30)
                results[index] = to_ndarray(response.outputs["upper"]).tolist()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == {i: [f"CLIENT {i}".encode()] for i in range(CLIENTS)}
    assert session_runs == [CLIENTS]


def test_a_request_larger_than_the_batch_is_refused(echo_saved_model, tmp_path):
    with batching_server(echo_saved_model, tmp_path, "max_batch_size { value: 2 }") as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(text_request(["a", "b", "c"]), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Task size 3 is larger than maximum input batch size 2" in info.value.details()


def test_bad_batching_flags_are_one_line_errors(echo_saved_model, tmp_path):
    with pytest.raises(ServerError, match='batching.txt: 1:1 .*no field named "max_batch"'):
        batching_server(echo_saved_model, tmp_path, "max_batch { value: 2 }")
    options = ServerOptions(port=0, model_base_path=str(tmp_path), batching_parameters_file="f")
    with pytest.raises(ServerError, match="Expected --enable_batching"):
        start_server(options)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--enable_batching", True),
        ("--enable_batching=true", True),
        ("--enable_batching=false", False),
    ],
)
def test_enable_batching_takes_the_real_servers_spellings(flag, value):
    args = build_parser().parse_args(["serve", "--model_base_path", "m", flag])
    assert args.enable_batching is value
