"""Raw event histories in, the top-k next purchases out: a featurizer and a model together."""

from __future__ import annotations

import tensorflow as tf

from nmt_keras.behaviour.featurizer import EventFeaturizer
from nmt_keras.behaviour.model import NextPurchaseModel


class Recommender(tf.Module):
    """Ranks the catalogue for each history and returns the best `k` products.

    The counterpart of `nmt_keras.translator.Translator`: what evaluation, the CLI and the
    exported SavedModel run, so all three rank the same way.

    Args:
        featurizer: Maps raw events to the model's features; its vocabulary is the
            catalogue.
        model: A trained `NextPurchaseModel` over the featurizer's ids.
        k: Products returned per history.

    Raises:
        ValueError: If `k` is not in [1, catalogue size] or the model's ids do not match
            the featurizer's.
    """

    def __init__(self, featurizer: EventFeaturizer, model: NextPurchaseModel, k: int = 10):
        super().__init__(name="recommender")
        if model.num_ids != featurizer.num_ids:
            raise ValueError(
                "Expected a model over the featurizer's item ids. Received: "
                f"model.num_ids={model.num_ids}, featurizer.num_ids={featurizer.num_ids}"
            )
        catalogue = len(featurizer.vocabulary)
        if not 1 <= k <= catalogue:
            raise ValueError(f"Expected 1 <= k <= {catalogue} (the catalogue). Received: k={k}")
        self.featurizer = featurizer
        self.model = model
        self.k = k

    @property
    def explains(self) -> bool:
        """Whether `recommend(..., explain=True)` can return attention."""
        return self.model.has_attention

    def recommend(self, items, timestamps, quantities, prices, explain: bool = False) -> dict:
        """The top-k products of each history.

        Args:
            items: string `(batch, history_len)`, oldest event first, "" on padding.
            timestamps: int `(batch, history_len)`, unix seconds.
            quantities: float `(batch, history_len)`, negative on cancellations.
            prices: float `(batch, history_len)`.
            explain: Also return each product's attention over the events.

        Returns:
            `products` string `(batch, k)` best first, `scores` float32 `(batch, k)`, and
            with `explain` `attention` float32 `(batch, k, history_len)`.
        """
        features = self.featurizer(
            items, timestamps, quantities, prices, statistics=self.model.repeat
        )
        encoded = self.model.encode(features)
        scores, columns = tf.math.top_k(self.model.score_items(encoded), k=self.k)
        ids = columns + self.model.first_item_id  # (batch, k)
        outputs = {"products": self.featurizer.codes(ids), "scores": scores}
        if explain:
            outputs["attention"] = self.model.explain(encoded, ids)
        return outputs
