import keras
import numpy as np
import pytest

from nmt_keras.behaviour import MODEL_FAMILIES, EventEmbedding, EventFeaturizer, NextPurchaseModel
from nmt_keras.behaviour.model import basket_loss
from nmt_keras.behaviour.purchase_statistics import NUM_STATISTICS
from nmt_keras.behaviour.recommender import Recommender
from nmt_keras.behaviour.repeat_decoder import LOG_ZERO, RepeatDecoder
from tests.layers.harness import call_repeat_decoder, run_layer_test

CATALOGUE = [f"P{i}" for i in range(12)]


def features(statistics=False):
    """Two histories: three events, and none at all (a customer without history)."""
    return EventFeaturizer(CATALOGUE)(
        items=[["P1", "P2", "P1"], ["", "", ""]],
        timestamps=[[0, 3600, 90000], [0, 0, 0]],
        quantities=[[2.0, -1.0, 4.0], [0.0, 0.0, 0.0]],
        prices=[[1.0, 1.0, 2.5], [0.0, 0.0, 0.0]],
        statistics=statistics,
    )


def model(family, **kwargs):
    kwargs = {"units": 8, "num_heads": 2, "attention_units": 4, "negatives": 5, **kwargs}
    return NextPurchaseModel(len(CATALOGUE) + 2, family, **kwargs)


VARIANTS = [(family, repeat) for family in MODEL_FAMILIES for repeat in (False, True)]


@pytest.mark.parametrize("family, repeat", VARIANTS)
def test_every_variant_gives_basket_log_probabilities_and_ranks_the_catalogue(family, repeat):
    net = model(family, repeat=repeat)
    inputs = {**features(repeat), "basket": np.array([[3, 4], [5, 0]])}
    log_probs = np.asarray(net(inputs))
    assert log_probs.shape == (2, 2) and np.all(log_probs <= 0.0)
    encoded = net.encode(features(repeat))
    scores = net.score_items(encoded, chunk_size=5)
    assert tuple(scores.shape) == (2, len(CATALOGUE))
    # Chunking the catalogue changes nothing.
    np.testing.assert_allclose(scores, net.score_items(encoded), rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(scores))


def test_a_repeat_model_ranks_by_a_distribution_over_the_catalogue():
    net = model("gru-luong", repeat=True)
    log_probs = np.asarray(net.score_items(net.encode(features(True))))
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, rtol=1e-5)


def test_a_repeat_basket_item_takes_the_copy_probability():
    net = model("gru", repeat=True)
    inputs = features(True)
    encoded = net.encode(inputs)
    # P1 (id 3) is row 0's repeat set at its last purchase (event 2); P2 was only cancelled.
    assert np.asarray(inputs["repeat_set"][0]).tolist() == [False, False, True]
    log_probs = np.asarray(net({**inputs, "basket": np.array([[3, 4], [3, 0]])}))
    assert log_probs[0, 0] == pytest.approx(float(encoded["repeat_log_probs"][0, 2]), rel=1e-5)
    # Row 1 has no past products: P(explore) = 1, and its items are explore items.
    assert float(encoded["explore_log_gate"][1]) == 0.0
    assert np.all(np.asarray(encoded["repeat_log_probs"][1]) == LOG_ZERO)
    # The catalogue ranking agrees with the basket's for a repeat item.
    ranked = np.asarray(net.score_items(encoded))
    assert ranked[0, 3 - net.first_item_id] == pytest.approx(log_probs[0, 0], rel=1e-5)


@pytest.mark.parametrize("family, repeat", [v for v in VARIANTS if v[0] != "gru"])
def test_explanations_cover_the_real_events_only(family, repeat):
    net = model(family, repeat=repeat)
    candidates = np.array([[3, 4, 5], [3, 4, 5]])
    attention = np.asarray(net.explain(net.encode(features(repeat)), candidates))
    assert attention.shape == (2, 3, 3)
    np.testing.assert_allclose(attention[0].sum(-1), 1.0, rtol=1e-5)
    assert np.all(attention[1] == 0.0)  # no events: nothing to attend to
    if repeat:  # P1 (id 3) was bought twice: its own purchases explain it
        np.testing.assert_allclose(attention[0, 0], [0.5, 0.0, 0.5])


def test_the_encoder_reads_the_most_recent_events_only():
    net = model("gru-luong", sequence_length=2)
    encoded = net.encode(features())
    assert tuple(encoded["states"].shape) == (2, 2, 8)
    attention = np.asarray(net.explain(encoded, np.array([[3], [3]])))
    assert attention.shape == (2, 1, 3)  # mapped back onto the whole history
    assert attention[0, 0, 0] == 0.0 and attention[0, 0, 1:].sum() == pytest.approx(1.0)
    # A window as long as the history changes nothing.
    whole = model("gru-luong")
    longer = model("gru-luong", sequence_length=10)
    longer.encode(features())
    longer.score_items(longer.encode(features()))
    whole.score_items(whole.encode(features()))
    longer.set_weights(whole.get_weights())
    np.testing.assert_allclose(
        longer.score_items(longer.encode(features())),
        whole.score_items(whole.encode(features())),
        rtol=1e-5,
    )


def test_the_fixed_context_family_has_no_attention():
    net = model("gru")
    with pytest.raises(ValueError, match="fixed context vector attends to nothing"):
        net.explain(net.encode(features()), np.array([[3], [3]]))


def test_sampled_negatives_from_the_basket_or_the_repeat_set_are_left_out():
    # Two products: 2 and 3 (P0, P1). Every negative drawn is in row 0's basket, so its
    # items compete with nothing; row 1 bought P1 before, so its explore item P0 competes
    # with nothing either and takes P(explore) whole.
    featurizer = EventFeaturizer(["P0", "P1"])
    inputs = featurizer(
        items=[["P0"], ["P1"]],
        timestamps=[[0], [0]],
        quantities=[[1.0], [1.0]],
        prices=[[1.0], [1.0]],
        statistics=True,
    )
    for repeat in (False, True):
        net = NextPurchaseModel(4, "gru", units=8, negatives=50, repeat=repeat)
        log_probs = np.asarray(net({**inputs, "basket": np.array([[2, 3], [2, 0]])}))
        if not repeat:
            np.testing.assert_allclose(log_probs[0], 0.0, atol=1e-6)
        else:
            explore = float(net.encode(inputs)["explore_log_gate"][1])
            assert log_probs[1, 0] == pytest.approx(explore, abs=1e-6)


def test_basket_loss_averages_the_real_items():
    log_probs = np.array([[-2.0, -1.0, -9.0]], "float32")
    loss = basket_loss(np.array([[1.0, 1.0, 0.0]]), log_probs)
    np.testing.assert_allclose(loss, [1.5], rtol=1e-6)
    assert float(basket_loss(np.zeros((1, 3)), log_probs)[0]) == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="family to be one of"):
        model("lstm")
    with pytest.raises(ValueError, match="num_ids > 2"):
        NextPurchaseModel(2)


@pytest.mark.parametrize("family, repeat", VARIANTS)
def test_config_round_trip_keeps_the_scores(family, repeat):
    net = model(family, repeat=repeat, sequence_length=2)
    scores = net.score_items(net.encode(features(repeat)))
    clone = NextPurchaseModel.from_config(net.get_config())
    clone.score_items(clone.encode(features(repeat)))
    clone.set_weights(net.get_weights())
    np.testing.assert_allclose(clone.score_items(clone.encode(features(repeat))), scores, rtol=1e-5)


@pytest.mark.parametrize("repeat", [False, True])
def test_fit_lowers_the_loss(repeat):
    keras.utils.set_random_seed(0)
    net = model("gru-luong", negatives=8, repeat=repeat)
    net.compile(keras.optimizers.Adam(0.05), basket_loss)
    inputs = {
        name: np.repeat(np.asarray(value), 8, axis=0) for name, value in features(repeat).items()
    }
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


def test_repeat_decoder_layer_contract(tmp_path):
    rng = np.random.default_rng(0)
    inputs = {
        "statistics": rng.uniform(size=(2, 4, NUM_STATISTICS)).astype("float32"),
        "repeat_set": np.array([[True, False, True, True], [False] * 4]),
        "item_embeddings": rng.normal(size=(2, 4, 8)).astype("float32"),
        "user": rng.normal(size=(2, 8)).astype("float32"),
    }
    run_layer_test(
        RepeatDecoder,
        {"units": 8, "attention_units": 4},
        inputs,
        ((2, 4), (2,)),
        call=call_repeat_decoder,
        float32_outputs=(0, 1),
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("repeat", [False, True])
def test_recommender_returns_top_k_codes_best_first(repeat):
    featurizer = EventFeaturizer(CATALOGUE)
    recommender = Recommender(featurizer, model("gru-bahdanau", repeat=repeat), k=4)
    outputs = recommender.recommend([["P1"]], [[0]], [[1.0]], [[1.0]], explain=True)
    products = [code.decode() for code in outputs["products"].numpy()[0]]
    scores = outputs["scores"].numpy()[0]
    assert len(set(products)) == 4 and set(products) <= set(CATALOGUE)
    assert np.all(np.diff(scores) <= 0)
    assert tuple(outputs["attention"].shape) == (1, 4, 1)
    with pytest.raises(ValueError, match="1 <= k <= 12"):
        Recommender(featurizer, model("gru"), k=13)


def test_self_attention_summary_is_the_last_event_state():
    encoded = model("self-attention").encode(features())
    np.testing.assert_allclose(encoded["summary"][0], encoded["states"][0, 2], rtol=1e-6)
    assert not np.any(encoded["summary"][1])  # no events: no state
