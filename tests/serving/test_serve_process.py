"""`serve()` in a real process: SIGTERM lets an in-flight request finish, then exits 0."""

import os
import signal
import subprocess
import sys
import threading
import time

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from nmt_keras.serving import ServerError, ServerOptions, serve
from tests.serving.conftest import text_request
from tests.serving.fake_models import install_version

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SERVE = """
from nmt_keras.serving import ServerOptions, serve
serve(ServerOptions(port=0, model_name="echo", model_base_path={base!r},
                    file_system_poll_wait_seconds=0))
"""


def test_sigterm_drains_in_flight_requests(echo_saved_model, tmp_path):
    base = str(tmp_path / "echo")
    install_version(echo_saved_model, base, 1)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO_ROOT)
    log = open(tmp_path / "stderr.log", "w+")  # a file, so a chatty child never blocks
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE.format(base=base)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("Running gRPC ModelServer at 127.0.0.1:"), (
            line + (tmp_path / "stderr.log").read_text()
        )
        port = int(line.split(":")[1].split()[0])
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = text_request(["slow"], signature="slow")
        request.inputs["seconds"].CopyFrom(tf.make_tensor_proto(1.5, dtype=tf.float32))
        result = {}

        def slow_call():
            try:
                result["response"] = stub.Predict(request, timeout=60)
            except grpc.RpcError as error:
                result["error"] = error

        thread = threading.Thread(target=slow_call)
        started = time.time()
        thread.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        thread.join(timeout=60)
        assert "error" not in result, result.get("error")
        assert result["response"].outputs["upper"].string_val == [b"SLOW"]
        assert time.time() - started >= 1.4
        assert process.wait(timeout=60) == 0
        channel.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def test_serve_start_up_failure_raises_server_error(tmp_path):
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(ServerError) as info:
        serve(ServerOptions(port=0, model_base_path=str(tmp_path / "none")))
    assert str(info.value) == f"Could not find base path {tmp_path / 'none'} for servable default"
    assert signal.getsignal(signal.SIGTERM) is previous
