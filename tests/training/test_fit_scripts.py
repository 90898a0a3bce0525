"""`training/fit_translation.py`, the hand-written `model.fit` script, on a toy corpus."""

import importlib.util

import keras
import pytest
import tensorflow as tf

from nmt_keras.serving.signatures import ALIGN, SERVING_DEFAULT
from nmt_keras.text import Tokenizer
from tests.toy_data import REPO_ROOT, TOY_PAIRS

SCRIPT = REPO_ROOT / "training" / "fit_translation.py"
TINY = ["--vocab-size", "64", "--units", "16", "--max-length", "24", "--batch-size", "8"]
TINY += ["--epochs", "1", "--steps-per-epoch", "2", "--bleu-samples", "4"]


def load_script():
    """Imports the script as a module (`training/` is not a package)."""
    spec = importlib.util.spec_from_file_location("fit_translation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("model", "beam_size"),
    [
        ("bahdanau", 1),  # greedy only: a beam search graph takes seconds to trace
        pytest.param("luong", 2, marks=pytest.mark.slow),
        pytest.param("transformer", 2, marks=pytest.mark.slow),
    ],
)
def test_script_trains_saves_translates_and_exports(model, beam_size, toy_corpus, tmp_path, capsys):
    source, target = toy_corpus
    output = tmp_path / "out"
    files = ["--source", source, "--target", target]
    files += ["--valid-source", source, "--valid-target", target]
    args = ["--model", model, "--beam-size", str(beam_size), "--output-dir", str(output)]
    load_script().main([*args, *map(str, files), *TINY])

    printed = capsys.readouterr().out
    assert "val_bleu" in printed  # BleuCallback ran after the epoch
    sources = {s for s, _ in TOY_PAIRS}
    assert sum(line in sources for line in printed.splitlines()) == 3
    assert printed.count("  greedy: ") == 3
    assert printed.count("  beam: ") == (3 if beam_size > 1 else 0)

    for side in ("source", "target"):
        assert Tokenizer.from_file(output / f"{side}.spm").vocab_size <= 64
    assert isinstance(keras.saving.load_model(output / "model.keras"), keras.Model)

    assert [path.name for path in (output / "serving").iterdir()] == ["1"]  # nothing staged
    version = output / "serving" / "1"
    assert f"SavedModel for TF Serving: {version}" in printed
    served = tf.saved_model.load(str(version))
    assert {SERVING_DEFAULT, ALIGN} <= set(served.signatures)
    result = served.signatures[SERVING_DEFAULT](text=tf.constant([TOY_PAIRS[0][0]]))
    assert result["translation"].shape == (1,)
