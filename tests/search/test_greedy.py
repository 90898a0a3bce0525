import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from nmt_keras.search import SearchResult, greedy_search

PAD, BOS, EOS = 0, 1, 2
VOCAB = 6


def log_softmax(x):
    x = np.asarray(x, np.float64)
    return (
        x
        - np.log(np.sum(np.exp(x - x.max(-1, keepdims=True)), -1, keepdims=True))
        - x.max(-1, keepdims=True)
    )


def make_table(choices, seed=0):
    """Logits (steps, batch, vocab) whose argmax at [t, b] is choices[b][t]."""
    rng = np.random.default_rng(seed)
    batch, steps = len(choices), len(choices[0])
    table = rng.normal(size=(steps, batch, VOCAB)).astype(np.float32)
    for b, row in enumerate(choices):
        for t, token in enumerate(row):
            table[t, b, token] = table[t, b].max() + 1.5
    return table


def expected_score(table, choices, length):
    lp = log_softmax(table)
    return [sum(lp[t, b, choices[b][t]] for t in range(length[b])) for b in range(len(choices))]


def table_next_fn(table, attention_table=None, calls=None):
    """Looks the logits up by (step, batch row); the state carries each row's batch row."""
    table = tf.convert_to_tensor(table)
    steps = tf.shape(table)[0]

    def next_fn(tokens, state, step):
        if calls is not None:
            calls.append((int(step), state["row"].numpy().tolist()))
        index = tf.minimum(step, steps - 1)
        logits = tf.gather(tf.gather(table, index), state["row"])
        attention = None
        if attention_table is not None:
            attention = tf.gather(tf.gather(attention_table, index), state["row"])
        return logits, state, attention

    return next_fn


def search(next_fn, batch, max_length=10, state=None):
    state = {"row": tf.range(batch)} if state is None else state
    return greedy_search(
        next_fn, state, batch_size=batch, bos_id=BOS, eos_id=EOS, pad_id=PAD, max_length=max_length
    )


def test_tokens_lengths_scores_and_early_stop():
    # Row 0 ends at step 2, row 1 at step 1; later table steps must never be reached.
    choices = [[3, 4, EOS, 5, 5], [5, EOS, 3, 3, 3]]
    table = make_table(choices)
    calls = []
    result = search(table_next_fn(table, calls=calls), batch=2)
    assert isinstance(result, SearchResult)
    # Row 1 leaves the decoding batch once it has emitted EOS.
    assert calls == [(0, [0, 1]), (1, [0, 1]), (2, [0])]
    np.testing.assert_array_equal(result.tokens, [[3, 4, EOS], [5, EOS, PAD]])
    np.testing.assert_array_equal(result.lengths, [3, 2])
    assert result.tokens.dtype == tf.int32 and result.lengths.dtype == tf.int32
    assert result.scores.dtype == tf.float32
    np.testing.assert_allclose(result.scores, expected_score(table, choices, [3, 2]), rtol=1e-5)
    assert result.attention is None


def test_hand_computed_score():
    # Step 0: logits (0, 0, 0, ln 2) -> token 3 with p = 2/5.
    # Step 1: logits (0, 0, 2, 0) -> EOS with p = e^2 / (e^2 + 3).
    table = np.zeros((2, 1, 4), np.float32)
    table[0, 0, 3] = np.log(2.0)
    table[1, 0, EOS] = 2.0
    result = search(table_next_fn(table), batch=1)
    np.testing.assert_array_equal(result.tokens, [[3, EOS]])
    expected = np.log(0.4) + 2.0 - np.log(np.exp(2.0) + 3.0)
    np.testing.assert_allclose(result.scores, [expected], rtol=1e-6)


def test_pad_after_eos_for_rows_finishing_at_different_steps():
    choices = [[EOS, 3, 3, 3], [3, 3, 3, EOS], [4, EOS, 4, 4]]
    table = make_table(choices, seed=1)
    calls = []
    result = search(table_next_fn(table, calls=calls), batch=3)
    # Only the rows still decoding are computed, in batch order.
    assert calls == [(0, [0, 1, 2]), (1, [1, 2]), (2, [1]), (3, [1])]
    np.testing.assert_array_equal(
        result.tokens, [[EOS, PAD, PAD, PAD], [3, 3, 3, EOS], [4, EOS, PAD, PAD]]
    )
    np.testing.assert_array_equal(result.lengths, [1, 4, 2])
    np.testing.assert_allclose(result.scores, expected_score(table, choices, [1, 4, 2]), rtol=1e-5)


@pytest.mark.parametrize("max_length", [4, tf.constant(4)])
def test_max_length_cut_off_without_eos(max_length):
    choices = [[3, 4, 5, 3, 4, 5], [5, 5, 5, 5, 5, EOS]]
    table = make_table(choices, seed=2)
    result = search(table_next_fn(table), batch=2, max_length=max_length)
    np.testing.assert_array_equal(result.tokens, [[3, 4, 5, 3], [5, 5, 5, 5]])
    np.testing.assert_array_equal(result.lengths, [4, 4])
    np.testing.assert_allclose(result.scores, expected_score(table, choices, [4, 4]), rtol=1e-5)


def test_attention_stacked_and_zeroed_after_end():
    choices = [[3, EOS, 4, 4], [3, 3, EOS, 4]]
    table = make_table(choices, seed=3)
    attention_table = np.random.default_rng(3).uniform(size=(4, 2, 5)).astype(np.float32)
    result = search(table_next_fn(table, attention_table), batch=2)
    assert result.attention.dtype == tf.float32
    assert result.attention.shape == (2, 3, 5)
    expected = np.transpose(attention_table[:3], [1, 0, 2]).copy()  # (batch, time, src_len)
    expected[0, 2:] = 0.0
    np.testing.assert_allclose(result.attention, expected)


def test_float16_logits():
    choices = [[3, 4, EOS], [4, EOS, 3]]
    table = make_table(choices, seed=4).astype(np.float16)
    attention_table = np.full((3, 2, 4), 0.25, np.float16)
    result = search(table_next_fn(table, attention_table), batch=2)
    np.testing.assert_array_equal(result.tokens, [[3, 4, EOS], [4, EOS, PAD]])
    assert result.scores.dtype == tf.float32 and result.attention.dtype == tf.float32
    expected = expected_score(table.astype(np.float32), choices, [3, 2])
    np.testing.assert_allclose(result.scores, expected, rtol=1e-4)


def successor_next_fn(vocab=8):
    """Emits the previous token + the row's stride; checks the state's step counter."""

    def next_fn(tokens, state, step):
        tf.debugging.assert_equal(state["count"], tf.fill(tf.shape(state["count"]), step))
        following = tf.minimum(tokens + state["stride"], vocab - 1)
        logits = 10.0 * tf.one_hot(following, vocab)  # (batch, vocab)
        # memory (batch, src_len, dim) -> scores (batch, src_len)
        attention = tf.nn.softmax(tf.reduce_sum(state["memory"], axis=-1), axis=-1)
        state = dict(state, count=state["count"] + 1)
        return logits, state, attention

    return next_fn


def successor_state(batch, src_len, dim=3):
    return {
        "count": tf.zeros([batch], tf.int32),
        "stride": 1 + tf.range(batch) % 2,
        "memory": tf.random.stateless_normal([batch, src_len, dim], seed=[1, 2]),
    }


def successor_search(state, max_length=10):
    batch = tf.shape(state["memory"])[0]
    return greedy_search(
        successor_next_fn(),
        state,
        batch_size=batch,
        bos_id=3,
        eos_id=7,
        pad_id=PAD,
        max_length=max_length,
    )


def test_state_and_tokens_are_threaded():
    result = successor_search(successor_state(batch=2, src_len=4))
    # Row 0 counts 4, 5, 6, 7 (EOS); row 1 jumps by 2: 5, 7 (EOS).
    np.testing.assert_array_equal(result.tokens, [[4, 5, 6, 7], [5, 7, PAD, PAD]])
    np.testing.assert_array_equal(result.lengths, [4, 2])
    assert result.attention.shape == (2, 4, 4)


def test_tf_function_with_unknown_batch_and_src_len():
    fn = tf.function(
        successor_search,
        input_signature=[
            {
                "count": tf.TensorSpec([None], tf.int32),
                "stride": tf.TensorSpec([None], tf.int32),
                "memory": tf.TensorSpec([None, None, 3], tf.float32),
            }
        ],
    )
    for batch, src_len in [(2, 4), (3, 7), (1, 1)]:
        state = successor_state(batch, src_len)
        eager = successor_search(state)
        traced = fn(state)
        for got, want in zip(traced, eager, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6)
    assert fn.experimental_get_tracing_count() == 1


def test_empty_batch_and_invalid_max_length():
    table = np.zeros((2, 0, VOCAB), np.float32)
    result = search(table_next_fn(table), batch=0)
    assert result.tokens.shape == (0, 1) and result.lengths.shape == (0,)
    with pytest.raises(ValueError, match="max_length"):
        search(table_next_fn(table), batch=0, max_length=0)


FORBIDDEN_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


def audit_graph_def(graph_def):
    """Returns the op types of every node, in the graph and in its function library."""
    library = {f.signature.name for f in graph_def.library.function}
    for function in graph_def.library.function:
        assert "_XlaMustCompile" not in function.attr, function.signature.name
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    ops = set()
    for node in nodes:
        assert "_XlaMustCompile" not in node.attr, node.name
        assert node.op not in FORBIDDEN_OPS and not node.op.startswith("Xla"), node.op
        # Core TensorFlow ops only (all of them are in stock TF Serving), or library calls.
        assert hasattr(tf.raw_ops, node.op) or node.op in library, node.op
        ops.add(node.op)
    return ops


def test_traced_graph_uses_only_serving_safe_ops():
    fn = tf.function(
        lambda table, attention_table: search(table_next_fn(table, attention_table), batch=2),
        input_signature=[
            tf.TensorSpec([None, 2, VOCAB], tf.float32),
            tf.TensorSpec([None, 2, None], tf.float32),
        ],
    )
    ops = audit_graph_def(fn.get_concrete_function().graph.as_graph_def())
    assert ops & {"While", "StatelessWhile"}
    ops = audit_graph_def(
        tf.function(successor_search)
        .get_concrete_function(successor_state(2, 3))
        .graph.as_graph_def()
    )
    assert ops & {"While", "StatelessWhile"}


def test_saved_model_round_trip(tmp_path):
    module = tf.Module()
    module.search = tf.function(
        lambda memory: successor_search(
            {
                "count": tf.zeros([tf.shape(memory)[0]], tf.int32),
                "stride": 1 + tf.range(tf.shape(memory)[0]) % 2,
                "memory": memory,
            }
        )._asdict(),
        input_signature=[tf.TensorSpec([None, None, 3], tf.float32)],
    )
    tf.saved_model.save(module, str(tmp_path))
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((tmp_path / "saved_model.pb").read_bytes())
    audit_graph_def(saved_model.meta_graphs[0].graph_def)
    loaded = tf.saved_model.load(str(tmp_path))
    memory = successor_state(3, 5)["memory"]
    outputs = loaded.search(memory)
    np.testing.assert_array_equal(outputs["tokens"], [[4, 5, 6, 7], [5, 7, 0, 0], [4, 5, 6, 7]])
    np.testing.assert_array_equal(outputs["lengths"], [4, 2, 4])
    assert outputs["attention"].shape == (3, 4, 5)
