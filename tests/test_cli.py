"""Every user mistake gets one clear line on stderr and exit status 2, never a traceback."""

import gzip
import subprocess
import sys

import pytest

from nmt_keras.cli import main
from tests.toy_data import TINY_RECIPE, tiny_train_args, write_lines


def run_cli(capsys, *args):
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.err.strip()


def assert_one_line_error(status, err, *fragments):
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nmt-keras: error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


def test_console_script_help_is_installed():
    result = subprocess.run(
        [sys.executable, "-m", "nmt_keras.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for command in ("train", "translate", "evaluate", "plot-attention"):
        assert command in result.stdout


def test_unknown_config_key_is_named(capsys, toy_corpus, tmp_path):
    source, target = toy_corpus
    args = tiny_train_args(source, target, tmp_path / "run", "model.untis=3")
    status, err = run_cli(capsys, *args)
    assert_one_line_error(status, err, "model.untis", str(TINY_RECIPE))
    assert not (tmp_path / "run").exists(), "nothing is written for a bad config"


def test_mistyped_config_value_is_named(capsys, toy_corpus, tmp_path):
    source, target = toy_corpus
    args = tiny_train_args(source, target, tmp_path / "run", "model.units=big")
    status, err = run_cli(capsys, *args)
    assert_one_line_error(status, err, "model.units", "int")


def test_missing_config_file(capsys, tmp_path):
    status, err = run_cli(capsys, "train", "--config", str(tmp_path / "nope.yaml"))
    assert_one_line_error(status, err, "nope.yaml")


def test_missing_corpus_file_is_named(capsys, toy_corpus, tmp_path):
    source, _ = toy_corpus
    missing = tmp_path / "missing.tgt"
    args = tiny_train_args(source, missing, tmp_path / "run")
    status, err = run_cli(capsys, *args)
    assert_one_line_error(status, err, "missing.tgt")
    assert not (tmp_path / "run").exists()


def test_line_count_mismatch_names_both_files(capsys, tmp_path):
    source = write_lines(tmp_path / "a.src", ["eins", "zwei", "drei"])
    target = write_lines(tmp_path / "a.tgt", ["one", "two"])
    status, err = run_cli(capsys, *tiny_train_args(source, target, tmp_path / "run"))
    assert_one_line_error(status, err, "a.src", "a.tgt", "3", "2")


def test_invalid_utf8_names_file_and_line(capsys, tmp_path):
    source = write_lines(tmp_path / "b.src", ["eins", "zwei"])
    target = tmp_path / "b.tgt.gz"
    with gzip.open(target, "wb") as file:
        file.write(b"one\n\xff\xfe broken\n")
    status, err = run_cli(capsys, *tiny_train_args(source, target, tmp_path / "run"))
    assert_one_line_error(status, err, "b.tgt.gz", ":2")


def test_empty_corpus(capsys, tmp_path):
    source = write_lines(tmp_path / "c.src", [])
    target = write_lines(tmp_path / "c.tgt", [])
    status, err = run_cli(capsys, *tiny_train_args(source, target, tmp_path / "run"))
    assert_one_line_error(status, err, "c.src")


def test_corpus_of_only_empty_or_long_pairs(capsys, tmp_path):
    source = write_lines(tmp_path / "d.src", ["", "x " * 200])
    target = write_lines(tmp_path / "d.tgt", ["empty source", "y"])
    status, err = run_cli(capsys, *tiny_train_args(source, target, tmp_path / "run"))
    assert_one_line_error(status, err, "1 empty", "1 longer than")


def test_translate_with_a_missing_run(capsys, tmp_path):
    status, err = run_cli(capsys, "translate", "--run", str(tmp_path / "nope"))
    assert_one_line_error(status, err, "nope")


def test_translate_with_an_incomplete_run(capsys, tmp_path):
    (tmp_path / "run").mkdir()
    status, err = run_cli(capsys, "translate", "--run", str(tmp_path / "run"))
    assert_one_line_error(status, err, "config.yaml")


def test_evaluate_with_mismatched_files(capsys, tmp_path):
    source = write_lines(tmp_path / "e.src", ["eins", "zwei"])
    reference = write_lines(tmp_path / "e.ref", ["one"])
    status, err = run_cli(
        capsys, "evaluate", "--run", "x", "--src", str(source), "--ref", str(reference)
    )
    assert_one_line_error(status, err, "e.src", "e.ref")


def test_evaluate_with_an_unknown_bleu_tokenizer(capsys):
    # Checked before the run is loaded: "x" does not exist.
    status, err = run_cli(capsys, "evaluate", "--run", "x", "--bleu-tokenize", "chinese")
    assert_one_line_error(status, err, "--bleu-tokenize", "'chinese'", "zh")


@pytest.mark.parametrize("batch_size", ["0", "-3"])
def test_bad_batch_size(capsys, batch_size):
    status, err = run_cli(capsys, "translate", "--run", "x", "--batch-size", batch_size)
    assert_one_line_error(status, err, "--batch-size")


def test_serve_with_a_missing_model_base_path(capsys, tmp_path):
    missing = tmp_path / "saved_models" / "nope"
    status, err = run_cli(
        capsys, "serve", "--port", "0", "--model_name", "nmt", "--model_base_path", str(missing)
    )
    assert_one_line_error(status, err, str(missing))


def test_audit_of_a_missing_directory(capsys, tmp_path):
    status, err = run_cli(capsys, "audit", str(tmp_path / "nope"))
    assert_one_line_error(status, err, "nope")
