import pytest
import tensorflow as tf

from nmt_keras.export import ALIGN, SERVING_DEFAULT, WarmupError, check_warmup
from nmt_keras.export.warmup import (
    MAX_WARMUP_RECORDS,
    make_warmup_requests,
    read_warmup_requests,
    run_warmup_requests,
    warmup_path,
)


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


def test_every_warmup_request_runs_on_the_saved_model(version_dir, loaded):
    logs = read_warmup_requests(warmup_path(version_dir))
    results = run_warmup_requests(loaded, logs)
    assert len(results) == len(logs)
    assert "attention" in results[1] and "attention" not in results[0]


def test_bad_warmup_requests_are_reported(loaded):
    (log,) = make_warmup_requests([["hallo"]], signature_names=["nope"])
    with pytest.raises(WarmupError, match="record 0: unknown signature 'nope'"):
        run_warmup_requests(loaded, [log])
    (log,) = make_warmup_requests([["hallo"]], signature_names=[SERVING_DEFAULT])
    log.predict_log.request.inputs["sentence"].CopyFrom(log.predict_log.request.inputs["text"])
    with pytest.raises(WarmupError, match="expected inputs"):
        run_warmup_requests(loaded, [log])
    with pytest.raises(ValueError, match="non-empty"):
        make_warmup_requests([[]])


def test_check_warmup_needs_the_warmup_file(tmp_path):
    with pytest.raises(WarmupError, match="tf_serving_warmup_requests"):
        check_warmup(str(tmp_path))


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
