"""`SessionLoadableModule`: a `tf.Module` over Keras 3 models that TF Serving can restore.

TF Serving loads a SavedModel with the C++ session loader: the saver's restore op writes
each variable of the checkpoint into the variable node the graph names, and the
signatures read those nodes. A Keras 3 variable exports a second copy of the
`tf.Variable` behind it when it is saved as part of a Keras model reached through the
module; the saver then restores that copy, while the signatures read the original, which
the session loader never initializes: the first Predict fails with "Could not find
variable ..." (`tf.saved_model.load` restores through the object graph and does not
notice). Saving the `tf.Variable`s the signatures capture, and not the Keras models, gives
every weight one variable node and one checkpoint entry that both loaders restore, as
Keras's own `ExportArchive` does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import tensorflow as tf


class SessionLoadableModule(tf.Module):
    """A `tf.Module` whose SavedModel the C++ session loader restores.

    Subclasses name in `keras_attributes` the attributes that reach Keras models; those
    are left out of the SavedModel's object graph, which holds instead the variables the
    signatures capture and whatever `saved_children` returns (for example tokenizers
    that sat beside the model).

    Example:
        >>> class Scorer(SessionLoadableModule):
        ...     keras_attributes = ("model",)
        ...     def __init__(self, model):
        ...         super().__init__()
        ...         self.model = model
        ...     @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        ...     def score(self, x):
        ...         return {"score": self.model(x)}
        >>> scorer = Scorer(keras.Sequential([keras.layers.Dense(1)]))
        >>> scorer.save_with_signatures("/tmp/scorer/1", {"serving_default": scorer.score})
    """

    #: Attributes reaching Keras models, left out of the SavedModel's object graph.
    keras_attributes: tuple[str, ...] = ()

    def __init__(self, name: str | None = None, asset_files: Sequence[str] = ()):
        """Creates the module.

        Args:
            name: The module's name.
            asset_files: Files copied into the SavedModel's `assets/` (configs, tokenizer
                models, vocabularies), for the record.
        """
        super().__init__(name=name)
        self.asset_files = {
            os.path.basename(path): tf.saved_model.Asset(path) for path in asset_files
        }

    def saved_children(self) -> dict[str, Any]:
        """Trackables the SavedModel holds besides the captured variables (default: none)."""
        return {}

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "savedmodel":
            for name in self.keras_attributes:
                children.pop(name, None)
            children.update(self.saved_children())
        return children

    def save_with_signatures(self, path: str, signatures: dict[str, Any]) -> None:
        """Saves the module with `signatures` (tf.functions or concrete functions)."""
        concrete = {
            name: function.get_concrete_function()
            if hasattr(function, "get_concrete_function")
            else function
            for name, function in signatures.items()
        }
        captured = {id(v): v for function in concrete.values() for v in function.variables}
        # A tracked list attribute: the SavedModel saves exactly what the graphs read.
        self.captured_variables = list(captured.values())
        tf.saved_model.save(self, path, signatures=concrete)
