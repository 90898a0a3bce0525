"""The training loss: token-level cross-entropy that ignores padding."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nmt_keras")
class MaskedCrossEntropy(keras.losses.Loss):
    """Mean cross-entropy over the non-padding target tokens, with label smoothing.

    With smoothing epsilon over a vocabulary of V tokens (Szegedy et al. 2016, sec. 7):
    loss_t = (1 - epsilon) * -log p(y_t) + epsilon * mean_v(-log p(v)), averaged over the
    tokens whose label is not `pad_id`. The average is over tokens, not sentences, so
    long and short batches weigh each token alike.

    The vocabulary projection is the largest tensor of a step, so the loss never
    materialises log-probabilities: -log p(y_t) is the fused sparse softmax
    cross-entropy, and mean_v(-log p(v)) = logsumexp(z) - mean(z) for logits z.

    Args:
        pad_id: Label id that contributes nothing (padding).
        label_smoothing: epsilon in [0, 1).

    Call args:
        y_true: `(batch, tgt_len)` int labels.
        y_pred: `(batch, tgt_len, vocab)` logits.

    Returns:
        A float32 scalar (`call` gives the per-token terms whose sum over the
        `(batch, tgt_len)` positions, divided by their count, is that mean: Keras then
        reduces them, and under `tf.distribute` divides by the replicas in sync, so the
        replicas' gradients sum to their mean).
    """

    def __init__(self, pad_id: int = 0, label_smoothing: float = 0.0, name="masked_ce", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                f"Expected label_smoothing in [0, 1). Received: label_smoothing={label_smoothing}"
            )
        self.pad_id = pad_id
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        """Returns `(batch, tgt_len)` terms whose mean is the masked mean token loss."""
        logits = ops.cast(y_pred, "float32")
        labels = ops.cast(y_true, "int32")
        nll = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        if self.label_smoothing:
            # (batch, tgt_len): the cross-entropy against the uniform distribution
            uniform = ops.logsumexp(logits, axis=-1) - ops.mean(logits, axis=-1)
            nll = (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform
        mask = ops.cast(ops.not_equal(labels, self.pad_id), "float32")
        positions = ops.cast(ops.size(mask), "float32")
        return nll * mask * (positions / ops.maximum(ops.sum(mask), 1.0))

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(pad_id=self.pad_id, label_smoothing=self.label_smoothing)
        return config
