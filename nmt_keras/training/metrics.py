"""Token accuracy that ignores padding."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nmt_keras")
class MaskedAccuracy(keras.metrics.Mean):
    """Fraction of non-padding target tokens whose argmax prediction is the label.

    Args:
        pad_id: Label id that is not counted.

    Update args:
        y_true: `(batch, tgt_len)` int labels.
        y_pred: `(batch, tgt_len, vocab)` logits or probabilities.
    """

    def __init__(self, pad_id: int = 0, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pad_id = pad_id

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Accumulates correct predictions over the tokens that are not padding."""
        labels = ops.cast(y_true, "int32")
        correct = ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), labels)
        mask = ops.cast(ops.not_equal(labels, self.pad_id), self.dtype)
        if sample_weight is not None:
            mask = mask * ops.cast(sample_weight, self.dtype)
        return super().update_state(ops.cast(correct, self.dtype), sample_weight=mask)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(pad_id=self.pad_id)
        return config
