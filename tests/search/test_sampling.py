import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.search import SearchResult, greedy_search, sample
from tests.search.test_beam import MarkovModel, log_softmax
from tests.search.test_greedy import audit_graph_def

PAD, BOS, EOS = 0, 1, 2


def margin_model(steps=8, batch=5, vocab=6, src_len=4, seed=0, margin=3.0):
    """A Markov model whose most probable token leads the others by `margin` logits."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(steps, batch, vocab, vocab))
    best = rng.integers(vocab, size=logits.shape[:-1])
    np.put_along_axis(logits, best[..., None], logits.max(-1, keepdims=True) + margin, axis=-1)
    attention = rng.uniform(size=(steps, batch, vocab, src_len))
    return MarkovModel(logits, attention / attention.sum(-1, keepdims=True))


def run_sample(model, max_length=8, batch=None, **kwargs):
    return sample(
        model.next_fn,
        model.initial_state(batch),
        batch_size=model.batch if batch is None else batch,
        bos_id=BOS,
        eos_id=EOS,
        pad_id=PAD,
        max_length=max_length,
        **kwargs,
    )


def assert_same(got, want):
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def greedy(model, max_length=8):
    return greedy_search(
        model.next_fn,
        model.initial_state(),
        batch_size=model.batch,
        bos_id=BOS,
        eos_id=EOS,
        pad_id=PAD,
        max_length=max_length,
    )


@pytest.mark.parametrize("seed", [None, 3])
def test_low_temperature_is_greedy_search(seed):
    model = margin_model()
    result = run_sample(model, temperature=1e-3, seed=seed)
    assert isinstance(result, SearchResult)
    assert_same(result, greedy(model))


def test_top_1_is_greedy_search():
    model = margin_model(margin=0.1, seed=1)
    assert_same(run_sample(model, top_k=1, temperature=5.0), greedy(model))


def test_fixed_seed_reproduces_and_other_seeds_differ():
    model = MarkovModel(np.zeros((10, 64, 6, 6)))  # uniform: every draw is a coin toss
    first, again = run_sample(model, seed=11), run_sample(model, seed=11)
    assert_same(first, again)
    other = run_sample(model, seed=12)
    assert not np.array_equal(first.tokens, other.tokens)
    fn = tf.function(lambda: run_sample(model, seed=11))
    assert_same(fn(), first)


def one_step_model(logits, rows):
    """Every row draws one token from the same logits: (vocab,)."""
    vocab = len(logits)
    return MarkovModel(np.broadcast_to(np.asarray(logits), (1, rows, vocab, vocab)))


LOGITS = np.log([0.05, 0.1, 0.15, 0.2, 0.5])


@pytest.mark.parametrize(
    "temperature, top_k, seed", [(1.0, 0, 5), (2.0, 0, None), (0.7, 3, 6), (1.0, 9, None)]
)
def test_frequencies_follow_the_tempered_top_k_distribution(temperature, top_k, seed):
    rows = 20000
    model = one_step_model(LOGITS, rows)
    result = run_sample(model, max_length=1, temperature=temperature, top_k=top_k, seed=seed)
    tokens = result.tokens.numpy()[:, 0]
    expected = np.exp(LOGITS / temperature)
    if top_k:
        expected[np.argsort(-LOGITS)[top_k:]] = 0.0
    expected /= expected.sum()
    frequencies = np.bincount(tokens, minlength=len(LOGITS)) / rows
    np.testing.assert_allclose(frequencies, expected, atol=0.015)
    assert np.all(frequencies[expected == 0.0] == 0.0)
    # Scores are the untempered model log-probabilities of the drawn tokens.
    np.testing.assert_allclose(result.scores, log_softmax(LOGITS)[tokens], rtol=1e-5)


def test_scores_lengths_and_pad_after_eos():
    model = margin_model(steps=6, batch=32, seed=2, margin=0.5)
    model.logits[:, :, :, EOS] += 1.0
    result = run_sample(model, max_length=6, seed=4)
    for b in range(32):
        length = result.lengths[b].numpy()
        tokens = [int(t) for t in result.tokens[b, :length]]
        assert EOS not in tokens[:-1] and (tokens[-1] == EOS or length == 6)
        assert np.all(result.tokens[b, length:].numpy() == PAD)
        assert np.all(result.attention[b, length:].numpy() == 0.0)
        np.testing.assert_allclose(result.scores[b], model.log_prob(b, tokens), rtol=1e-5)


@pytest.mark.parametrize("seed", [None, 7])
def test_graph_with_unknown_batch_uses_only_serving_safe_ops(seed):
    model = margin_model()

    def search(sentence):
        return sample(
            model.next_fn,
            {"sentence": sentence},
            batch_size=tf.shape(sentence)[0],
            bos_id=BOS,
            eos_id=EOS,
            pad_id=PAD,
            max_length=8,
            top_k=3,
            seed=seed,
        )

    fn = tf.function(search, input_signature=[tf.TensorSpec([None], tf.int32)])
    ops = audit_graph_def(fn.get_concrete_function().graph.as_graph_def())
    assert ops & {"While", "StatelessWhile"}
    for sentences in [[0, 1, 2], [4], []]:
        result = fn(tf.constant(sentences, tf.int32))
        assert result.tokens.shape[0] == len(sentences)
    if seed is not None:
        assert_same(fn(tf.constant([0, 1, 2])), search(tf.constant([0, 1, 2])))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(temperature=0.0), "Expected temperature > 0. Received: temperature=0.0"),
        (dict(top_k=-1), "Expected top_k >= 0. Received: top_k=-1"),
        (dict(max_length=0), "Expected max_length >= 1"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_sample(margin_model(), **kwargs)
