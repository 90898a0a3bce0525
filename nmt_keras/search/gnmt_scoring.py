"""The GNMT hypothesis score: length-normalised log-probability plus a coverage penalty.

Wu et al. 2016, "Google's Neural Machine Translation System: Bridging the Gap between Human
and Machine Translation", sec. 7, eq. 14:

    s(Y, X) = log P(Y|X) / lp(Y) + cp(X; Y)
    lp(Y) = (5 + |Y|)^alpha / (5 + 1)^alpha
    cp(X; Y) = beta * sum_j log(min(sum_i p_ij, 1.0))

where `p_ij` is the attention of target step `i` on source position `j`.
"""

import tensorflow as tf

#: Floor of the coverage inside the log, so a source position that received no attention
#: at all (hard or local attention) costs `log(1e-6)` instead of ranking every hypothesis
#: at -inf.
MIN_COVERAGE = 1e-6


def gnmt_length_penalty(lengths: tf.Tensor, alpha: float) -> tf.Tensor:
    """The length penalty `lp(Y) = ((5 + |Y|) / 6)^alpha` of eq. 14.

    Args:
        lengths: int32 tensor of any shape, hypothesis lengths `|Y|` (EOS included).
        alpha: The length penalty weight; 0 gives `lp = 1`.

    Returns:
        float32 tensor of the shape of `lengths`.
    """
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def gnmt_coverage_penalty(
    attention_history: tf.Tensor, source_mask: tf.Tensor, beta: float
) -> tf.Tensor:
    """The coverage penalty `cp(X; Y) = beta * sum_j log(min(sum_i p_ij, 1.0))` of eq. 14.

    It is 0 when every source position received a total attention of at least 1, negative
    otherwise (at least `beta * log(MIN_COVERAGE)` per position), and never decreases as
    steps are added.

    Args:
        attention_history: float32 `(batch, hypotheses, time, src_len)`, the attention `p_ij`
            of each generated step `i` of each hypothesis, zeros after its end.
        source_mask: bool `(batch, src_len)`, True on real source positions `j`; padding is
            left out of the sum.
        beta: The coverage penalty weight.

    Returns:
        float32 `(batch, hypotheses)`.
    """
    coverage = tf.reduce_sum(attention_history, axis=2)  # (batch, hypotheses, src_len)
    log_coverage = tf.math.log(tf.clip_by_value(coverage, MIN_COVERAGE, 1.0))
    # source_mask (batch, src_len) -> (batch, 1, src_len) to broadcast over hypotheses.
    log_coverage = tf.where(source_mask[:, tf.newaxis, :], log_coverage, 0.0)
    return beta * tf.reduce_sum(log_coverage, axis=-1)
