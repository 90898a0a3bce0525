import shutil

import pytest
import tensorflow as tf

from nmt_keras.serving.servable import Servable
from nmt_keras.serving.session_bundle import SessionBundle
from nmt_keras.serving.signatures import ALIGN, SERVING_DEFAULT
from nmt_keras.serving.warmup import (
    MAX_WARMUP_RECORDS,
    WarmupError,
    make_warmup_requests,
    read_warmup_requests,
    run_requests,
    run_warmup,
    warmup_path,
)


@pytest.fixture(scope="module")
def servable(version_dir):
    """The export loaded by TensorFlow's C++ session loader, as TF Serving loads it."""
    return Servable("nmt", 1, SessionBundle(version_dir))


def test_warmup_file_has_predict_requests_for_both_signatures(version_dir):
    logs = read_warmup_requests(warmup_path(version_dir))
    assert 2 <= len(logs) <= 1000
    names = [log.predict_log.request.model_spec.signature_name for log in logs]
    assert set(names) == {SERVING_DEFAULT, ALIGN}
    for log in logs:
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        assert list(request.inputs) == ["text"]
        tensor = request.inputs["text"]
        assert tensor.dtype == tf.string.as_datatype_enum
        assert [dim.size for dim in tensor.tensor_shape.dim] == [len(tensor.string_val)]


def test_every_warmup_request_runs_in_the_session_loader(version_dir, servable):
    logs = read_warmup_requests(warmup_path(version_dir))
    assert run_warmup(servable) == len(logs)


def test_bad_warmup_requests_are_reported_with_the_servers_status(servable):
    (log,) = make_warmup_requests([["hallo"]], signature_names=["nope"])
    with pytest.raises(WarmupError, match='Record 0 of F failed: .*"nope" not found'):
        run_requests(servable, [log], source="F")
    (log,) = make_warmup_requests([["hallo"]], signature_names=[SERVING_DEFAULT])
    log.predict_log.request.inputs["sentence"].CopyFrom(log.predict_log.request.inputs["text"])
    with pytest.raises(WarmupError, match="Record 0 of F failed: INVALID_ARGUMENT"):
        run_requests(servable, [log], source="F")
    with pytest.raises(ValueError, match="non-empty"):
        make_warmup_requests([[]])


def test_a_version_without_warmup_file_replays_nothing(version_dir, tmp_path):
    copy = shutil.copytree(
        version_dir, tmp_path / "1", ignore=shutil.ignore_patterns("assets.extra")
    )
    assert run_warmup(Servable("nmt", 1, SessionBundle(copy))) == 0


def test_unreadable_warmup_files_name_the_file_or_record(tmp_path):
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a tfrecord file at all")
    with pytest.raises(WarmupError, match="Cannot read warmup file .*garbage"):
        read_warmup_requests(str(garbage))
    not_a_log = tmp_path / "not_a_log"
    with tf.io.TFRecordWriter(str(not_a_log)) as writer:
        writer.write(b"\xff\xff\xff")
    with pytest.raises(WarmupError, match="record 0 .* is not a PredictionLog"):
        read_warmup_requests(str(not_a_log))


def test_more_warmup_records_than_tf_serving_reads_are_refused(tmp_path):
    path = tmp_path / "many"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for _ in range(MAX_WARMUP_RECORDS + 1):
            writer.write(b"")
    with pytest.raises(WarmupError, match="exceeds the maximum \\(1000\\)"):
        read_warmup_requests(str(path))
