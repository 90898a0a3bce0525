"""`nmt-keras train` then `translate`/`evaluate`/`plot-attention`, on a toy corpus."""

import csv
import dataclasses
import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
import warnings

import pytest
import tensorflow as tf

from nmt_keras.cli import main
from nmt_keras.config import Config
from nmt_keras.data.corpus import ParallelCorpus
from nmt_keras.run import RunPaths
from nmt_keras.training import trainer
from nmt_keras.training.callbacks import BleuCallback
from tests.toy_data import TINY_RECIPE, TOY_PAIRS, tiny_train_args, write_lines


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory):
    """A tiny Bahdanau model trained until it reproduces the toy corpus."""
    directory = tmp_path_factory.mktemp("overfit")
    source = directory / "train.src"
    target = directory / "train.tgt"
    source.write_text("".join(f"{s}\n" for s, _ in TOY_PAIRS), encoding="utf-8")
    target.write_text("".join(f"{t}\n" for _, t in TOY_PAIRS), encoding="utf-8")
    run_dir = directory / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = main(
            tiny_train_args(
                source,
                target,
                run_dir,
                "training.epochs=30",
                f"data.test.source={source}",
                f"data.test.target={target}",
            )
        )
    assert status == 0
    # Keras warns when a dataset of unknown length ends; for bucketed data that is expected.
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    return run_dir, source, target


def test_train_writes_a_complete_run(overfit_run):
    run_dir, _, _ = overfit_run
    for name in ("config.yaml", "source.spm", "target.spm", "history.csv"):
        assert (run_dir / name).is_file()
    for name in ("best.weights.h5", "last.weights.h5"):
        assert (run_dir / "checkpoints" / name).is_file()
    assert not list(run_dir.rglob("*.tmp*")), "no temporary checkpoint may be left behind"
    assert not (run_dir / "backup").exists(), "the backup is removed after a finished run"
    with open(run_dir / "history.csv", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 30
    assert {"loss", "val_loss", "val_bleu", "val_chrf", "accuracy"} <= set(rows[0])
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])


def test_tensorboard_gets_an_attention_image_every_epoch(overfit_run):
    run_dir, _, _ = overfit_run
    (events,) = (run_dir / "logs" / "attention").glob("events.out.tfevents.*")
    steps = [
        event.step
        for event in tf.compat.v1.train.summary_iterator(str(events))
        for value in event.summary.value
        if value.tag == "attention"
    ]
    assert steps == list(range(30))


def test_overfit_model_reproduces_the_corpus_through_translate(overfit_run, tmp_path, capsys):
    run_dir, source, _ = overfit_run
    output = tmp_path / "out.txt"
    status = main(
        ["translate", "--run", str(run_dir), "--input", str(source), "--output", str(output)]
    )
    assert status == 0
    assert output.read_text(encoding="utf-8").splitlines() == [t for _, t in TOY_PAIRS]


def test_beam_search_reproduces_the_corpus_and_writes_nbest_lists(overfit_run, capsys):
    run_dir, source, _ = overfit_run
    args = ["translate", "--run", str(run_dir), "--input", str(source), "--beam-size", "3"]
    assert main(args + ["--length-penalty", "0.6"]) == 0
    assert capsys.readouterr().out.splitlines() == [t for _, t in TOY_PAIRS]
    assert main(args + ["--n-best", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * len(TOY_PAIRS)
    fields = [line.split(" ||| ") for line in lines]
    indices = [int(index) for index, _, _ in fields]
    assert indices == [i for i in range(len(TOY_PAIRS)) for _ in range(2)]
    assert [text for _, text, _ in fields[::2]] == [t for _, t in TOY_PAIRS]
    for (_, _, best), (_, _, second) in zip(fields[::2], fields[1::2], strict=True):
        assert float(best) >= float(second)


def test_sampling_with_top_k_one_is_greedy(overfit_run, capsys):
    run_dir, source, _ = overfit_run
    args = ["translate", "--run", str(run_dir), "--input", str(source), "--sample"]
    assert main(args + ["--top-k", "1", "--seed", "7"]) == 0
    assert capsys.readouterr().out.splitlines() == [t for _, t in TOY_PAIRS]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--n-best", "3"], "n_best <= beam_size"),
        (["--beam-size", "0"], "beam_size >= 1"),
        (["--sample", "--beam-size", "2"], "beam_size=1 when sampling"),
        (["--sample", "--temperature", "0"], "temperature > 0"),
    ],
)
def test_bad_search_flags_fail_with_one_line(overfit_run, capsys, flags, message):
    run_dir, source, _ = overfit_run
    assert main(["translate", "--run", str(run_dir), "--input", str(source), *flags]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1


def test_translate_reads_stdin_and_keeps_empty_lines(overfit_run, monkeypatch, capsys):
    import io

    run_dir, _, _ = overfit_run
    monkeypatch.setattr(sys, "stdin", io.StringIO("ein hund läuft\n\neine katze schläft\n"))
    assert main(["translate", "--run", str(run_dir)]) == 0
    assert capsys.readouterr().out.splitlines() == ["a dog runs", "", "a cat sleeps"]


def test_evaluate_prints_sacrebleu_scores_and_signatures(overfit_run, capsys):
    run_dir, source, target = overfit_run
    assert (
        main(["evaluate", "--run", str(run_dir), "--src", str(source), "--ref", str(target)]) == 0
    )
    printed = capsys.readouterr().out
    assert "chrF2 = 100.00" in printed
    assert "BLEU = " in printed and "tok:13a" in printed and "version:" in printed


def test_evaluate_defaults_to_the_runs_test_split(overfit_run, capsys):
    run_dir, _, _ = overfit_run
    assert main(["evaluate", "--run", str(run_dir)]) == 0
    assert "chrF2 = 100.00" in capsys.readouterr().out


def test_evaluate_bleu_tokenize_overrides_the_runs_setting(overfit_run, capsys):
    run_dir, _, _ = overfit_run
    assert main(["evaluate", "--run", str(run_dir), "--bleu-tokenize", "char"]) == 0
    assert "tok:char" in capsys.readouterr().out


def test_evaluate_needs_both_files_or_a_test_split(overfit_run, tmp_path, capsys):
    run_dir, source, _ = overfit_run
    assert main(["evaluate", "--run", str(run_dir), "--src", str(source)]) == 2
    assert "both --src and --ref" in capsys.readouterr().err
    without_test = tmp_path / "run"
    shutil.copytree(run_dir, without_test)
    config = Config.from_yaml(str(without_test / "config.yaml"))
    config.replace(data=dataclasses.replace(config.data, test=None)).to_yaml(
        str(without_test / "config.yaml")
    )
    assert main(["evaluate", "--run", str(without_test)]) == 2
    assert "no data.test in its config.yaml" in capsys.readouterr().err


def test_plot_attention_writes_a_png(overfit_run, tmp_path, capsys):
    run_dir, _, _ = overfit_run
    png = tmp_path / "attention.png"
    assert (
        main(["plot-attention", "--run", str(run_dir), "ein hund läuft", "--output", str(png)]) == 0
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.strip() == "a dog runs"


class _Interrupt(Exception):
    pass


def test_interrupted_training_resumes_from_the_last_epoch(toy_corpus, tmp_path, monkeypatch):
    import keras

    source, target = toy_corpus
    run_dir = tmp_path / "run"
    original_callbacks = trainer._callbacks

    class InterruptAfterSecondEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise _Interrupt

    monkeypatch.setattr(
        trainer,
        "_callbacks",
        lambda *args: original_callbacks(*args) + [InterruptAfterSecondEpoch()],
    )
    with pytest.raises(_Interrupt):
        main(tiny_train_args(source, target, run_dir, "training.epochs=4"))
    assert (run_dir / "backup").is_dir()
    assert (run_dir / "checkpoints" / "last.weights.h5").is_file()

    monkeypatch.setattr(trainer, "_callbacks", original_callbacks)
    assert main(tiny_train_args(source, target, run_dir, "training.epochs=4")) == 0
    with open(run_dir / "history.csv", encoding="utf-8") as file:
        epochs = [int(row["epoch"]) for row in csv.DictReader(file)]
    assert epochs == [0, 1, 2, 3], "the second call continues at epoch 2"


def test_sharded_corpus_backs_up_mid_epoch_and_resumes_on_a_fresh_stream(
    tmp_path, monkeypatch, caplog
):
    import keras

    for shard, rows in enumerate((TOY_PAIRS[:3], TOY_PAIRS[3:])):
        for side, column in (("src", 0), ("tgt", 1)):
            text = "".join(f"{row[column]}\n" for row in rows).encode()
            (tmp_path / f"train.{shard}.{side}.gz").write_bytes(gzip.compress(text))
    run_dir = tmp_path / "run"
    args = tiny_train_args(
        tmp_path / "train.*.src.gz",
        tmp_path / "train.*.tgt.gz",
        run_dir,
        "training.epochs=2",
        "training.steps_per_epoch=6",
        "training.checkpoint_every_steps=2",
        "training.log_every_steps=3",
    )
    original_callbacks = trainer._callbacks

    class InterruptAtTheFourthBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 3:
                raise _Interrupt

    monkeypatch.setattr(
        trainer,
        "_callbacks",
        lambda *args: original_callbacks(*args) + [InterruptAtTheFourthBatch()],
    )
    with pytest.raises(_Interrupt):
        main(args)
    metadata = json.loads((run_dir / "backup" / "training_metadata.json").read_text())
    assert metadata == {"epoch": 0, "batch": 3}, "backed up after the fourth batch"
    config = Config.from_yaml(str(run_dir / "config.yaml"))
    default = tf.distribute.get_strategy()
    seed = trainer._stream_seed(RunPaths(str(run_dir)), config, default)
    assert seed != config.data.shuffle_seed

    monkeypatch.setattr(trainer, "_callbacks", original_callbacks)
    caplog.clear()  # Only the resumed run's lines.
    with caplog.at_level("INFO"):
        assert main(args) == 0
    with open(run_dir / "history.csv", encoding="utf-8") as file:
        assert [int(row["epoch"]) for row in csv.DictReader(file)] == [0, 1]
    steps = [r.getMessage() for r in caplog.records if "steps/s" in r.getMessage()]
    assert len(steps) == 4 and steps[0].startswith("epoch 1 step 3: ") and " loss " in steps[0]


def test_resuming_with_another_model_is_refused(toy_corpus, tmp_path, capsys):
    source, target = toy_corpus
    run_dir = tmp_path / "run"
    assert main(tiny_train_args(source, target, run_dir, "training.epochs=1")) == 0
    status = main(tiny_train_args(source, target, run_dir, "model.units=64"))
    assert status == 2
    assert "model.units=32" in capsys.readouterr().err


def test_cosine_decay_over_the_budget_replaces_the_warmup_schedule(toy_corpus, tmp_path):
    source, target = toy_corpus
    run_dir = tmp_path / "run"
    args = tiny_train_args(
        source,
        target,
        run_dir,
        "training.epochs=2",
        "training.learning_rate=0.01",
        "training.warmup_steps=1000",
        "training.lr_decay=cosine",
        "training.max_minutes=600",
    )
    assert main(args) == 0
    with open(run_dir / "history.csv", encoding="utf-8") as file:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(file)]
    assert len(rates) == 2
    assert 0 < rates[0] < rates[1] < 0.01, "still warming up, a little below the peak"


@pytest.mark.parametrize("model_type", [pytest.param("seq2seq", marks=pytest.mark.slow), "luong"])
def test_other_families_train_with_mixed_precision(toy_corpus, tmp_path, model_type):
    import keras

    source, target = toy_corpus
    run_dir = tmp_path / "run"
    args = tiny_train_args(source, target, run_dir, "training.epochs=2", f"model.type={model_type}")
    assert main([*args, "--mixed-precision"]) == 0
    assert keras.mixed_precision.global_policy().name == "float32", "policy restored"
    assert (
        main(
            [
                "translate",
                "--run",
                str(run_dir),
                "--input",
                str(source),
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    assert len((tmp_path / "o").read_text(encoding="utf-8").splitlines()) == len(TOY_PAIRS)


@pytest.mark.slow  # about 40 s: two logical devices, one more TF context
def test_mirrored_strategy_on_two_logical_cpus(toy_corpus, tmp_path):
    source, target = toy_corpus
    run_dir = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        import sys
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        import keras
        import numpy as np
        from nmt_keras.cli import main
        from nmt_keras.config import ModelConfig
        from nmt_keras.models import build_model
        from nmt_keras.training import MaskedCrossEntropy
        from nmt_keras.training.trainer import make_strategy

        def loss_under(strategy):
            with strategy.scope():
                keras.utils.set_random_seed(0)
                model = build_model(ModelConfig(units=8, embedding_dim=8), 20, 20)
                model.compile(loss=MaskedCrossEntropy(0))
            ids = np.full((4, 5), 7, "int32")
            return model.evaluate({{"source": ids, "target": ids}}, ids, verbose=0)

        mirrored = make_strategy("mirrored")
        print("replicas", mirrored.num_replicas_in_sync)
        print("loss ratio", loss_under(mirrored) / loss_under(tf.distribute.get_strategy()))
        sys.exit(main({tiny_train_args(source, target, run_dir, "training.epochs=2")!r}
                      + ["--strategy", "mirrored"]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 2" in result.stdout
    # The loss is each replica's mean over its tokens, averaged, as on one device (it was
    # summed over the replicas when the loss returned a scalar Keras does not rescale).
    (ratio,) = [line.split()[-1] for line in result.stdout.splitlines() if "loss ratio" in line]
    assert abs(float(ratio) - 1.0) < 1e-4
    assert (run_dir / "checkpoints" / "last.weights.h5").is_file()


def test_translate_with_a_missing_input_file_names_it(overfit_run, tmp_path, capsys):
    run_dir, _, _ = overfit_run
    status = main(["translate", "--run", str(run_dir), "--input", str(tmp_path / "in.txt")])
    assert status == 2
    assert "in.txt" in capsys.readouterr().err


def test_plot_attention_refuses_a_model_without_attention(toy_corpus, tmp_path, capsys):
    source, target = toy_corpus
    run_dir = tmp_path / "run"
    assert (
        main(tiny_train_args(source, target, run_dir, "training.epochs=1", "model.type=seq2seq"))
        == 0
    )
    capsys.readouterr()
    assert main(["plot-attention", "--run", str(run_dir), "ein hund"]) == 2
    assert "without attention" in capsys.readouterr().err


def test_a_vocabulary_too_small_for_the_script_is_one_line_and_leaves_no_run(tmp_path, capsys):
    chinese = ["我爱北京天安门", "今天天气很好", "他们在公园里散步", "这本书非常有意思"] * 4
    source = write_lines(tmp_path / "train.src", chinese)
    target = write_lines(
        tmp_path / "train.tgt", ["I love Beijing.", "Nice day.", "A walk.", "Fun."] * 4
    )
    run_dir = tmp_path / "run"
    status = main(tiny_train_args(source, target, run_dir, "tokenizer.vocab_size=16"))
    err = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in err
    assert "The source SentencePiece model needs" in err
    assert "tokenizer.vocab_size=16" in err and "tokenizer.character_coverage" in err
    assert not (run_dir / "config.yaml").exists(), "the corrected command must not be refused"
    assert main(tiny_train_args(source, target, run_dir, "training.epochs=1")) == 0


def test_byte_fallback_in_a_vocabulary_too_small_for_it_says_what_to_change(tmp_path, capsys):
    source = write_lines(tmp_path / "train.src", [source for source, _ in TOY_PAIRS])
    target = write_lines(tmp_path / "train.tgt", [target for _, target in TOY_PAIRS])
    overrides = ["tokenizer.byte_fallback=true", "tokenizer.vocab_size=100"]
    status = main(tiny_train_args(source, target, tmp_path / "run", *overrides))
    err = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in err
    assert "tokenizer.byte_fallback=true" in err and "set tokenizer.byte_fallback=false" in err
    assert "set tokenizer.character_coverage=auto" in err


def test_validation_bleu_decodes_a_random_sample_in_corpus_order(tmp_path):
    # Validation files are often sorted by length: the first pairs would be the shortest.
    valid = ParallelCorpus(
        tuple(f"source {i}" for i in range(100)), tuple(f"target {i}" for i in range(100))
    )
    config = Config.from_yaml(str(TINY_RECIPE), ["training.bleu_samples=10"])
    translator = types.SimpleNamespace(model=types.SimpleNamespace(has_attention=False))
    callbacks = trainer._callbacks(RunPaths(str(tmp_path)), config, translator, valid)
    (bleu,) = [callback for callback in callbacks if isinstance(callback, BleuCallback)]
    chosen = [valid.sources.index(source) for source in bleu.sources]
    assert len(chosen) == 10 and chosen == sorted(chosen) and chosen != list(range(10))
    assert bleu.references == [valid.targets[index] for index in chosen]


@pytest.mark.slow  # XLA compiles a program per bucket length: about a minute.
def test_jit_compile_trains_under_xla_on_bucket_length_batches(toy_corpus, tmp_path, monkeypatch):
    import keras

    source, target = toy_corpus
    run_dir = tmp_path / "run"
    seen = {}
    original_stream, original_callbacks = trainer.stream_dataset, trainer._callbacks

    def stream_dataset(*args, **kwargs):
        seen["pad_to_bucket"] = kwargs["pad_to_bucket"]
        return original_stream(*args, **kwargs)

    class RecordJitCompile(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["jit_compile"] = self.model.jit_compile

    monkeypatch.setattr(trainer, "stream_dataset", stream_dataset)
    monkeypatch.setattr(
        trainer, "_callbacks", lambda *args: original_callbacks(*args) + [RecordJitCompile()]
    )
    overrides = ("training.jit_compile=true", "training.epochs=2", "training.steps_per_epoch=6")
    assert main(tiny_train_args(source, target, run_dir, *overrides)) == 0
    assert seen == {"pad_to_bucket": True, "jit_compile": True}
    with open(run_dir / "history.csv", encoding="utf-8") as file:
        losses = [float(row["loss"]) for row in csv.DictReader(file)]
    assert len(losses) == 2 and losses[1] < losses[0]
    output = tmp_path / "output"
    assert (
        main(["translate", "--run", str(run_dir), "--input", str(source), "--output", str(output)])
        == 0
    )
    assert len(output.read_text(encoding="utf-8").splitlines()) == len(TOY_PAIRS)
