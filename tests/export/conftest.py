"""One tiny trained run and one export of it, shared by the export tests."""

import pytest
import tensorflow as tf

from nmt_keras.cli import main
from nmt_keras.export import export_run
from nmt_keras.run import load_run
from tests.toy_data import TOY_PAIRS, tiny_train_args, write_lines


@pytest.fixture(scope="package")
def run_dir(tmp_path_factory):
    """A tiny Bahdanau run trained for a few epochs on the toy corpus."""
    directory = tmp_path_factory.mktemp("export_run")
    source = write_lines(directory / "train.src", [source for source, _ in TOY_PAIRS])
    target = write_lines(directory / "train.tgt", [target for _, target in TOY_PAIRS])
    run_dir = directory / "run"
    assert main(tiny_train_args(source, target, run_dir, "training.epochs=10")) == 0
    return run_dir


@pytest.fixture(scope="package")
def trained_run(run_dir):
    return load_run(str(run_dir))


@pytest.fixture(scope="package")
def model_base_path(tmp_path_factory):
    return tmp_path_factory.mktemp("saved_models") / "nmt"


@pytest.fixture(scope="package")
def version_dir(trained_run, model_base_path):
    """The first export of the run: `model_base_path/1`."""
    return export_run(trained_run, model_base_path)


@pytest.fixture(scope="package")
def loaded(version_dir):
    return tf.saved_model.load(version_dir)
