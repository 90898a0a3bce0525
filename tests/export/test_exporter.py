import os
import shutil
import stat

import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.decoding import DecodingOptions
from nmt_keras.export import (
    assert_servable,
    export_run,
    exporter,
    list_versions,
    next_version,
    read_warmup_requests,
    warmup_path,
)
from nmt_keras.export.versions import STAGING_PREFIX
from nmt_keras.serving.signatures import ALIGN, NBEST, SERVING_DEFAULT, SIGNATURE_OUTPUTS

ALIGN_OUTPUTS = {
    "translation": (tf.string, [None]),
    "score": (tf.float32, [None]),
    "length": (tf.int32, [None]),
    "source_length": (tf.int32, [None]),
    "source_tokens": (tf.string, [None, None]),
    "target_tokens": (tf.string, [None, None]),
    "attention": (tf.float32, [None, None, None]),
}


def test_layout(version_dir, model_base_path, run_dir):
    assert version_dir == os.path.join(model_base_path, "1")
    assert sorted(os.listdir(model_base_path)) == ["1"], "no staging directory is left"
    assert {"saved_model.pb", "variables", "assets", "assets.extra"} <= set(os.listdir(version_dir))
    for name in ("config.yaml", "source.spm", "target.spm"):
        with open(os.path.join(version_dir, "assets", name), "rb") as copy:
            assert copy.read() == (run_dir / name).read_bytes()
    assert os.listdir(os.path.join(version_dir, "assets.extra")) == ["tf_serving_warmup_requests"]


def test_signatures(loaded):
    assert set(loaded.signatures) == {SERVING_DEFAULT, ALIGN}
    for name, function in loaded.signatures.items():
        args, kwargs = function.structured_input_signature
        assert args == ()
        assert kwargs == {"text": tf.TensorSpec([None], tf.string, name="text")}
        outputs = function.structured_outputs
        assert set(outputs) == set(SIGNATURE_OUTPUTS[name])
        for key, spec in outputs.items():
            dtype, shape = ALIGN_OUTPUTS[key]
            assert spec.dtype == dtype == SIGNATURE_OUTPUTS[name][key], key
            assert spec.shape.as_list() == shape, key


def test_export_passes_the_audit(version_dir):
    report = assert_servable(version_dir)
    assert report.op_counts["SentencepieceTokenizeOp"] >= 1
    assert report.op_counts["While"] >= 1


def test_align_outputs_are_batch_first_and_trimmable(loaded):
    text = tf.constant(["ein hund läuft", "die frau liest ein buch", ""])
    out = {key: value.numpy() for key, value in loaded.signatures[ALIGN](text=text).items()}
    batch, tgt_len = out["target_tokens"].shape
    src_len = out["source_tokens"].shape[1]
    assert batch == 3 and out["attention"].shape == (3, tgt_len, src_len)
    for row in range(3):
        n_src, n_tgt = out["source_length"][row], out["length"][row]
        assert out["source_tokens"][row, 0] == b"<s>"
        assert out["source_tokens"][row, n_src - 1] == b"</s>"
        assert all(piece == b"" for piece in out["source_tokens"][row, n_src:])
        assert all(piece != b"" for piece in out["target_tokens"][row, :n_tgt])
        assert all(piece == b"" for piece in out["target_tokens"][row, n_tgt:])
    assert out["length"][2] == 0 and out["source_length"][2] == 2
    default = loaded.signatures[SERVING_DEFAULT](text=text)
    np.testing.assert_array_equal(default["translation"].numpy(), out["translation"])
    np.testing.assert_array_equal(default["score"].numpy(), out["score"])


def test_empty_input_translates_to_empty(loaded):
    out = loaded.signatures[SERVING_DEFAULT](text=tf.constant(["", "   ", "ein hund läuft"]))
    assert out["translation"].numpy()[:2].tolist() == [b"", b""]
    assert out["score"].numpy()[:2].tolist() == [0.0, 0.0]
    assert out["length"].numpy()[:2].tolist() == [0, 0]
    assert out["length"].numpy()[2] > 0


def test_over_long_input_is_truncated(loaded, trained_run):
    max_length = trained_run.config.data.max_length
    long_sentence = " ".join(["ein hund läuft"] * 50)
    out = loaded.signatures[ALIGN](text=tf.constant([long_sentence, "ein hund"]))
    assert out["source_length"].numpy().tolist()[0] == max_length
    assert out["source_tokens"].shape[1] == max_length
    assert out["source_tokens"].numpy()[0, max_length - 1] == b"</s>"
    assert 0 < out["length"].numpy()[0] <= trained_run.config.training.max_decode_length
    assert isinstance(out["translation"].numpy()[0], bytes)


def test_versions_explicit_and_refused(trained_run, version_dir, tmp_path):
    base = tmp_path / "nmt"
    shutil.copytree(version_dir, base / "1")
    path = export_run(trained_run, str(base), version=4)
    assert path == os.path.join(str(base), "4")
    assert list_versions(str(base)) == [1, 4] and next_version(str(base)) == 5
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    for existing in (1, 4):
        with pytest.raises(ValueError, match=f"Version {existing} already exists"):
            export_run(trained_run, str(base), version=existing)
    assert sorted(os.listdir(base)) == ["1", "4"]


def test_failed_export_leaves_nothing(trained_run, tmp_path, monkeypatch):
    base = tmp_path / "nmt"
    seen = []

    def fail(staging):
        seen.append(sorted(os.listdir(staging)))
        raise RuntimeError("warmup exploded")

    monkeypatch.setattr(exporter.audit, "assert_servable", fail)
    with pytest.raises(RuntimeError, match="warmup exploded"):
        export_run(trained_run, str(base))
    assert "saved_model.pb" in seen[0] and "assets.extra" in seen[0], "failed mid-export"
    assert os.listdir(base) == [], "no version and no staging directory may remain"
    assert not any(name.startswith(STAGING_PREFIX) or name.isdigit() for name in os.listdir(base))


@pytest.fixture(scope="module")
def beam_version_dir(trained_run, tmp_path_factory):
    """An export decoding with beam 3 and 3-best lists."""
    base = tmp_path_factory.mktemp("beam_models") / "nmt"
    return export_run(trained_run, base, decoding=DecodingOptions(beam_size=3, n_best=3))


def test_beam_export_adds_an_nbest_signature_and_passes_the_audit(beam_version_dir):
    assert_servable(beam_version_dir)
    loaded = tf.saved_model.load(beam_version_dir)
    assert set(loaded.signatures) == {SERVING_DEFAULT, ALIGN, NBEST}
    nbest = loaded.signatures[NBEST]
    assert set(nbest.structured_outputs) == set(SIGNATURE_OUTPUTS[NBEST])
    assert nbest.structured_outputs["translations"].shape.as_list() == [None, 3]
    text = tf.constant(["ein hund läuft", "", "die frau liest ein buch"])
    out = {key: value.numpy() for key, value in nbest(text=text).items()}
    assert out["translations"].shape == (3, 3) and out["scores"].shape == (3, 3)
    assert list(out["translations"][1]) == [b"", b"", b""]
    default = loaded.signatures[SERVING_DEFAULT](text=text)
    np.testing.assert_array_equal(default["translation"].numpy(), out["translations"][:, 0])
    np.testing.assert_allclose(default["score"].numpy(), out["scores"][:, 0], rtol=1e-5)


def test_beam_export_warms_up_every_signature(beam_version_dir):
    records = read_warmup_requests(warmup_path(beam_version_dir))
    names = {record.predict_log.request.model_spec.signature_name for record in records}
    assert names == {SERVING_DEFAULT, ALIGN, NBEST}


def test_the_published_version_is_readable_by_other_users(version_dir):
    # A TF Serving container rarely runs as the exporting user: no mkdtemp 0700 may remain.
    umask = os.umask(0o022)
    os.umask(umask)
    for directory, _, files in os.walk(version_dir):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o777 & ~umask, directory
        for name in files:
            mode = stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode)
            assert mode & 0o444 == 0o444 & ~umask, name
