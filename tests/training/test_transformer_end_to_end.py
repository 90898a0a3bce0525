"""`model.type=transformer` through the same train, translate, beam search and export."""

import pytest
import tensorflow as tf

from nmt_keras.cli import main
from nmt_keras.export import assert_servable
from nmt_keras.serving.signatures import ALIGN, NBEST, SERVING_DEFAULT
from tests.toy_data import TOY_PAIRS, tiny_train_args, write_lines

# Two minutes of training. `make test` keeps the Transformer's export through the session
# loader (tests/export/test_session_loader.py), its `.keras` round trip and its layers'
# contract; `make test-all` trains it end to end here.
pytestmark = pytest.mark.slow

TRANSFORMER = [
    "model.type=transformer",
    "model.embedding_dim=32",
    "model.units=32",
    "model.num_heads=4",
    "model.ff_dim=64",
    "model.encoder_layers=1",
    "model.decoder_layers=1",
    "training.warmup_steps=20",
    "training.epochs=40",
]


@pytest.fixture(scope="module")
def transformer_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("transformer")
    source = write_lines(directory / "train.src", [s for s, _ in TOY_PAIRS])
    target = write_lines(directory / "train.tgt", [t for _, t in TOY_PAIRS])
    run_dir = directory / "run"
    assert main(tiny_train_args(source, target, run_dir, *TRANSFORMER)) == 0
    return run_dir, source


@pytest.mark.parametrize("search", [[], ["--beam-size", "3", "--length-penalty", "0.6"]])
def test_transformer_reproduces_the_corpus(transformer_run, capsys, search):
    run_dir, source = transformer_run
    assert main(["translate", "--run", str(run_dir), "--input", str(source), *search]) == 0
    assert capsys.readouterr().out.splitlines() == [t for _, t in TOY_PAIRS]


def test_transformer_refuses_hard_attention_in_one_line(transformer_run, capsys):
    run_dir, source = transformer_run
    args = ["translate", "--run", str(run_dir), "--input", str(source), "--hard-attention"]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "hard_attention" in error and len(error.strip().splitlines()) == 1


def test_transformer_exports_servable_signatures_with_cross_attention(
    transformer_run, tmp_path, capsys
):
    run_dir, _ = transformer_run
    base = tmp_path / "models"
    args = ["export", "--run", str(run_dir), "--model_base_path", str(base), "--beam-size", "2"]
    assert main(args) == 0
    version = base / "1"
    assert_servable(version)
    loaded = tf.saved_model.load(str(version))
    assert set(loaded.signatures) == {SERVING_DEFAULT, ALIGN, NBEST}
    text = tf.constant([s for s, _ in TOY_PAIRS[:2]])
    default = loaded.signatures[SERVING_DEFAULT](text=text)
    assert [t.decode() for t in default["translation"].numpy()] == [t for _, t in TOY_PAIRS[:2]]
    align = loaded.signatures[ALIGN](text=text)
    attention = align["attention"].numpy()  # (batch, tgt, src)
    for row in range(2):
        length = int(align["length"][row])
        source_length = int(align["source_length"][row])
        sums = attention[row, :length, :source_length].sum(axis=-1)
        assert sums == pytest.approx(1.0, abs=1e-4)
