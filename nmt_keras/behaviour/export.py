"""A recommender to a new, audited, warmed-up TF Serving version."""

from __future__ import annotations

import os
from collections.abc import Sequence

import tensorflow as tf

from nmt_keras.behaviour.featurizer import EventFeaturizer
from nmt_keras.behaviour.recommender import Recommender
from nmt_keras.export.exporter import publish_version
from nmt_keras.export.session_loadable import SessionLoadableModule
from nmt_keras.serving import warmup
from nmt_keras.serving.signatures import (
    EXPLAIN,
    HISTORY_INPUTS,
    RECOMMENDATION_OUTPUTS,
    SERVING_DEFAULT,
)

#: One `(batch, history_len)` spec per recommendation input, named as in the contract.
HISTORY_SPECS = [
    tf.TensorSpec([None, None], tf.as_dtype(dtype), name=name)
    for name, dtype in HISTORY_INPUTS.items()
]


class RecommenderServingModule(SessionLoadableModule):
    """What `tf.saved_model.save` writes for a recommender: its signatures and featurizer.

    Both signatures take the history inputs of `nmt_keras.serving.signatures`
    (`HISTORY_INPUTS`: `items`, `timestamps`, `quantities`, `prices`, each
    `(batch, history_len)`, "" items on padding). `serving_default` returns `products`
    string `(batch, k)`, best first, and `scores` float32 `(batch, k)`; `explain`, exported
    for the attention families, adds `attention` float32 `(batch, k, history_len)`, the
    weight of each past event in each product's score (0 on padding).

    The featurizer's lookup table is saved with the module, so the SavedModel maps item
    codes itself; the Keras model is left out and its variables saved as the signatures
    capture them (see `SessionLoadableModule`).

    Args:
        recommender: The featurizer, model and k to serve.
        asset_files: Files copied into the SavedModel's `assets/` (config, vocabulary).
    """

    keras_attributes = ("recommender",)

    def __init__(self, recommender: Recommender, asset_files: Sequence[str] = ()):
        super().__init__(name="nmt_keras_recommender", asset_files=asset_files)
        self.recommender = recommender

    @property
    def signature_names(self) -> tuple[str, ...]:
        """`serving_default`, and `explain` for a model with attention."""
        if self.recommender.explains:
            return (SERVING_DEFAULT, EXPLAIN)
        return (SERVING_DEFAULT,)

    def _signature(self, name: str) -> tf.types.experimental.ConcreteFunction:
        explain = name == EXPLAIN

        def recommend(items, timestamps, quantities, prices):
            outputs = self.recommender.recommend(
                items, timestamps, quantities, prices, explain=explain
            )
            return {output: outputs[output] for output in RECOMMENDATION_OUTPUTS[name]}

        return tf.function(recommend, input_signature=HISTORY_SPECS).get_concrete_function()

    def saved_children(self) -> dict[str, EventFeaturizer]:
        """The featurizer, which holds the item lookup table."""
        return {"featurizer": self.recommender.featurizer}

    def save(self, path: str) -> None:
        """Writes the SavedModel (graph, variables, table, assets) to the directory `path`."""
        self.save_with_signatures(
            path, {name: self._signature(name) for name in self.signature_names}
        )


def export_recommender(
    recommender: Recommender,
    model_base_path: str | os.PathLike,
    version: int | None = None,
    *,
    asset_files: Sequence[str | os.PathLike] = (),
    warmup_histories=warmup.DEFAULT_WARMUP_HISTORIES,
) -> str:
    """Exports a recommender as `model_base_path/<version>/` for TensorFlow Serving.

    Saved, warmed up and audited through the C++ session loader before it is published,
    as every export is (`nmt_keras.export.exporter.publish_version`).

    Args:
        recommender: The featurizer, model and k to serve.
        model_base_path: The model's directory; created if missing.
        version: The version number; defaults to one more than the highest existing one.
        asset_files: Files copied into the version's `assets/`.
        warmup_histories: Batches of `signatures.History` written as warmup requests, each
            for every signature.

    Returns:
        The path of the new version directory.

    Raises:
        ValueError: If `version` is not positive or already exists.
        nmt_keras.export.audit.AuditError: If the SavedModel is not servable.
    """
    module = RecommenderServingModule(
        recommender, asset_files=[os.fspath(path) for path in asset_files]
    )
    requests = warmup.make_history_warmup_requests(warmup_histories, module.signature_names)
    return publish_version(module, model_base_path, version, requests)
