import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.decoding import GREEDY, DecodingOptions, decode
from nmt_keras.text.tokenizer import BOS_ID, EOS_ID

A, B = 4, 5  # two ordinary tokens of a 6-token vocabulary
VOCAB = 6


def transition_logits():
    """log p(next | previous): greedy takes A (0.6) then stalls; beam finds B -> EOS.

    P(A, EOS) = 0.6 * 0.3 = 0.18 while P(B, EOS) = 0.4 * 0.9 = 0.36.
    """
    probs = np.full((VOCAB, VOCAB), 1e-6)
    probs[BOS_ID, A], probs[BOS_ID, B] = 0.6, 0.4
    probs[A, EOS_ID], probs[A, A] = 0.3, 0.7
    probs[B, EOS_ID], probs[B, B] = 0.9, 0.1
    probs[EOS_ID, EOS_ID] = probs[0, 0] = 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    return np.log(probs).astype(np.float32)


class TransitionModel:
    """A stand-in model whose next token depends only on the previous one."""

    def __init__(self, has_attention=True):
        self.has_attention = has_attention
        self.supports_hard_attention = has_attention
        self.table = tf.constant(transition_logits())
        self.hard_calls = []

    def initial_search_state(self, source):
        return {"source": tf.cast(source, tf.float32)}

    def state_reorder_flags(self, state):
        return {"source": False}  # the same for every beam of a sentence

    def next_fn(self, tokens, state, step, hard_attention=False):
        self.hard_calls.append(hard_attention)
        logits = tf.gather(self.table, tokens)
        attention = None
        if self.has_attention:
            # (batch, src_len): all weight on the first position, or spread when soft.
            src_len = tf.shape(state["source"])[1]
            if hard_attention:
                attention = tf.one_hot(tf.zeros_like(tokens), src_len)
            else:
                attention = tf.fill(
                    [tf.shape(tokens)[0], src_len], 1.0 / tf.cast(src_len, tf.float32)
                )
        return logits, state, attention


SOURCE = tf.constant([[BOS_ID, 7, EOS_ID], [BOS_ID, 8, EOS_ID]])


def run(options, model=None, max_length=6):
    return decode(model or TransitionModel(), SOURCE, options, tf.constant(max_length))


def test_greedy_is_the_default_and_has_no_nbest():
    decoded = run(GREEDY)
    np.testing.assert_array_equal(decoded.best.tokens[0][:2], [A, A])
    assert decoded.nbest_tokens is None and decoded.nbest_scores is None


def test_beam_finds_the_more_probable_translation_with_nbest_lists():
    decoded = run(DecodingOptions(beam_size=2, n_best=2))
    np.testing.assert_array_equal(decoded.best.tokens[:, :2], [[B, EOS_ID], [B, EOS_ID]])
    np.testing.assert_allclose(decoded.best.scores, np.log([0.36, 0.36]), atol=1e-4)
    assert decoded.nbest_tokens.shape[:2] == (2, 2)
    assert decoded.nbest_scores.shape == (2, 2)
    np.testing.assert_array_equal(decoded.nbest_tokens[0, 0, :2], [B, EOS_ID])
    assert decoded.nbest_scores[0, 0] >= decoded.nbest_scores[0, 1]


def test_n_best_one_keeps_only_the_best():
    decoded = run(DecodingOptions(beam_size=3, n_best=1))
    assert decoded.nbest_tokens.shape[:2] == (2, 1)


def test_sampling_with_top_k_one_is_greedy():
    greedy = run(GREEDY)
    sampled = run(DecodingOptions(sampling=True, top_k=1, seed=3))
    np.testing.assert_array_equal(sampled.best.tokens, greedy.best.tokens)
    assert sampled.nbest_tokens is None


def test_hard_attention_reaches_the_model():
    model = TransitionModel()
    decoded = run(DecodingOptions(hard_attention=True), model)
    assert model.hard_calls and all(model.hard_calls)
    np.testing.assert_array_equal(decoded.best.attention[0, 0], [1.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "options",
    [DecodingOptions(hard_attention=True), DecodingOptions(beam_size=2, coverage_penalty=0.2)],
)
def test_attention_options_need_a_model_with_attention(options):
    with pytest.raises(ValueError, match="with attention"):
        run(options, TransitionModel(has_attention=False))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beam_size": 0}, "beam_size >= 1"),
        ({"beam_size": 2, "n_best": 3}, "n_best <= beam_size"),
        ({"n_best": 0}, "n_best <= beam_size"),
        ({"length_penalty": -1.0}, "length_penalty >= 0"),
        ({"sampling": True, "beam_size": 4, "n_best": 1}, "beam_size=1 when sampling"),
        ({"temperature": 0.0}, "temperature > 0"),
        ({"top_k": -1}, "top_k >= 0"),
    ],
)
def test_invalid_options_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DecodingOptions(**kwargs)


def test_uses_beam():
    assert not GREEDY.uses_beam
    assert DecodingOptions(beam_size=4).uses_beam
