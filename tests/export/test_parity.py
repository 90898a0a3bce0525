"""The SavedModel, loaded with only tensorflow + tensorflow_text, translates like the run."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

from tests.toy_data import TOY_PAIRS

SENTENCES = [source for source, _ in TOY_PAIRS] + ["", "ein buch schläft schnell", "ünbekannt"]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

    path, sentences = sys.argv[1], json.loads(sys.argv[2])
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](text=tf.constant(sentences, tf.string))
    assert "nmt_keras" not in sys.modules
    print(json.dumps({
        "translation": [t.decode("utf-8") for t in out["translation"].numpy().tolist()],
        "score": out["score"].numpy().tolist(),
        "length": out["length"].numpy().tolist(),
    }))
    """
)


def test_saved_model_matches_the_translator_without_nmt_keras(version_dir, trained_run, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH="")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, version_dir, json.dumps(SENTENCES)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])

    translator = trained_run.translator()  # kept alive: tf.function holds `self` weakly
    expected = translator.translate(tf.constant(SENTENCES))
    translations = [t.decode("utf-8") for t in expected["translation"].numpy().tolist()]
    assert served["translation"] == translations
    assert any(translations), "the model must produce some non-empty translation"
    np.testing.assert_array_equal(np.float32(served["score"]), expected["score"].numpy())
    np.testing.assert_array_equal(served["length"], expected["length"].numpy())
