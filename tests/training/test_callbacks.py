import os

import keras
import numpy as np
import pytest
import sacrebleu
import tensorflow as tf

from nmt_keras.training import callbacks as callbacks_module
from nmt_keras.training.callbacks import (
    AttentionImage,
    BleuCallback,
    CosineBudgetDecay,
    TimeBudget,
    WeightsCheckpoint,
)
from nmt_keras.translator import Alignment

SOURCES = ["el perro corre en el parque", "dos hombres juegan", "una mujer lee un libro"]
REFERENCES = ["the dog runs in the park", "two men are playing", "a woman reads a book"]


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    return model


def set_weights_to(model, value):
    model.set_weights([np.full(w.shape, value, "float32") for w in model.get_weights()])


def saved_weights(path):
    model = tiny_model(seed=1)
    model.load_weights(path)
    return model.get_weights()[0][0, 0]


@pytest.fixture
def checkpoint_dir(tmp_path):
    return tmp_path / "checkpoints"


def make_checkpoint(checkpoint_dir, model, **kwargs):
    callback = WeightsCheckpoint(
        str(checkpoint_dir / "last.weights.h5"), str(checkpoint_dir / "best.weights.h5"), **kwargs
    )
    callback.set_model(model)
    return callback


def run_epochs(callback, model, values, key="val_loss"):
    """Ends one epoch per value, with the model's weights all set to the epoch index."""
    for epoch, value in enumerate(values):
        set_weights_to(model, float(epoch))
        callback.on_epoch_end(epoch, {key: value, "loss": 9.0})


def test_last_every_epoch_and_best_only_on_improvement(checkpoint_dir):
    model = tiny_model()
    callback = make_checkpoint(checkpoint_dir, model)
    last, best = checkpoint_dir / "last.weights.h5", checkpoint_dir / "best.weights.h5"
    run_epochs(callback, model, [3.0])
    assert saved_weights(last) == 0.0 and saved_weights(best) == 0.0
    run_epochs(callback, model, [3.0, 2.0, 2.5, 2.0])  # epochs 0..3
    assert saved_weights(last) == 3.0
    assert saved_weights(best) == 1.0  # 2.0 at epoch 1; equal later values do not count
    assert callback.best == 2.0
    assert sorted(os.listdir(checkpoint_dir)) == ["best.weights.h5", "last.weights.h5"]


def test_bleu_is_maximised(checkpoint_dir):
    model = tiny_model()
    callback = make_checkpoint(checkpoint_dir, model, monitor="val_bleu")
    assert callback.best == -np.inf
    run_epochs(callback, model, [10.0, 30.0, 20.0, 25.0], key="val_bleu")
    assert saved_weights(checkpoint_dir / "best.weights.h5") == 1.0
    assert saved_weights(checkpoint_dir / "last.weights.h5") == 3.0
    assert callback.best == 30.0


def test_initial_best_is_honoured(checkpoint_dir):
    model = tiny_model()
    callback = make_checkpoint(checkpoint_dir, model, initial_best=1.5)
    run_epochs(callback, model, [2.0, 1.6])
    assert (checkpoint_dir / "last.weights.h5").exists()
    assert not (checkpoint_dir / "best.weights.h5").exists()
    assert callback.best == 1.5
    run_epochs(callback, model, [2.0, 1.6, 1.4])
    assert saved_weights(checkpoint_dir / "best.weights.h5") == 2.0
    assert callback.best == 1.4


def test_initial_best_for_a_maximised_monitor(checkpoint_dir):
    model = tiny_model()
    callback = make_checkpoint(checkpoint_dir, model, monitor="val_bleu", initial_best=40.0)
    run_epochs(callback, model, [35.0], key="val_bleu")
    assert not (checkpoint_dir / "best.weights.h5").exists()
    run_epochs(callback, model, [35.0, 41.0], key="val_bleu")
    assert saved_weights(checkpoint_dir / "best.weights.h5") == 1.0


def test_missing_monitor_writes_only_last(checkpoint_dir):
    model = tiny_model()
    callback = make_checkpoint(checkpoint_dir, model, monitor="val_bleu")
    callback.on_epoch_end(0, {"val_loss": 1.0})
    callback.on_epoch_end(1, None)
    assert os.listdir(checkpoint_dir) == ["last.weights.h5"]


def test_an_interrupted_save_leaves_the_previous_checkpoint_intact(checkpoint_dir, monkeypatch):
    model = tiny_model()
    callback = make_checkpoint(checkpoint_dir, model)
    run_epochs(callback, model, [2.0])
    last = checkpoint_dir / "last.weights.h5"
    before = last.read_bytes()

    def failing_save(path):
        with open(path, "wb") as file:
            file.write(b"truncated")
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "save_weights", failing_save)
    with pytest.raises(KeyboardInterrupt):
        run_epochs(callback, model, [2.0, 1.0])
    assert last.read_bytes() == before  # never overwritten in place
    assert saved_weights(last) == 0.0


def test_checkpoints_follow_bleu_during_fit(checkpoint_dir):
    """BleuCallback adds val_bleu to the logs before WeightsCheckpoint reads them."""
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    outputs = [["x"] * 3, REFERENCES, [REFERENCES[0], "x", "y"]]  # epoch 1 is perfect
    translator = FakeTranslator(outputs)
    weights_by_epoch = []
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: weights_by_epoch.append(model.get_weights())
    )
    checkpoint = make_checkpoint(checkpoint_dir, model, monitor="val_bleu")
    history = model.fit(
        np.ones((4, 3), "float32"),
        np.zeros((4, 2), "float32"),
        epochs=3,
        verbose=0,
        callbacks=[BleuCallback(translator, SOURCES, REFERENCES), checkpoint, recorder],
    )
    assert history.history["val_bleu"][1] == pytest.approx(100.0)
    assert history.history["val_bleu"][0] < 1.0
    restored = tiny_model(seed=2)
    restored.load_weights(str(checkpoint_dir / "best.weights.h5"))
    for actual, expected in zip(restored.get_weights(), weights_by_epoch[1], strict=True):
        np.testing.assert_array_equal(actual, expected)
    restored.load_weights(str(checkpoint_dir / "last.weights.h5"))
    for actual, expected in zip(restored.get_weights(), weights_by_epoch[2], strict=True):
        np.testing.assert_array_equal(actual, expected)


class FakeTranslator:
    """Stands in for Translator: returns one canned list of outputs per call."""

    def __init__(self, outputs):
        self.outputs = list(outputs)
        self.calls = []

    def translate_all(self, sentences, batch_size=64):
        self.calls.append((list(sentences), batch_size))
        return list(self.outputs[len(self.calls) - 1])


def test_bleu_callback_adds_sacrebleu_scores():
    hypotheses = ["the dog runs in a park", "two men play", "a woman is reading a book"]
    translator = FakeTranslator([hypotheses])
    callback = BleuCallback(translator, SOURCES, REFERENCES, batch_size=2)
    logs = {"val_loss": 1.0}
    callback.on_epoch_end(0, logs)
    assert translator.calls == [(SOURCES, 2)]
    assert logs["val_loss"] == 1.0
    assert logs["val_bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [REFERENCES]).score)
    assert logs["val_chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [REFERENCES]).score)
    assert 0.0 < logs["val_bleu"] < 100.0


def test_bleu_callback_perfect_output_and_no_logs():
    translator = FakeTranslator([REFERENCES, REFERENCES])
    callback = BleuCallback(translator, SOURCES, REFERENCES)
    logs = {}
    callback.on_epoch_end(0, logs)
    assert logs == {"val_bleu": pytest.approx(100.0), "val_chrf": pytest.approx(100.0)}
    callback.on_epoch_end(1, None)  # nothing to write to, still decodes
    assert len(translator.calls) == 2 and translator.calls[0][1] == 128


def test_bleu_callback_scores_with_the_configured_tokenizer():
    sources, references, hypotheses = ["We went to school."], ["我们去学校了。"], ["我们去学校。"]
    scored = {}
    for tokenize in ("auto", "zh", "13a"):
        translator = FakeTranslator([hypotheses])
        callback = BleuCallback(translator, sources, references, tokenize=tokenize)
        logs = {}
        callback.on_epoch_end(0, logs)
        scored[tokenize] = logs["val_bleu"]
    assert scored["auto"] == scored["zh"] > 0.0
    assert scored["13a"] == 0.0


def test_bleu_callback_needs_one_reference_per_source():
    with pytest.raises(ValueError, match="as many references as sources"):
        BleuCallback(FakeTranslator([]), SOURCES, REFERENCES[:2])


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_time_budget_stops_once_spent(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(callbacks_module.time, "monotonic", clock)
    model = tiny_model()
    model.stop_training = False
    budget = TimeBudget(minutes=0.5)
    budget.set_model(model)
    budget.on_train_begin()
    clock.now += 29.0
    budget.on_train_batch_end(0)
    assert model.stop_training is False
    clock.now += 1.0
    budget.on_train_batch_end(1)
    assert model.stop_training is True


def fit_four_batches(model, epochs, callbacks):
    """Fits `model` for `epochs` epochs of four batches of two rows."""
    return model.fit(
        np.ones((8, 3), "float32"),
        np.zeros((8, 2), "float32"),
        batch_size=2,
        epochs=epochs,
        verbose=0,
        callbacks=callbacks,
    )


def test_time_budget_stops_fit_after_the_batch_that_spends_it():
    model = tiny_model()
    model.compile(optimizer="sgd", loss="mse")
    batches = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
    history = fit_four_batches(model, epochs=5, callbacks=[TimeBudget(minutes=0.0), counter])
    assert batches == [0]
    assert len(history.history["loss"]) == 1
    history = fit_four_batches(model, epochs=2, callbacks=[TimeBudget(minutes=60.0)])
    assert len(history.history["loss"]) == 2


def test_cosine_budget_decay_follows_the_half_cosine_of_the_budget():
    decay = CosineBudgetDecay(peak_learning_rate=0.004, minutes=10.0)
    assert decay.learning_rate(0.0, step=1) == pytest.approx(0.004)
    assert decay.learning_rate(150.0, step=9) == pytest.approx(0.004 * 0.5 * (1 + 2**-0.5))
    assert decay.learning_rate(300.0, step=9) == pytest.approx(0.002)
    assert decay.learning_rate(600.0, step=9) == pytest.approx(0.0)
    assert decay.learning_rate(900.0, step=9) == pytest.approx(0.0)  # past the budget


def test_cosine_budget_decay_warms_up_linearly_first():
    decay = CosineBudgetDecay(peak_learning_rate=0.004, minutes=10.0, warmup_steps=4)
    assert [decay.learning_rate(0.0, step) for step in (1, 2, 4, 8)] == pytest.approx(
        [0.001, 0.002, 0.004, 0.004]
    )
    assert decay.learning_rate(300.0, step=2) == pytest.approx(0.001)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(peak_learning_rate=0.0, minutes=1.0), "peak_learning_rate > 0"),
        (dict(peak_learning_rate=1e-3, minutes=0.0), "minutes > 0"),
        (dict(peak_learning_rate=1e-3, minutes=1.0, warmup_steps=0), "warmup_steps > 0"),
    ],
)
def test_cosine_budget_decay_rejects_non_positive_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        CosineBudgetDecay(**arguments)


def test_cosine_budget_decay_sets_the_rate_of_every_batch_during_fit(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(callbacks_module.time, "monotonic", clock)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    rates = []

    def record_rate_and_tick(batch, logs):
        rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
        clock.now += 15.0

    history = fit_four_batches(
        model,
        epochs=1,
        callbacks=[
            CosineBudgetDecay(peak_learning_rate=1.0, minutes=1.0),
            keras.callbacks.LambdaCallback(on_train_batch_end=record_rate_and_tick),
        ],
    )
    assert rates == pytest.approx([1.0, 0.5 * (1 + 2**-0.5), 0.5, 0.5 * (1 - 2**-0.5)])
    assert history.history["learning_rate"] == pytest.approx([0.5 * (1 - 2**-0.5)])


class FixedAlignment:
    """A translator stand-in whose `align` returns a fixed alignment."""

    def __init__(self):
        self.sentences = []

    def align(self, sentence):
        self.sentences.append(sentence)
        return Alignment(
            translation="a dog",
            source_tokens=["<s>", "▁un", "▁perro", "</s>"],
            target_tokens=["▁a", "▁dog", "</s>"],
            weights=np.eye(3, 4, k=1, dtype=np.float32),
        )


def test_attention_image_logs_one_image_per_epoch(tmp_path):
    translator = FixedAlignment()
    callback = AttentionImage(translator, "un perro", str(tmp_path))
    for epoch in range(2):
        callback.on_epoch_end(epoch)
    callback.on_train_end()
    (events,) = (tmp_path / "attention").glob("events.out.tfevents.*")
    images = [
        (event.step, value)
        for event in tf.compat.v1.train.summary_iterator(str(events))
        for value in event.summary.value
        if value.tag == "attention"
    ]
    assert [step for step, _ in images] == [0, 1]
    assert translator.sentences == ["un perro", "un perro"]
    png = tf.make_ndarray(images[0][1].tensor)[2]  # [width, height, encoded PNG]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
