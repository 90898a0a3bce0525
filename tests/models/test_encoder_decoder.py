"""What both translation models share: composition, the search-state layout, the config."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.config import ModelConfig
from nmt_keras.models import EncoderDecoder, build_model
from nmt_keras.search import beam_search
from nmt_keras.text.tokenizer import BOS_ID, EOS_ID, PAD_ID

SOURCE = np.array([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]], "int32")
FAMILIES = {
    "bahdanau-lstm": ModelConfig(type="bahdanau", rnn="lstm", embedding_dim=6, units=8),
    "luong-local-p": ModelConfig(type="luong", window_mode="local-p", embedding_dim=6, units=8),
    "transformer": ModelConfig(
        type="transformer", embedding_dim=8, units=8, num_heads=2, ff_dim=16, dropout=0.0
    ),
}


@pytest.fixture(params=sorted(FAMILIES), scope="module")
def model(request):
    keras.utils.set_random_seed(0)
    return build_model(FAMILIES[request.param], 13, 11)


def test_memory_is_static_and_the_rest_follows_the_beams(model):
    assert isinstance(model, EncoderDecoder)
    state = model.initial_search_state(SOURCE)
    flags = model.state_reorder_flags(state)
    assert set(tf.nest.flatten(flags["memory"])) == {False}
    others = [
        flag for key, value in flags.items() if key != "memory" for flag in tf.nest.flatten(value)
    ]
    assert others and set(others) == {True}


def test_beam_search_without_reordering_the_memory_gives_the_same_hypotheses(model):
    state = model.initial_search_state(SOURCE)

    def search(reorder_flags):
        return beam_search(
            model.next_fn,
            state,
            batch_size=2,
            beam_size=4,
            n_best=2,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            pad_id=PAD_ID,
            max_length=7,
            reorder_flags=reorder_flags,
        )

    reordered, in_place = search(None), search(model.state_reorder_flags(state))
    for expected, actual in zip(tf.nest.flatten(reordered), tf.nest.flatten(in_place), strict=True):
        np.testing.assert_array_equal(actual, expected)
