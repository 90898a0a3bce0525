"""Next-purchase models: a customer's events read by the translation models' own layers."""

from __future__ import annotations

import keras
from keras import ops

from nmt_keras.behaviour.families import MODEL_FAMILIES, check_family
from nmt_keras.behaviour.featurizer import (
    FEATURE_NAMES,
    NUM_BUCKETS,
    PAD_ID,
    PURCHASE_ID,
    UNKNOWN_ITEM_ID,
)
from nmt_keras.behaviour.repeat_decoder import LOG_ZERO, RepeatDecoder
from nmt_keras.layers import (
    BahdanauAttention,
    LuongAttention,
    MultiHeadAttention,
    RNNStack,
    TransformerEncoderLayer,
)
from nmt_keras.layers.shared_embedding import embedding_initializer
from nmt_keras.layers.transformer_encoder import LAYER_NORM_EPSILON

#: Number of behaviour ids: padding, purchase, cancellation.
_NUM_BEHAVIOURS = 3


@keras.saving.register_keras_serializable(package="nmt_keras")
class EventEmbedding(keras.layers.Layer):
    """The sum of an event's item, behaviour, time-gap, age, quantity and price embeddings.

    ATRank (Zhou et al. 2018, https://arxiv.org/abs/1711.06632, sec. 4.2) embeds a
    behaviour as its item plus its type plus a time-gap bucket; quantity and price buckets
    are the retail attributes of an invoice line. The item table is shared with the
    candidates a model scores (`item_embedding`).

    Args:
        num_ids: Item ids, padding and unknown included.
        units: Embedding size.

    Call args:
        features: `FEATURE_NAMES` -> int `(batch, history_len)` (`EventFeaturizer`).

    Returns:
        float `(batch, history_len)` x `units`: `(batch, history_len, units)`, zero on padding.

    Example:
        >>> import numpy as np
        >>> from nmt_keras.behaviour import FEATURE_NAMES
        >>> from nmt_keras.behaviour.model import EventEmbedding
        >>> features = {name: np.array([[2, 1, 0]]) for name in FEATURE_NAMES}  # 2 events
        >>> tuple(EventEmbedding(num_ids=10, units=8)(features).shape)
        (1, 3, 8)
    """

    def __init__(self, num_ids: int, units: int, **kwargs):
        super().__init__(**kwargs)
        self.num_ids = num_ids
        self.units = units
        sizes = {
            "items": num_ids,
            "behaviours": _NUM_BEHAVIOURS,
            "gaps": NUM_BUCKETS,
            "ages": NUM_BUCKETS,
            "quantities": NUM_BUCKETS,
            "prices": NUM_BUCKETS,
        }
        # The item table also scores the candidates (tied input and output embeddings, as
        # in `SharedEmbedding`), so it starts at the scale of a tied table.
        initializers = {"items": embedding_initializer(units)}
        self.embeddings = {
            name: keras.layers.Embedding(
                sizes[name],
                units,
                embeddings_initializer=initializers.get(name, "uniform"),
                dtype=self.dtype_policy,
                name=f"{name}_embedding",
            )
            for name in FEATURE_NAMES
        }

    @property
    def item_embedding(self) -> keras.layers.Embedding:
        """The item table, `(num_ids, units)`."""
        return self.embeddings["items"]

    def build(self, features_shape):
        """Builds every table."""
        for embedding in self.embeddings.values():
            embedding.build(features_shape["items"])

    def call(self, features):
        """Embeds the events; see the class docstring."""
        summed = sum(self.embeddings[name](features[name]) for name in FEATURE_NAMES)
        real = ops.expand_dims(features["items"] != PAD_ID, -1)  # (batch, history_len, 1)
        return ops.where(real, summed, ops.zeros_like(summed))

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(num_ids=self.num_ids, units=self.units)
        return config


@keras.saving.register_keras_serializable(package="nmt_keras")
class NextPurchaseModel(keras.Model):
    """Scores candidate items for a customer's next purchase from their past events.

    The events are embedded (`EventEmbedding`) and the most recent `sequence_length` of
    them encoded into memory vectors `m_j`; a candidate item `c` with embedding `e_c` is
    scored as `s_c = u_c . e_c + b_c`, where the user vector `u_c` depends on the family:

    | family | encoder | u_c |
    |---|---|---|
    | `gru` | `RNNStack` | `W_h h`, h the last state, a fixed context (Sutskever et al. 2014) |
    | `gru-bahdanau` | `RNNStack` | `W_h h + BahdanauAttention(query=e_c, value=W_m m)` |
    | `gru-luong` | `RNNStack` | `W_h h + LuongAttention("general")(query=e_c, value=W_m m)` |
    | `self-attention` | `TransformerEncoderLayer` | `W_h m_last + MultiHeadAttention(e_c, m)` |

    The attention families add the attention context to a fixed context, as Luong et al.'s
    attentional hidden state `W_c [c_t; h_t]` (2015, eq. 5) does, so they can only add to
    what a fixed context vector knows. For self-attention that fixed context is the last
    event's state, SASRec's user vector (Kang and McAuley 2018,
    https://arxiv.org/abs/1808.09781).

    The attention families read the history the way ATRank does (Zhou et al. 2018, sec.
    4.3-4.4): the candidate item is the query, so each candidate weighs the events that
    make it likely, and those weights explain a recommendation. The self-attention
    family first lets the events attend to each other (sec. 4.3), with the time buckets of
    the embedding in place of positions.

    With `repeat=True` the model is repeat-aware, as RepeatNet (Ren et al. 2019,
    https://arxiv.org/abs/1812.02646, eq. 1): `P(i) = P(repeat) P_r(i) + P(explore) P_e(i)`.
    A `RepeatDecoder` attends over the customer's distinct past products, each described
    by its `purchase_statistics` over the whole history (all `history_len` events, not only
    the encoder's window), with the encoder's summary as the query, and gives `P_r` and the
    mode gate; `P_e` is the softmax of the family's scores `s_c` over the products outside
    the repeat set. The inputs then also hold `statistics` and `repeat_set`
    (`EventFeaturizer(..., statistics=True)`).

    Training (`call`) returns the log-probability of every item of a row's next basket,
    and `basket_loss` averages their negatives. The family's softmax is sampled: each
    item is scored against `negatives` items drawn uniformly per batch and shared by its
    rows (a negative that is in the row's basket, or in its repeat set, is left out), which
    estimates the full softmax (Jean et al. 2015, https://arxiv.org/abs/1412.2007, sec. 3),
    whose bias `b_c` then learns each item's popularity. One history thus serves its whole
    basket in one encoding. `score_items` ranks the whole catalogue and `explain` gives the
    events behind each ranked product.

    Args:
        num_ids: Item ids, padding and unknown included (`EventFeaturizer.num_ids`).
        family: One of `families.MODEL_FAMILIES`.
        units: Size of embeddings, states and user vectors.
        num_layers: Recurrent or self-attention layers.
        num_heads: Heads of the self-attention family's attention.
        attention_units: Hidden size of Bahdanau's score (and of the repeat decoder's).
        dropout: Dropout of the encoder.
        negatives: Sampled negative items per training batch.
        repeat: Whether to add the repeat mode and its gate (`RepeatDecoder`).
        sequence_length: Most recent events the encoder reads; None reads them all.

    Call args:
        inputs: `FEATURE_NAMES` -> int `(batch, history_len)`, and `basket` int
            `(batch, basket_len)`, the items bought next, `PAD_ID` on padding; with
            `repeat`, also `statistics` and `repeat_set` (`purchase_statistics`).
        training: Whether dropout is active.

    Returns:
        float32 `(batch, basket_len)`: the log-probability of each basket item.

    Example:
        >>> import numpy as np
        >>> from nmt_keras.behaviour import EventFeaturizer, NextPurchaseModel
        >>> featurizer = EventFeaturizer([f"item{i}" for i in range(18)])
        >>> features = featurizer(
        ...     items=[["item3", "item4", ""], ["item5", "", ""]],
        ...     timestamps=[[0, 3600, 0], [0, 0, 0]],
        ...     quantities=[[2.0, -1.0, 0.0], [1.0, 0.0, 0.0]],
        ...     prices=[[1.5, 1.5, 0.0], [2.0, 0.0, 0.0]],
        ...     statistics=True,
        ... )
        >>> model = NextPurchaseModel(
        ...     featurizer.num_ids, "gru-luong", units=8, negatives=5, repeat=True
        ... )
        >>> basket = np.array([[6, 7], [8, 0]])  # item ids bought next, 0-padded
        >>> tuple(model({**features, "basket": basket}).shape)
        (2, 2)
        >>> encoded = model.encode(features)
        >>> scores = model.score_items(encoded)  # log P(i) of the 18 items
        >>> attention = model.explain(encoded, np.array([[5, 6], [7, 8]]))
        >>> tuple(scores.shape), tuple(attention.shape)  # 2 products each, over 3 events
        ((2, 18), (2, 2, 3))
    """

    def __init__(
        self,
        num_ids: int,
        family: str = "self-attention",
        units: int = 64,
        num_layers: int = 1,
        num_heads: int = 4,
        attention_units: int = 32,
        dropout: float = 0.0,
        negatives: int = 128,
        repeat: bool = False,
        sequence_length: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_family(family, MODEL_FAMILIES)
        if num_ids <= UNKNOWN_ITEM_ID + 1:
            raise ValueError(
                f"Expected num_ids > {UNKNOWN_ITEM_ID + 1} (padding, unknown and an item). "
                f"Received: num_ids={num_ids}"
            )
        if negatives < 1:
            raise ValueError(f"Expected negatives >= 1. Received: negatives={negatives}")
        if sequence_length is not None and sequence_length < 1:
            raise ValueError(
                "Expected sequence_length >= 1 or None. "
                f"Received: sequence_length={sequence_length}"
            )
        self.num_ids = num_ids
        self.family = family
        self.units = units
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.attention_units = attention_units
        self.dropout = dropout
        self.negatives = negatives
        self.repeat = repeat
        self.sequence_length = sequence_length
        policy = self.dtype_policy
        self.event_embedding = EventEmbedding(num_ids, units, dtype=policy, name="event_embedding")
        if family == "self-attention":
            self.encoder_layers = [
                TransformerEncoderLayer(
                    units, num_heads, 4 * units, dropout, dtype=policy, name=f"encoder_{index}"
                )
                for index in range(num_layers)
            ]
            self.encoder_norm = keras.layers.LayerNormalization(
                epsilon=LAYER_NORM_EPSILON, dtype=policy, name="encoder_norm"
            )
        else:
            self.rnn = RNNStack(units, num_layers, "gru", dropout, dtype=policy, name="rnn")
        attention_layers = {
            "gru-bahdanau": lambda: BahdanauAttention(attention_units, **sublayer),
            "gru-luong": lambda: LuongAttention("general", **sublayer),
            "self-attention": lambda: MultiHeadAttention(units, num_heads, **sublayer),
        }
        sublayer = {"dtype": policy, "name": "attention"}
        self.attention = attention_layers[family]() if family in attention_layers else None
        self.output_projection = keras.layers.Dense(units, dtype=policy, name="output_projection")
        if family in ("gru-bahdanau", "gru-luong"):
            self.context_projection = keras.layers.Dense(
                units, use_bias=False, dtype=policy, name="context_projection"
            )
        self.item_bias = keras.layers.Embedding(
            num_ids, 1, embeddings_initializer="zeros", dtype=policy, name="item_bias"
        )
        if repeat:
            self.repeat_decoder = RepeatDecoder(
                units, attention_units, dtype=policy, name="repeat_decoder"
            )
        self.seed_generator = keras.random.SeedGenerator(0)

    @property
    def has_attention(self) -> bool:
        """Whether the score attends over the events (`families.ATTENTION_FAMILIES`)."""
        return self.attention is not None

    @property
    def first_item_id(self) -> int:
        """The lowest id of a real item; ids below are padding and unknown."""
        return UNKNOWN_ITEM_ID + 1

    @property
    def item_embedding(self) -> keras.layers.Embedding:
        """The item table shared by the events and the candidates."""
        return self.event_embedding.item_embedding

    def encode(self, features, training=None) -> dict:
        """Encodes a batch of histories.

        Args:
            features: `FEATURE_NAMES` -> int `(batch, history_len)`, with `statistics`
                and `repeat_set` for a repeat-aware model.
            training: Whether dropout is active.

        Returns:
            A dict: `states` float `(batch, window, units)` (for the recurrent families
            the RNN's outputs plus the event embeddings), `mask` bool `(batch, window)`
            (True on real events) and `summary` float `(batch, units)`, the state after
            the last real event (zeros for an empty history), where the window is the
            last `sequence_length` events; `window` (`_RecentWindow`) maps it back to the
            history; `items` and `purchases` `(batch, history_len)`; and for a repeat-aware
            model its `repeat_set` and the `RepeatDecoder`'s `repeat_log_probs` and
            `explore_log_gate`.
        """
        items = features["items"]
        window = _RecentWindow(items != PAD_ID, self.sequence_length)
        recent = {name: window.gather(features[name]) for name in FEATURE_NAMES}
        mask = recent["items"] != PAD_ID
        embedded = self.event_embedding(recent)
        if self.family == "self-attention":
            states = embedded
            for layer in self.encoder_layers:
                states = layer(states, padding_mask=mask, training=training)
            states = self.encoder_norm(states)
            summary = _last_real(states, mask)
        else:
            batch = ops.shape(embedded)[0]
            initial = [ops.zeros((batch, self.units), embedded.dtype)] * self.num_layers
            states, final = self.rnn(embedded, initial, mask=mask, training=training)
            # A residual from the events, so a candidate can find itself among them.
            states, summary = states + embedded, final[-1]
        encoded = {
            "states": states,
            "mask": mask,
            "summary": summary,
            "window": window,
            "items": items,
            "purchases": features["behaviours"] == PURCHASE_ID,
        }
        if self.repeat:
            repeat_log_probs, explore_log_gate = self.repeat_decoder(
                features["statistics"],
                features["repeat_set"],
                self.item_embedding(items),
                summary,
            )
            encoded.update(
                repeat_set=features["repeat_set"],
                repeat_log_probs=repeat_log_probs,
                explore_log_gate=explore_log_gate,
            )
        return encoded

    def score(self, encoded, candidates, return_attention=False, training=None):
        """The family's scores of candidate items (a repeat-aware model's explore scores).

        Args:
            encoded: The output of `encode`.
            candidates: int `(batch, num_candidates)` item ids.
            return_attention: Whether to also return each candidate's attention.
            training: Whether dropout is active.

        Returns:
            float32 scores `(batch, num_candidates)`, and with `return_attention` the
            weights `(batch, num_candidates, history_len)` over the events (0 on padding
            and outside the encoder's window).

        Raises:
            ValueError: If `return_attention` is set for the `gru` family.
        """
        states, mask, summary = encoded["states"], encoded["mask"], encoded["summary"]
        queries = self.item_embedding(candidates)  # (batch, num_candidates, units)
        if self.attention is None:
            if return_attention:
                raise ValueError(
                    "Expected an attention family to return attention. Received: family='gru', "
                    "whose fixed context vector attends to nothing"
                )
            # (batch, units) -> (batch, 1, units), the same user vector for every candidate.
            users, weights = ops.expand_dims(self.output_projection(summary), 1), None
        elif self.family == "self-attention":
            # MultiHeadAttention ends with its own output projection W^O.
            contexts, weights = self.attention(
                queries, states, key_mask=mask, return_attention_scores=True, training=training
            )
            weights = ops.mean(weights, axis=1)  # (batch, heads, cand, hist) -> (batch, cand, hist)
            users = contexts + ops.expand_dims(self.output_projection(summary), 1)
        else:
            # Luong's attentional state W_c [c; h] = W_h h + W_m c (eq. 5), with
            # W_m sum_j a_j m_j = sum_j a_j W_m m_j: projecting the history_len memory
            # vectors costs less than projecting one context per candidate.
            contexts, weights = self.attention(
                queries,
                self.context_projection(states),
                mask=mask,
                return_attention_scores=True,
                training=training,
            )
            # (batch, units) -> (batch, 1, units), broadcast over the candidates.
            users = contexts + ops.expand_dims(self.output_projection(summary), 1)
        # (batch, 1 or num_candidates, units) . (batch, num_candidates, units) -> (batch, cand)
        scores = ops.sum(users * queries, axis=-1)
        scores = ops.cast(scores + ops.squeeze(self.item_bias(candidates), -1), "float32")
        if return_attention:
            return scores, encoded["window"].scatter(ops.cast(weights, "float32"))
        return scores

    def score_items(self, encoded, chunk_size=1024):
        """Ranks every vocabulary item, `chunk_size` candidates at a time.

        Args:
            encoded: The output of `encode`.
            chunk_size: Candidates scored at once; bounds the memory of Bahdanau's
                `(batch, candidates, history_len, attention_units)` score.

        Returns:
            float32 `(batch, num_items)`, column j ranking item id `first_item_id + j`:
            the family's scores, or for a repeat-aware model `log P(i)`.
        """
        batch = ops.shape(encoded["states"])[0]
        chunks = []
        for start in range(self.first_item_id, self.num_ids, chunk_size):
            ids = ops.arange(start, min(start + chunk_size, self.num_ids), dtype="int32")
            candidates = ops.broadcast_to(ids[None, :], (batch, ops.shape(ids)[0]))
            chunks.append(self.score(encoded, candidates))
        scores = ops.concatenate(chunks, axis=1)
        if not self.repeat:
            return scores
        in_set, repeat_log_probs = self._repeat_columns(encoded)
        explore_log_probs = scores - ops.logsumexp(
            ops.where(in_set, LOG_ZERO, scores), axis=1, keepdims=True
        )
        explore_log_probs += ops.expand_dims(encoded["explore_log_gate"], 1)
        return ops.where(in_set, repeat_log_probs, explore_log_probs)

    def explain(self, encoded, candidates):
        """The weight of each past event in each candidate's score.

        The family's attention (`score(..., return_attention=True)`); in a repeat-aware
        model a candidate from the repeat set is scored from its own purchases, so its
        weights are spread evenly over them.

        Args:
            encoded: The output of `encode`.
            candidates: int `(batch, num_candidates)` item ids.

        Returns:
            float32 `(batch, num_candidates, history_len)`, 0 on padding.

        Raises:
            ValueError: For the `gru` family, which attends to nothing.
        """
        _, weights = self.score(encoded, candidates, return_attention=True)
        if not self.repeat:
            return weights
        # (batch, 1, history_len) == (batch, num_candidates, 1): the candidate's purchases.
        own = (encoded["items"][:, None, :] == ops.cast(candidates, "int32")[:, :, None]) & (
            encoded["purchases"][:, None, :]
        )
        own = ops.cast(own, "float32")
        count = ops.sum(own, axis=-1, keepdims=True)
        return ops.where(count > 0.0, own / ops.maximum(count, 1.0), weights)

    def call(self, inputs, training=None):
        """The log-probability of each basket item; see the class docstring."""
        encoded = self.encode(inputs, training)
        basket = ops.cast(inputs["basket"], "int32")  # (batch, basket_len), PAD_ID padded
        negatives = keras.random.randint(
            (1, self.negatives), self.first_item_id, self.num_ids, "int32", self.seed_generator
        )
        batch, basket_len = ops.shape(basket)[0], ops.shape(basket)[1]
        negatives = ops.broadcast_to(negatives, (batch, self.negatives))
        candidates = ops.concatenate([basket, negatives], axis=1)
        scores = self.score(encoded, candidates, training=training)
        positives, negative_scores = scores[:, :basket_len], scores[:, basket_len:]
        # (batch, 1, basket_len) == (batch, negatives, 1) -> (batch, negatives): from the basket.
        excluded = ops.any(basket[:, None, :] == negatives[:, :, None], axis=-1)
        if self.repeat:
            in_set, repeat_log_probs = self._repeat_columns(encoded)
            excluded = excluded | self._take_columns(in_set, negatives)
        negative_lse = ops.logsumexp(
            ops.where(excluded, LOG_ZERO, negative_scores), axis=-1, keepdims=True
        )
        explore_log_probs = positives - ops.logaddexp(positives, negative_lse)
        if not self.repeat:
            return explore_log_probs
        explore_log_probs += ops.expand_dims(encoded["explore_log_gate"], 1)
        return ops.where(
            self._take_columns(in_set, basket),
            self._take_columns(repeat_log_probs, basket),
            explore_log_probs,
        )

    def _repeat_columns(self, encoded):
        """The repeat set and its log-probabilities laid out by item column.

        Returns:
            `(in_set, repeat_log_probs)`, bool and float32 `(batch, num_items)`, column j
            for item id `first_item_id + j`; the log-probabilities are 0 off the set.
        """
        items, repeat_log_probs = encoded["items"], encoded["repeat_log_probs"]
        in_set = ops.cast(encoded["repeat_set"], "bool")  # (batch, history_len)
        columns = self.num_ids - self.first_item_id
        batch, length = ops.shape(items)[0], ops.shape(items)[1]
        # One (row, column) per event; events off the set go to an extra column, dropped.
        rows = ops.broadcast_to(ops.arange(batch, dtype="int32")[:, None], (batch, length))
        targets = ops.where(in_set, items - self.first_item_id, columns)
        indices = ops.reshape(ops.stack([rows, targets], axis=-1), (-1, 2))
        shape = (batch, columns + 1)
        # A product is in the set at most once per row, so the scatter's sums are copies.
        counts = ops.scatter(indices, ops.reshape(ops.cast(in_set, "float32"), (-1,)), shape)
        values = ops.scatter(
            indices, ops.reshape(ops.where(in_set, repeat_log_probs, 0.0), (-1,)), shape
        )
        return counts[:, :columns] > 0.0, values[:, :columns]

    def _take_columns(self, by_column, ids):
        """`by_column[b, id - first_item_id]` for int `(batch, n)` ids (any value on padding)."""
        columns = ops.clip(ids - self.first_item_id, 0, self.num_ids - self.first_item_id - 1)
        return ops.take_along_axis(by_column, columns, axis=1)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            num_ids=self.num_ids,
            family=self.family,
            units=self.units,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            attention_units=self.attention_units,
            dropout=self.dropout,
            negatives=self.negatives,
            repeat=self.repeat,
            sequence_length=self.sequence_length,
        )
        return config


class _RecentWindow:
    """The last `length` real events of each left-aligned history, and the way back.

    Args:
        real: bool `(batch, history_len)`, True on real events (a left-aligned prefix).
        length: Events kept; None keeps the whole history.
    """

    def __init__(self, real, length: int | None):
        self._length = length
        if length is None:
            return
        history_len = ops.shape(real)[1]
        counts = ops.sum(ops.cast(real, "int32"), axis=1, keepdims=True)  # (batch, 1)
        width = ops.minimum(length, history_len)
        # (batch, width): positions of the kept events, left-aligned, then past the end.
        positions = ops.maximum(counts - width, 0) + ops.arange(width, dtype="int32")[None, :]
        self._valid = positions < counts
        self._positions = ops.minimum(positions, history_len - 1)
        self._history_len = history_len

    def gather(self, values):
        """`(batch, history_len)` -> `(batch, window)`, `PAD_ID` past the real events."""
        if self._length is None:
            return values
        kept = ops.take_along_axis(values, self._positions, axis=1)
        return ops.where(self._valid, kept, ops.zeros_like(kept))

    def scatter(self, weights):
        """`(batch, n, window)` -> `(batch, n, history_len)`, 0 outside the window."""
        if self._length is None:
            return weights
        # (batch, window, history_len): which history position each window slot holds.
        slots = ops.one_hot(self._positions, self._history_len, dtype=weights.dtype)
        slots = slots * ops.cast(self._valid, weights.dtype)[:, :, None]
        return ops.einsum("bnw,bwh->bnh", weights, slots)


def _last_real(states, mask):
    """The state at each row's last real event, zeros for a row without events.

    Args:
        states: `(batch, history_len, units)`, left-aligned.
        mask: bool `(batch, history_len)`.

    Returns:
        `(batch, units)`.
    """
    lengths = ops.sum(ops.cast(mask, "int32"), axis=1)  # (batch,)
    # (batch,) -> (batch, 1, 1), the index of the last real event (0 for an empty row).
    last = ops.reshape(ops.maximum(lengths - 1, 0), (-1, 1, 1))
    gathered = ops.take_along_axis(states, last, axis=1)[:, 0]  # (batch, units)
    return ops.where(ops.expand_dims(lengths > 0, 1), gathered, ops.zeros_like(gathered))


def basket_loss(y_true, y_pred):
    """The negative log-likelihood of a next basket: the mean over its real items.

    Args:
        y_true: float `(batch, basket_len)`, 1 on real basket items, 0 on padding.
        y_pred: float32 `(batch, basket_len)`, `NextPurchaseModel`'s log-probabilities.

    Returns:
        float32 `(batch,)`; 0 for a row without basket items.
    """
    real = ops.cast(y_true, "float32")
    return -ops.sum(y_pred * real, axis=-1) / ops.maximum(ops.sum(real, axis=-1), 1.0)
