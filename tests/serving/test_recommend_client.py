"""`Client.recommend` against the local server serving fake recommender SavedModels."""

from __future__ import annotations

import dataclasses
import socket

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import model_pb2

from nmt_keras.serving import Client, History, Recommendation, ServerOptions, ServingError
from nmt_keras.serving import client as client_lib
from nmt_keras.serving.server import start_server
from nmt_keras.serving.signatures import (
    EXPLAIN,
    HISTORY_INPUTS,
    SERVING_DEFAULT,
    pad_histories,
)
from nmt_keras.serving.tensors import to_ndarray
from nmt_keras.serving.warmup import (
    MAX_WARMUP_RECORDS,
    make_history_warmup_requests,
    run_warmup,
    write_warmup_requests,
)
from tests.serving.fake_models import (
    FALLBACK_PRODUCTS,
    RECOMMEND_K,
    install_version,
    save_fake_recommender,
)

T0 = 1291191960  # 2010-12-01 08:26 UTC, in unix seconds


def history(*events: tuple[str, float, float]) -> History:
    """A history of (item, quantity, price) events, one minute apart."""
    return History(
        items=[item for item, _, _ in events],
        timestamps=[T0 + 60 * i for i in range(len(events))],
        quantities=[quantity for _, quantity, _ in events],
        prices=[price for _, _, price in events],
    )


EMPTY = History([], [], [], [])


def varied_histories() -> list[History]:
    """Histories of 0 to 6 events, with repeated items and a cancellation."""
    return [
        history(("A", 1, 2.5), ("B", 2, 0.5), ("A", 1, 2.5)),
        EMPTY,
        history(("C", 4, 0.25)),
        history(("A", 1, 1), ("B", 1, 1), ("C", 1, 1), ("D", 1, 1), ("E", 1, 1), ("F", -1, 1)),
        history(("X", 3, 1.5), ("X", -3, 1.5)),
        history(("P", 1, 1), ("Q", 2, 2), ("R", 3, 3), ("P", 1, 1)),
        history(("Z", 10, 0.75)),
    ]


def expected(customer: History) -> tuple[list[str], list[float]]:
    """What `FakeRecommender` answers: last distinct items, newest first; spend - slot."""
    newest_first = list(dict.fromkeys(reversed(customer.items)))[:RECOMMEND_K]
    products = newest_first + list(FALLBACK_PRODUCTS[len(newest_first) :])
    spend = sum(q * p for q, p in zip(customer.quantities, customer.prices, strict=True))
    return products, [spend - slot for slot in range(RECOMMEND_K)]


@pytest.fixture(scope="module")
def server(echo_saved_model, tmp_path_factory):
    """One server for "recommender" (with `explain`), "plain" (without) and "echo" (text)."""
    root = tmp_path_factory.mktemp("recommend")
    full = save_fake_recommender(str(root / "src_full"))
    plain = save_fake_recommender(str(root / "src_plain"), explain=False)
    write_warmup_requests(full, make_history_warmup_requests())
    write_warmup_requests(plain, make_history_warmup_requests(signature_names=[SERVING_DEFAULT]))
    models = {"recommender": full, "plain": plain, "echo": echo_saved_model}
    configs = []
    for name, source in models.items():
        install_version(source, str(root / name), 1)
        configs.append(
            f'config {{ name: "{name}" base_path: "{root / name}" model_platform: "tensorflow" }}'
        )
    config_file = root / "models.config"
    config_file.write_text("model_config_list {\n" + "\n".join(configs) + "\n}\n")
    options = ServerOptions(
        port=0, model_config_file=str(config_file), file_system_poll_wait_seconds=0
    )
    running = start_server(options)  # replays the warmup records: a failing one fails here
    yield running
    running.stop(grace=1)


def make_client(server, model: str = "recommender", **kwargs) -> Client:
    kwargs.setdefault("timeout", 10.0)
    return Client(f"127.0.0.1:{server.grpc_port}", model, **kwargs)


def spy_on_batches(client: Client) -> list[tuple[int, ...]]:
    """Records the shape of the `items` input of each Predict call the client makes."""
    shapes = []
    predict = client._predict

    def spy(contract, signature, inputs):
        shapes.append(inputs["items"].shape)
        return predict(contract, signature, inputs)

    client._predict = spy
    return shapes


# -- recommend -------------------------------------------------------------------------------


def test_recommend_keeps_order_across_batches(server):
    histories = varied_histories()
    with make_client(server, max_batch_size=3) as client:
        shapes = spy_on_batches(client)
        recommendations = client.recommend(histories)
    assert all(isinstance(r, Recommendation) and r.attention is None for r in recommendations)
    for customer, recommendation in zip(histories, recommendations, strict=True):
        products, scores = expected(customer)
        assert recommendation.products == products
        assert recommendation.scores == pytest.approx(scores)
    # Batches of histories of similar length, each padded to its longest (at least 1).
    assert shapes == [(3, 1), (3, 4), (1, 6)]  # lengths 0 1 1 | 2 3 4 | 6


def test_explain_trims_attention_to_each_history(server):
    histories = varied_histories()
    with make_client(server) as client:
        recommendations = client.recommend(histories, explain=True)
    for customer, recommendation in zip(histories, recommendations, strict=True):
        assert recommendation.products == expected(customer)[0]
        attention = recommendation.attention
        assert attention.dtype == np.float32
        assert attention.shape == (RECOMMEND_K, len(customer))
        np.testing.assert_allclose(attention, 1 / max(len(customer), 1))
        assert attention.base is None  # a copy, not a view of the padded batch


def test_customers_without_events_get_an_answer(server):
    with make_client(server) as client:
        recommendations = client.recommend([EMPTY, EMPTY], explain=True)
    for recommendation in recommendations:
        assert recommendation.products == list(FALLBACK_PRODUCTS)
        assert recommendation.scores == [0.0, -1.0, -2.0]
        assert recommendation.attention.shape == (RECOMMEND_K, 0)


def test_no_histories_make_no_call():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Client(f"127.0.0.1:{port}", "recommender", timeout=1.0, retries=0) as client:
        assert client.recommend([]) == []
        assert client.recommend((), explain=True) == []


def test_explain_needs_a_model_with_attention(server):
    with make_client(server, "plain") as client:
        (recommendation,) = client.recommend([history(("A", 1, 1))])
        assert recommendation.products == ["A", *FALLBACK_PRODUCTS[1:]]
        with pytest.raises(ServingError) as info:
            client.recommend([history(("A", 1, 1))], explain=True)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "no signature 'explain' (export a model with attention)" in info.value.details
    assert "its signatures: __saved_model_init_op, serving_default" in info.value.details


def test_check_recommender(server):
    with make_client(server) as client:
        client.check_recommender(explain=True)
        with pytest.raises(ServingError, match="of a recommendation model") as info:
            client.check_model()  # the same signatures, checked against the other contract
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_translation_model_asked_to_recommend(server):
    with make_client(server, "echo") as client:
        with pytest.raises(ServingError) as info:
            client.recommend([history(("A", 1, 1))])
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert (
        "Signature 'serving_default' of model 'echo' at 127.0.0.1:"
        f"{server.grpc_port} takes the inputs ['text'] of a translation model; "
        "recommendation needs the inputs ['items', 'prices', 'quantities', 'timestamps']"
    ) in info.value.details


def test_recommender_asked_to_translate(server):
    with make_client(server) as client:
        with pytest.raises(ServingError) as info:
            client.translate(["Hallo Welt."])
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert (
        "takes the inputs ['items', 'prices', 'quantities', 'timestamps'] of a recommendation "
        "model; translation needs the inputs ['text']"
    ) in info.value.details


def test_recommend_checks_its_arguments():
    with Client("127.0.0.1:1", "recommender") as client:
        with pytest.raises(TypeError, match="a single History"):
            client.recommend(EMPTY)
        with pytest.raises(TypeError, match=r"histories\[1\] of type dict"):
            client.recommend([EMPTY, {"items": []}])


def test_malformed_attention_is_internal():
    outputs = {
        "products": np.full((1, 2), b"A", dtype=object),
        "scores": np.zeros((1, 2), np.float32),
        "attention": np.zeros((1, 2, 1), np.float32),
    }
    with pytest.raises(ServingError, match=r"shape \[1, 2, >= 2\].*Received: shape \[1, 2, 1\]"):
        client_lib._recommendations(outputs, [history(("A", 1, 1), ("B", 1, 1))])
    outputs["scores"] = np.zeros((1, 3), np.float32)
    with pytest.raises(ServingError, match="'products' and 'scores' of the same shape"):
        client_lib._recommendations(outputs, [history(("A", 1, 1))])


# -- History and padding ---------------------------------------------------------------------


def test_history_fields_are_the_inputs():
    assert [field.name for field in dataclasses.fields(History)] == list(HISTORY_INPUTS)


def test_history_stores_tuples():
    customer = History(["A", "B"], [T0, T0], np.array([1.0, -1.0]), (2, 3))
    assert customer.items == ("A", "B") and customer.quantities == (1.0, -1.0)
    assert len(customer) == 2


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        (
            (["A", "B"], [T0], [1.0, 1.0], [1.0, 1.0]),
            ValueError,
            r"one length .* Received: len\(items\)=2, len\(timestamps\)=1, "
            r"len\(quantities\)=2, len\(prices\)=2",
        ),
        ((["A", ""], [T0, T0], [1, 1], [1, 1]), ValueError, r"Received: items\[1\]=''"),
        (("AB", [T0, T0], [1, 1], [1, 1]), TypeError, "a single str 'AB'"),
        (([b"A"], [T0], [1], [1]), TypeError, r"items\[0\] of type bytes"),
        ((["A"], [T0 + 0.5], [1], [1]), TypeError, "integer timestamps"),
        ((["A", "B"], [T0, T0 - 1], [1, 1], [1, 1]), ValueError, "non-decreasing timestamps"),
        ((["A"], [T0], ["1"], [1]), TypeError, r"quantities\[0\]='1'"),
        ((["A"], [T0], [1], [float("inf")]), ValueError, r"finite prices. Received: prices\[0\]"),
    ],
)
def test_history_validation(fields, error, message):
    with pytest.raises(error, match=message):
        History(*fields)


def test_pad_histories_left_aligns_and_pads():
    arrays = pad_histories([history(("A", 2, 1.5)), EMPTY, history(("B", 1, 1), ("C", -1, 1))])
    assert list(arrays) == list(HISTORY_INPUTS)
    assert arrays["items"].tolist() == [["A", ""], ["", ""], ["B", "C"]]
    assert arrays["timestamps"].dtype == np.int64
    assert arrays["timestamps"].tolist() == [[T0, 0], [0, 0], [T0, T0 + 60]]
    assert arrays["quantities"].dtype == arrays["prices"].dtype == np.float32
    assert arrays["quantities"].tolist() == [[2, 0], [0, 0], [1, -1]]
    assert pad_histories([EMPTY])["items"].shape == (1, 1)  # never zero-width
    with pytest.raises(ValueError, match="at least one history"):
        pad_histories([])


# -- warmup ----------------------------------------------------------------------------------


def test_history_warmup_requests():
    logs = make_history_warmup_requests()
    requests = [log.predict_log.request for log in logs]
    assert [r.model_spec.signature_name for r in requests] == [SERVING_DEFAULT, EXPLAIN] * 2
    for request in requests:
        assert {name: t.dtype for name, t in request.inputs.items()} == HISTORY_INPUTS
    single, padded = requests[0], requests[2]
    assert to_ndarray(single.inputs["items"]).shape == (1, 1)
    items = to_ndarray(padded.inputs["items"])
    assert items.shape == (3, 4)
    assert items[1].tolist() == [b""] * 4  # a customer without events
    assert (to_ndarray(padded.inputs["quantities"]) < 0).any()  # a cancellation


def test_history_warmup_replays_on_the_recommenders(server):
    # The server replayed them when it loaded each version; replay them once more, counted.
    for name, records in (("recommender", 4), ("plain", 2)):
        servable = server.manager.get_servable(model_pb2.ModelSpec(name=name))
        assert run_warmup(servable) == records


def test_history_warmup_rejects_bad_batches():
    with pytest.raises(ValueError, match="non-empty warmup batches"):
        make_history_warmup_requests([[]])
    with pytest.raises(ValueError, match=f"at most {MAX_WARMUP_RECORDS} warmup records"):
        make_history_warmup_requests([[EMPTY]] * (MAX_WARMUP_RECORDS // 2 + 1))
