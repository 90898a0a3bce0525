import keras
import numpy as np
import pytest

from nmt_keras.behaviour import MODEL_FAMILIES, EventEmbedding, EventFeaturizer, NextPurchaseModel
from nmt_keras.behaviour.model import basket_softmax_loss
from nmt_keras.behaviour.recommender import Recommender
from tests.layers.harness import run_layer_test

CATALOGUE = [f"P{i}" for i in range(12)]


def features():
    """Two histories: three events, and none at all (a customer without history)."""
    return EventFeaturizer(CATALOGUE)(
        items=[["P1", "P2", "P1"], ["", "", ""]],
        timestamps=[[0, 3600, 90000], [0, 0, 0]],
        quantities=[[2.0, -1.0, 4.0], [0.0, 0.0, 0.0]],
        prices=[[1.0, 1.0, 2.5], [0.0, 0.0, 0.0]],
    )


def model(family, **kwargs):
    kwargs = {"units": 8, "num_heads": 2, "attention_units": 4, "negatives": 5, **kwargs}
    return NextPurchaseModel(len(CATALOGUE) + 2, family, **kwargs)


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_every_family_scores_positives_and_the_catalogue(family):
    net = model(family)
    inputs = {**features(), "basket": np.array([[3, 4], [5, 0]])}
    assert tuple(net(inputs).shape) == (2, 7)
    encoded = net.encode(features())
    scores = net.score_items(encoded, chunk_size=5)
    assert tuple(scores.shape) == (2, len(CATALOGUE))
    # Chunking the catalogue changes nothing.
    np.testing.assert_allclose(scores, net.score_items(encoded), rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(scores))


@pytest.mark.parametrize("family", MODEL_FAMILIES[1:])
def test_attention_covers_the_real_events_only(family):
    net = model(family)
    _, attention = net.score_items(net.encode(features()), return_attention=True)
    attention = np.asarray(attention)  # (batch, items, events)
    np.testing.assert_allclose(attention[0].sum(-1), 1.0, rtol=1e-5)
    assert np.all(attention[1] == 0.0)  # no events: nothing to attend to


def test_the_fixed_context_family_has_no_attention():
    net = model("gru")
    with pytest.raises(ValueError, match="fixed context vector attends to nothing"):
        net.score_items(net.encode(features()), return_attention=True)


def test_a_sampled_negative_in_the_basket_is_masked():
    net = model("gru", negatives=200)  # 200 draws from 12 items: every item comes up
    scores = np.asarray(net({**features(), "basket": np.array([[3, 4], [5, 0]])}))
    masked = scores[:, 2:] < -1e8
    assert masked.any(axis=1).all() and np.all(scores[:, :2] > -1e8)
    # Row 1's basket is one item: fewer of its negatives are masked than row 0's two.
    assert masked[1].sum() < masked[0].sum()


def test_basket_loss_averages_the_real_items():
    scores = np.array([[2.0, 0.0, 9.0, 0.0, 0.0]], "float32")  # basket of 3, 2 negatives
    loss = basket_softmax_loss(np.array([[1.0, 1.0, 0.0]]), scores)
    expected = np.mean([np.log(np.exp(s) + 2.0) - s for s in (2.0, 0.0)])
    np.testing.assert_allclose(loss, [expected], rtol=1e-6)
    assert float(basket_softmax_loss(np.zeros((1, 3)), scores)[0]) == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="family to be one of"):
        model("lstm")
    with pytest.raises(ValueError, match="num_ids > 2"):
        NextPurchaseModel(2)


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_config_round_trip_keeps_the_scores(family):
    net = model(family)
    scores = net.score_items(net.encode(features()))
    clone = NextPurchaseModel.from_config(net.get_config())
    clone.score_items(clone.encode(features()))
    clone.set_weights(net.get_weights())
    np.testing.assert_allclose(clone.score_items(clone.encode(features())), scores, rtol=1e-5)


def test_fit_lowers_the_loss():
    keras.utils.set_random_seed(0)
    net = model("gru-luong", negatives=8)
    net.compile(keras.optimizers.Adam(0.05), basket_softmax_loss)
    inputs = {name: np.repeat(value.numpy(), 8, axis=0) for name, value in features().items()}
    inputs["basket"] = np.tile([[3, 4], [5, 0]], (8, 1))
    labels = (inputs["basket"] > 0).astype("float32")
    history = net.fit(inputs, labels, batch_size=16, epochs=15, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_event_embedding_layer_contract(tmp_path):
    inputs = {name: value.numpy() for name, value in features().items()}
    run_layer_test(
        EventEmbedding,
        {"num_ids": 14, "units": 8},
        {"inputs": inputs},
        (2, 3, 8),
        tmp_path=tmp_path,
    )


def test_recommender_returns_top_k_codes_best_first():
    featurizer = EventFeaturizer(CATALOGUE)
    recommender = Recommender(featurizer, model("gru-bahdanau"), k=4)
    outputs = recommender.recommend([["P1"]], [[0]], [[1.0]], [[1.0]], explain=True)
    products = [code.decode() for code in outputs["products"].numpy()[0]]
    scores = outputs["scores"].numpy()[0]
    assert len(set(products)) == 4 and set(products) <= set(CATALOGUE)
    assert np.all(np.diff(scores) <= 0)
    assert tuple(outputs["attention"].shape) == (1, 4, 1)
    with pytest.raises(ValueError, match="1 <= k <= 12"):
        Recommender(featurizer, model("gru"), k=13)


def test_self_attention_summary_is_the_last_event_state():
    states, mask, summary = model("self-attention").encode(features())
    np.testing.assert_allclose(summary[0], states[0, 2], rtol=1e-6)
    assert not np.any(summary[1])  # no events: no state
