"""Attention beyond translation: next purchases from customer event histories.

The same layers, `model.fit` training, export and serving as translation, read a customer's
invoice lines (`events`, `examples`) to rank the products of their next invoice
(`NextPurchaseModel`, `Recommender`, `ranking`). The public names below load lazily, so
the TensorFlow-free parts (config, events, examples, ranking, baselines, the CLI's
parser) import without TensorFlow. A repeat-aware model (`NextPurchaseModel(repeat=True)`)
adds RepeatNet's repeat mode (`RepeatDecoder`) over each past product's
`purchase_statistics`, which is what lets attention beat the counting baselines.
"""

import importlib

_EXPORTS = {
    "ATTENTION_FAMILIES": "nmt_keras.behaviour.families",
    "BASELINES": "nmt_keras.behaviour.families",
    "FAMILIES": "nmt_keras.behaviour.families",
    "MODEL_FAMILIES": "nmt_keras.behaviour.families",
    "FEATURE_NAMES": "nmt_keras.behaviour.featurizer",
    "EventFeaturizer": "nmt_keras.behaviour.featurizer",
    "EventEmbedding": "nmt_keras.behaviour.model",
    "NextPurchaseModel": "nmt_keras.behaviour.model",
    "RepeatDecoder": "nmt_keras.behaviour.repeat_decoder",
    "Recommender": "nmt_keras.behaviour.recommender",
    "export_recommender": "nmt_keras.behaviour.export",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
