import itertools

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from nmt_keras.search import BeamSearchResult, SearchResult, beam_search, greedy_search
from nmt_keras.search import beam as beam_module
from tests.search.test_greedy import audit_graph_def

PAD, BOS, EOS = 0, 1, 2
A, B = 3, 4


def log_softmax(x):
    x = np.asarray(x, np.float64)
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), -1, keepdims=True))


class MarkovModel:
    """Logits and attention looked up by (step, sentence, previous token).

    logits: (steps, batch, vocab, vocab); attention: (steps, batch, vocab, src_len) or None.
    Steps past the table reuse its last step. The state carries each row's sentence index.
    """

    def __init__(self, logits, attention=None):
        self.logits = np.asarray(logits, np.float32)
        self.attention = None if attention is None else np.asarray(attention, np.float32)
        self.calls = 0
        self.rows_per_call = []  # eager calls only: the number of state rows computed

    @property
    def batch(self):
        return self.logits.shape[1]

    def initial_state(self, batch=None):
        return {"sentence": tf.range(self.batch if batch is None else batch)}

    def next_fn(self, tokens, state, step):
        self.calls += 1
        if tf.executing_eagerly():
            self.rows_per_call.append(int(tf.size(tokens)))
        steps = self.logits.shape[0]
        index = tf.stack(
            [tf.fill(tf.shape(tokens), tf.minimum(step, steps - 1)), state["sentence"], tokens],
            axis=1,
        )
        logits = tf.gather_nd(self.logits, index)
        attention = None if self.attention is None else tf.gather_nd(self.attention, index)
        return logits, state, attention

    def _lookups(self, sentence, tokens):
        previous = [BOS, *tokens[:-1]]
        steps = self.logits.shape[0]
        return [(min(t, steps - 1), sentence, p) for t, p in enumerate(previous)]

    def log_prob(self, sentence, tokens):
        return sum(
            log_softmax(self.logits[key])[token]
            for key, token in zip(self._lookups(sentence, tokens), tokens, strict=True)
        )

    def attention_history(self, sentence, tokens):
        return np.stack([self.attention[key] for key in self._lookups(sentence, tokens)])


def random_model(steps, batch, vocab, src_len=None, source_lengths=None, seed=0, scale=1.5):
    rng = np.random.default_rng(seed)
    logits = scale * rng.normal(size=(steps, batch, vocab, vocab))
    if src_len is None:
        return MarkovModel(logits)
    attention = rng.uniform(0.05, 1.0, size=(steps, batch, vocab, src_len))
    for b, length in enumerate(source_lengths):
        attention[:, b, :, length:] = 0.0
    attention /= attention.sum(-1, keepdims=True)
    return MarkovModel(logits, attention)


def built_model(distributions, steps=4, vocab=5, seed=0):
    """One sentence; distributions[(step, previous)] = probabilities, the rest random."""
    model = random_model(steps, 1, vocab, seed=seed)
    for (step, previous), probs in distributions.items():
        model.logits[step, 0, previous] = np.log(probs)
    return model


def run_beam(model, beam_size, max_length=10, **kwargs):
    return beam_search(
        model.next_fn,
        model.initial_state(),
        batch_size=model.batch,
        beam_size=beam_size,
        bos_id=BOS,
        eos_id=EOS,
        pad_id=PAD,
        max_length=max_length,
        **kwargs,
    )


def run_greedy(model, max_length=10):
    return greedy_search(
        model.next_fn,
        model.initial_state(),
        batch_size=model.batch,
        bos_id=BOS,
        eos_id=EOS,
        pad_id=PAD,
        max_length=max_length,
    )


def gnmt_score(model, sentence, tokens, alpha, beta=0.0, source_length=None):
    score = model.log_prob(sentence, tokens) / ((5 + len(tokens)) / 6) ** alpha
    if beta:
        coverage = model.attention_history(sentence, tokens).sum(0)[:source_length]
        score += beta * np.sum(np.log(np.minimum(coverage, 1.0)))
    return score


def unpad(tokens, length):
    return [int(t) for t in np.asarray(tokens)[:length]]


def test_beam_finds_the_sequence_greedy_misses():
    # Greedy takes A (0.5) then EOS (0.3): p = 0.15; beam 2 also keeps B (0.4), then EOS (0.9).
    model = built_model(
        {
            (0, BOS): [0.02, 0.02, 0.06, 0.5, 0.4],
            (1, A): [0.1, 0.1, 0.3, 0.25, 0.25],
            (1, B): [0.025, 0.025, 0.9, 0.025, 0.025],
        }
    )
    greedy = run_greedy(model)
    np.testing.assert_array_equal(greedy.tokens, [[A, EOS]])
    np.testing.assert_allclose(greedy.scores, [np.log(0.15)], rtol=1e-5)
    model.calls = 0
    result = run_beam(model, beam_size=2)
    assert isinstance(result, BeamSearchResult) and isinstance(result.best, SearchResult)
    np.testing.assert_array_equal(result.best.tokens, [[B, EOS]])
    np.testing.assert_array_equal(result.best.lengths, [2])
    np.testing.assert_allclose(result.best.scores, [np.log(0.36)], rtol=1e-5)
    assert result.best.attention is None
    # Settled after step 1: the alive A A and A B (0.125) cannot beat 0.36.
    assert model.calls == 2


@pytest.mark.parametrize("alpha, beta", [(0.0, 0.0), (0.8, 0.0), (0.0, 0.7), (0.6, 0.4)], ids=str)
def test_matches_exhaustive_search_when_nothing_is_pruned(alpha, beta):
    vocab, max_length, n_best = 4, 3, 8
    source_lengths = [3, 2]
    model = random_model(3, 2, vocab, src_len=3, source_lengths=source_lengths, seed=5)
    # Every candidate fits: 1, then vocab - 1, then (vocab - 1)^2 alive beams of vocab tokens.
    result = run_beam(
        model,
        beam_size=(vocab - 1) ** 2 * vocab,
        max_length=max_length,
        length_penalty=alpha,
        coverage_penalty=beta,
        n_best=n_best,
        source_lengths=tf.constant(source_lengths),
    )
    for b in range(2):
        hypotheses = [
            list(prefix) + [EOS]
            for length in range(max_length)
            for prefix in itertools.product([PAD, BOS, A], repeat=length)
        ] + [list(tokens) for tokens in itertools.product([PAD, BOS, A], repeat=max_length)]
        scored = sorted(
            hypotheses,
            key=lambda tokens: -gnmt_score(model, b, tokens, alpha, beta, source_lengths[b]),
        )[:n_best]
        lengths = result.nbest_lengths[b].numpy()
        assert [unpad(result.nbest_tokens[b, i], lengths[i]) for i in range(n_best)] == scored
        np.testing.assert_array_equal(lengths, [len(tokens) for tokens in scored])
        np.testing.assert_allclose(
            result.nbest_scores[b],
            [gnmt_score(model, b, tokens, alpha, beta, source_lengths[b]) for tokens in scored],
            rtol=1e-5,
        )
        np.testing.assert_allclose(
            result.nbest_log_probs[b], [model.log_prob(b, tokens) for tokens in scored], rtol=1e-5
        )


# EOS at once: p = 0.3. A A EOS: p = 0.55 * 0.7 * 0.65 = 0.25.
LENGTH_CASE = {
    (0, BOS): [0.05, 0.05, 0.3, 0.55, 0.05],
    (1, A): [0.05, 0.05, 0.12, 0.7, 0.08],
    (2, A): [0.05, 0.05, 0.65, 0.2, 0.05],
}


def test_length_penalty_changes_the_winner():
    plain = run_beam(built_model(LENGTH_CASE), beam_size=2, max_length=4)
    np.testing.assert_array_equal(plain.best.tokens, [[EOS]])
    np.testing.assert_allclose(plain.nbest_scores, [[np.log(0.3)]], rtol=1e-5)
    normalised = run_beam(built_model(LENGTH_CASE), beam_size=2, max_length=4, length_penalty=1.0)
    np.testing.assert_array_equal(normalised.best.tokens, [[A, A, EOS]])
    np.testing.assert_allclose(normalised.best.scores, [np.log(0.55 * 0.7 * 0.65)], rtol=1e-5)
    np.testing.assert_allclose(
        normalised.nbest_scores, [[np.log(0.55 * 0.7 * 0.65) / (8 / 6)]], rtol=1e-5
    )


def test_length_penalty_keeps_searching_past_a_more_probable_finished_hypothesis():
    # EOS at once: p = 0.4 beats every continuation of A (p = 0.35) in log-probability, but
    # A A A A A EOS (p = 0.35 * 0.96^5, length 6) wins once normalised: the search must go on.
    rest = [0.01, 0.01, 0.01, 0.96, 0.01]
    cases = {(0, BOS): [0.1, 0.1, 0.4, 0.35, 0.05], (5, A): [0.01, 0.01, 0.96, 0.01, 0.01]}
    cases.update({(step, A): rest for step in range(1, 5)})
    model = built_model(cases, steps=8)
    plain = run_beam(model, beam_size=2, max_length=8)
    np.testing.assert_array_equal(plain.best.tokens, [[EOS]])
    model.calls = 0
    normalised = run_beam(model, beam_size=2, max_length=8, length_penalty=1.0)
    np.testing.assert_array_equal(normalised.best.tokens, [[A, A, A, A, A, EOS]])
    np.testing.assert_allclose(
        normalised.nbest_scores, [[np.log(0.35 * 0.96**5) / (11 / 6)]], rtol=1e-5
    )
    assert 6 <= model.calls < 8


def test_coverage_penalty_favours_the_covering_hypothesis():
    # EOS at once (p = 0.5) attends 0.9, 0.1; A EOS (p = 0.32) attends 0.9 + 0.1, 0.1 + 0.9.
    # Sentence 1 has one real source word: its padding position must not count.
    model = random_model(3, 2, 5, seed=1)
    model.attention = np.zeros((3, 2, 5, 2), np.float32)
    for b in range(2):
        model.logits[0, b, BOS] = np.log([0.05, 0.05, 0.5, 0.35, 0.05])
        model.logits[1, b, A] = np.log([0.05, 0.05, 0.8, 0.05, 0.05])
    model.attention[:, 0, :] = [0.5, 0.5]
    model.attention[0, 0, BOS] = [0.9, 0.1]
    model.attention[1, 0, A] = [0.1, 0.9]
    model.attention[:, 1, :] = [1.0, 0.0]
    source_lengths = tf.constant([2, 1])

    plain = run_beam(model, beam_size=2, source_lengths=source_lengths)
    np.testing.assert_array_equal(plain.best.tokens, [[EOS], [EOS]])
    covered = run_beam(model, beam_size=2, coverage_penalty=1.0, source_lengths=source_lengths)
    np.testing.assert_array_equal(covered.best.tokens, [[A, EOS], [EOS, PAD]])
    np.testing.assert_allclose(covered.best.scores, np.log([0.35 * 0.8, 0.5]), rtol=1e-5)
    np.testing.assert_allclose(
        covered.nbest_scores, [[np.log(0.35 * 0.8)], [np.log(0.5)]], rtol=1e-5
    )


def test_nbest_lists_are_ranked_and_scored():
    alpha, n_best = 0.5, 3
    model = random_model(6, 3, 7, seed=2)
    model.logits[:, :, :, EOS] += 1.0
    result = run_beam(model, beam_size=4, n_best=n_best, length_penalty=alpha)
    assert result.nbest_tokens.shape[:2] == (3, n_best)
    assert result.nbest_tokens.shape[2] == result.nbest_lengths.numpy().max()
    for b in range(3):
        scores = result.nbest_scores[b].numpy()
        assert np.all(np.diff(scores) <= 0)
        hypotheses = []
        for i in range(n_best):
            length = result.nbest_lengths[b, i].numpy()
            tokens = unpad(result.nbest_tokens[b, i], length)
            hypotheses.append(tokens)
            assert EOS not in tokens[:-1]
            assert np.all(result.nbest_tokens[b, i, length:].numpy() == PAD)
            np.testing.assert_allclose(
                result.nbest_log_probs[b, i], model.log_prob(b, tokens), rtol=1e-5
            )
            np.testing.assert_allclose(scores[i], gnmt_score(model, b, tokens, alpha), rtol=1e-5)
        assert len({tuple(tokens) for tokens in hypotheses}) == n_best
        best_length = result.best.lengths[b].numpy()
        assert unpad(result.best.tokens[b], best_length) == hypotheses[0]
        np.testing.assert_allclose(result.best.scores[b], result.nbest_log_probs[b, 0])


@pytest.mark.parametrize("alpha, beta", [(0.0, 0.0), (1.0, 0.0), (0.6, 0.3)], ids=str)
def test_early_stop_gives_the_result_of_a_run_to_max_length(alpha, beta, monkeypatch):
    max_length = 30
    model = random_model(8, 3, 6, src_len=4, source_lengths=[4, 2, 3], seed=3)
    model.logits[:, :, :, EOS] += 1.5
    kwargs = dict(
        beam_size=3,
        n_best=2,
        max_length=max_length,
        length_penalty=alpha,
        coverage_penalty=beta,
        source_lengths=tf.constant([4, 2, 3]),
    )
    early = run_beam(model, **kwargs)
    early_calls = model.calls
    assert early_calls < max_length
    # Settled sentences leave the search: later steps compute fewer than 3 * 3 rows.
    assert model.rows_per_call[0] == 9 and min(model.rows_per_call) in (3, 6)
    assert model.rows_per_call == sorted(model.rows_per_call, reverse=True)
    monkeypatch.setattr(
        beam_module,
        "_settled",
        lambda alive, finished, best: tf.zeros_like(finished.lengths[:, 0], tf.bool),
    )
    model.calls = 0
    full = run_beam(model, **kwargs)
    assert model.calls == max_length
    for got, want in zip(tf.nest.flatten(early), tf.nest.flatten(full), strict=True):
        np.testing.assert_array_equal(got, want)


def test_alive_hypotheses_fill_in_at_max_length():
    model = random_model(5, 2, 5, seed=4)
    model.logits[:, :, :, EOS] = -np.inf  # EOS is never emitted
    result = run_beam(model, beam_size=3, n_best=3, max_length=4)
    np.testing.assert_array_equal(result.nbest_lengths, np.full((2, 3), 4))
    assert result.nbest_tokens.shape == (2, 3, 4)
    assert np.all(np.isfinite(result.nbest_scores))


def test_too_few_hypotheses_leave_empty_slots():
    # Vocabulary {PAD, BOS, EOS} and max_length 1: three hypotheses in all.
    model = random_model(1, 1, 3, seed=6)
    result = run_beam(model, beam_size=4, n_best=4, max_length=1)
    np.testing.assert_array_equal(result.nbest_lengths, [[1, 1, 1, 0]])
    np.testing.assert_array_equal(result.nbest_tokens[0, 3], [PAD])
    assert result.nbest_scores[0, 3] == -np.inf and result.nbest_log_probs[0, 3] == -np.inf


class PathModel:
    """Logits depend on the whole path, which the state records: (batch, time, 1)."""

    def __init__(self, vocab=5, buckets=97, seed=7):
        self.table = np.random.default_rng(seed).normal(size=(buckets, vocab)).astype(np.float32)
        self.table[:, EOS] = -np.inf
        self.last_path = None

    def _bucket(self, path):
        weights = 7 ** np.arange(len(path))
        return int(np.dot(path, weights) % len(self.table))

    def next_fn(self, tokens, state, step):
        path = tf.concat([state["path"], tokens[:, tf.newaxis, tf.newaxis]], axis=1)
        tf.debugging.assert_equal(tf.shape(path)[1], step + 1)
        weights = tf.cast(7 ** tf.range(step + 1, dtype=tf.float64), tf.int32)
        bucket = tf.reduce_sum(path[:, :, 0] * weights, axis=1) % len(self.table)
        self.last_path = path
        return tf.gather(self.table, bucket), {"path": path}, None

    def log_prob(self, tokens):
        path = [BOS, *tokens]
        return sum(
            log_softmax(self.table[self._bucket(path[: t + 1])])[token]
            for t, token in enumerate(tokens)
        )


def test_state_is_reordered_with_the_beams():
    model = PathModel()
    max_length = 5
    result = beam_search(
        model.next_fn,
        {"path": tf.zeros([2, 0, 1], tf.int32)},
        batch_size=2,
        beam_size=3,
        bos_id=BOS,
        eos_id=EOS,
        pad_id=PAD,
        max_length=max_length,
        n_best=3,
    )
    last_path = model.last_path.numpy()[:, 1:, 0].reshape(2, 3, max_length - 1)
    for b in range(2):
        prefixes = {tuple(row) for row in last_path[b]}
        for i in range(3):
            tokens = result.nbest_tokens[b, i].numpy()
            np.testing.assert_allclose(
                result.nbest_log_probs[b, i], model.log_prob(tokens), rtol=1e-5
            )
            assert tuple(tokens[:-1]) in prefixes


def test_best_attention_is_its_own_history():
    model = random_model(6, 3, 6, src_len=5, source_lengths=[5, 3, 4], seed=8)
    model.logits[:, :, :, EOS] += 1.0
    result = run_beam(model, beam_size=3, n_best=2)
    attention = result.best.attention.numpy()
    assert attention.shape[:2] == result.best.tokens.shape and attention.shape[2] == 5
    for b in range(3):
        length = result.best.lengths[b].numpy()
        tokens = unpad(result.best.tokens[b], length)
        np.testing.assert_allclose(attention[b, :length], model.attention_history(b, tokens))
        assert np.all(attention[b, length:] == 0.0)


@pytest.mark.parametrize("with_attention", [False, True])
def test_beam_size_one_is_greedy_search(with_attention):
    model = random_model(8, 4, 6, src_len=3 if with_attention else None, source_lengths=[3] * 4)
    model.logits[:, :, :, EOS] += 0.8
    model.logits[:, 3, :, EOS] = -np.inf  # this row reaches max_length
    greedy = run_greedy(model, max_length=7)
    result = run_beam(model, beam_size=1, max_length=7)
    assert result.best.lengths.numpy()[3] == 7
    for got, want in zip(result.best, greedy, strict=True):
        if want is None:
            assert got is None
        else:
            np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(result.nbest_tokens[:, 0], greedy.tokens)
    np.testing.assert_array_equal(result.nbest_log_probs[:, 0], greedy.scores)
    np.testing.assert_array_equal(result.nbest_scores[:, 0], greedy.scores)


GRAPH_MODEL = random_model(6, 4, 6, src_len=5, source_lengths=[5, 2, 4, 3], seed=9)


def graph_beam(sentence, source_lengths):
    return beam_search(
        GRAPH_MODEL.next_fn,
        {"sentence": sentence},
        batch_size=tf.shape(sentence)[0],
        beam_size=3,
        bos_id=BOS,
        eos_id=EOS,
        pad_id=PAD,
        max_length=8,
        length_penalty=0.6,
        coverage_penalty=0.2,
        n_best=2,
        source_lengths=source_lengths,
    )


SIGNATURE = [tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32)]
SOURCE_LENGTHS = np.array([5, 2, 4, 3], np.int32)


def test_tf_function_with_unknown_batch():
    fn = tf.function(graph_beam, input_signature=SIGNATURE)
    for sentences in [[0, 1], [3, 2, 1], [0], []]:
        sentence = tf.constant(sentences, tf.int32)
        lengths = tf.constant(SOURCE_LENGTHS[sentences], tf.int32)
        eager, traced = graph_beam(sentence, lengths), fn(sentence, lengths)
        for got, want in zip(tf.nest.flatten(traced), tf.nest.flatten(eager), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6)
    assert fn.experimental_get_tracing_count() == 1


def test_empty_batch_mirrors_greedy():
    model = random_model(2, 1, 5, seed=10)
    state = model.initial_state(batch=0)
    greedy = greedy_search(
        model.next_fn, state, batch_size=0, bos_id=BOS, eos_id=EOS, pad_id=PAD, max_length=5
    )
    result = beam_search(
        model.next_fn,
        state,
        batch_size=0,
        beam_size=3,
        n_best=2,
        bos_id=BOS,
        eos_id=EOS,
        pad_id=PAD,
        max_length=5,
    )
    assert result.best.tokens.shape == greedy.tokens.shape == (0, 1)
    assert result.nbest_tokens.shape == (0, 2, 1) and result.nbest_scores.shape == (0, 2)


def test_saved_model_round_trip_uses_only_serving_safe_ops(tmp_path):
    module = tf.Module()
    module.beam = tf.function(
        lambda sentence, source_lengths: graph_beam(sentence, source_lengths)._asdict(),
        input_signature=SIGNATURE,
    )
    tf.saved_model.save(module, str(tmp_path))
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((tmp_path / "saved_model.pb").read_bytes())
    ops = audit_graph_def(saved_model.meta_graphs[0].graph_def)
    assert ops & {"While", "StatelessWhile"}
    loaded = tf.saved_model.load(str(tmp_path))
    sentence = tf.constant([2, 0, 3], tf.int32)
    lengths = tf.constant(SOURCE_LENGTHS[[2, 0, 3]])
    outputs = loaded.beam(sentence, lengths)
    expected = graph_beam(sentence, lengths)
    for name in ["nbest_tokens", "nbest_lengths", "nbest_scores", "nbest_log_probs"]:
        np.testing.assert_allclose(outputs[name], getattr(expected, name), rtol=1e-6)
    for got, want in zip(outputs["best"], expected.best, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("alpha, beta", [(0.0, 0.0), (0.6, 0.4)], ids=str)
def test_state_flagged_static_is_left_in_place_with_the_same_result(alpha, beta):
    """The sentence index is the same for every beam of a sentence: no reordering needed."""
    lengths = [4, 2, 3]
    model = random_model(6, 3, 7, src_len=4, source_lengths=lengths, seed=3)
    settings = dict(
        beam_size=3,
        n_best=2,
        length_penalty=alpha,
        coverage_penalty=beta,
        source_lengths=lengths,
    )
    reordered = run_beam(model, **settings)
    in_place = run_beam(model, reorder_flags={"sentence": False}, **settings)
    for expected, actual in zip(tf.nest.flatten(reordered), tf.nest.flatten(in_place), strict=True):
        np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(beam_size=0), "Expected beam_size >= 1. Received: beam_size=0"),
        (
            dict(beam_size=2, reorder_flags={"memory": False}),
            "Expected reorder_flags shaped like initial_state",
        ),
        (dict(beam_size=2, n_best=3), "Expected 1 <= n_best <= beam_size"),
        (dict(beam_size=2, n_best=0), "Expected 1 <= n_best <= beam_size"),
        (dict(beam_size=2, length_penalty=-0.5), "Expected length_penalty >= 0"),
        (
            dict(beam_size=2, coverage_penalty=-1.0, source_lengths=[1]),
            "Expected coverage_penalty >= 0",
        ),
        (dict(beam_size=2, coverage_penalty=0.2), "Expected source_lengths"),
        (
            dict(beam_size=2, coverage_penalty=0.2, source_lengths=[1]),
            "Expected a next_fn that returns attention",
        ),
        (dict(beam_size=2, max_length=0), "Expected max_length >= 1"),
    ],
)
def test_invalid_arguments(kwargs, message):
    model = random_model(2, 1, 5)
    with pytest.raises(ValueError, match=message):
        run_beam(model, **kwargs)
