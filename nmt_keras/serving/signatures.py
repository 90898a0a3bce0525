"""The serving contracts: what exported models' signatures take and return.

Defined once, here, and imported by the exporters (`nmt_keras.export.module`, the
recommender's export module), the warmup writer, the local server, the REST codec and the
client, so none of them can drift. Dtypes are `DataType` enums
(`tensorflow/core/framework/types.proto`), the form the SignatureDefs and TensorProtos carry.
Outputs are dense and batch first; an output name has the same dtype and rank wherever it
appears (`OUTPUT_RANKS`). A client tells the two applications apart by their inputs.

Translation (`TRANSLATION_CONTRACT`): every signature takes `text`: string `[batch]`.

| signature | output | dtype | shape |
|---|---|---|---|
| `serving_default` | `translation` | string | `[batch]` |
| | `score` (log-probability) | float | `[batch]` |
| | `length` (target tokens, `</s>` included) | int32 | `[batch]` |
| `align` | the three above, and `source_length` | int32 | `[batch]` |
| | `source_tokens` | string | `(batch, src_len)` |
| | `target_tokens` | string | `(batch, tgt_len)` |
| | `attention` | float | `(batch, tgt_len, src_len)` |
| `nbest` (beam exports) | `translations` | string | `(batch, n_best)` |
| | `scores` | float | `(batch, n_best)` |

Recommendation (`RECOMMENDATION_CONTRACT`): every signature takes one customer's event
history a row (`HISTORY_INPUTS`), each input `(batch, history_len)`, left-aligned with the
oldest event first and padded on the right; padding is where `items == ""` (`PADDING_ITEM`),
with 0 in the other inputs. Clients send `history_len >= 1`, so a customer without events is
one row of padding (the model must still answer, e.g. with popular products).

| input | dtype | meaning |
|---|---|---|
| `items` | string | stock code of the product |
| `timestamps` | int64 | unix seconds |
| `quantities` | float | units; negative for a cancellation |
| `prices` | float | unit price |

| signature | output | dtype | shape |
|---|---|---|---|
| `serving_default` | `products` (best first) | string | `(batch, k)` |
| | `scores` (descending) | float | `(batch, k)` |
| `explain` (attention models) | the two, and `attention` | float | `(batch, k, history_len)` |

`attention[b, j, t]` is the weight of event `t` of row `b` for its product `j`; 0 on padding.
`pad_histories` lays out a batch of `History` into the four inputs.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
from tensorflow.core.framework import types_pb2

from nmt_keras.serving.tensors import NUMPY_DTYPES

#: The MetaGraph TF Serving loads.
SERVE_TAG = "serve"
#: The signature a request with an empty `signature_name` runs.
SERVING_DEFAULT = "serving_default"
#: Translations with their pieces and attention, for alignment plots.
ALIGN = "align"
#: The n-best lists of beam search; exported only by a translator that runs a beam.
NBEST = "nbest"
#: The translation signatures.
SIGNATURE_NAMES = (SERVING_DEFAULT, ALIGN, NBEST)
#: Recommendations with the attention on the history; exported only by models with attention.
EXPLAIN = "explain"
#: The recommendation signatures.
RECOMMENDATION_SIGNATURE_NAMES = (SERVING_DEFAULT, EXPLAIN)

#: The only input of every translation signature, and its dtype.
TEXT_INPUT = "text"
TEXT_DTYPE = types_pb2.DT_STRING

_TRANSLATION = {
    "translation": types_pb2.DT_STRING,
    "score": types_pb2.DT_FLOAT,
    "length": types_pb2.DT_INT32,
}
#: Translation signature -> output name -> dtype enum.
SIGNATURE_OUTPUTS: dict[str, dict[str, int]] = {
    SERVING_DEFAULT: _TRANSLATION,
    ALIGN: {
        **_TRANSLATION,
        "source_length": types_pb2.DT_INT32,
        "source_tokens": types_pb2.DT_STRING,
        "target_tokens": types_pb2.DT_STRING,
        "attention": types_pb2.DT_FLOAT,
    },
    NBEST: {"translations": types_pb2.DT_STRING, "scores": types_pb2.DT_FLOAT},
}

#: The inputs of every recommendation signature, each `(batch, history_len)`, and their dtypes.
HISTORY_INPUTS: dict[str, int] = {
    "items": types_pb2.DT_STRING,
    "timestamps": types_pb2.DT_INT64,
    "quantities": types_pb2.DT_FLOAT,
    "prices": types_pb2.DT_FLOAT,
}
#: The rank of every recommendation input.
HISTORY_RANK = 2
#: The `items` value of a padding event.
PADDING_ITEM = ""

_RECOMMENDATION = {"products": types_pb2.DT_STRING, "scores": types_pb2.DT_FLOAT}
#: Recommendation signature -> output name -> dtype enum.
RECOMMENDATION_OUTPUTS: dict[str, dict[str, int]] = {
    SERVING_DEFAULT: _RECOMMENDATION,
    EXPLAIN: {**_RECOMMENDATION, "attention": types_pb2.DT_FLOAT},
}

#: Rank of each output that is not a `[batch]` vector, in every contract that has it.
OUTPUT_RANKS = {
    "source_tokens": 2,
    "target_tokens": 2,
    "attention": 3,
    "translations": 2,
    "scores": 2,
    "products": 2,
}


@dataclasses.dataclass(frozen=True)
class Contract:
    """What the signatures of one application's exports take and return.

    Attributes:
        application: What the models do, for messages (e.g. "translation").
        inputs: Input name -> dtype enum; every signature takes exactly these.
        outputs: Signature name -> output name -> dtype enum (the outputs a client reads;
            a signature may have more).
    """

    application: str
    inputs: Mapping[str, int]
    outputs: Mapping[str, Mapping[str, int]]


TRANSLATION_CONTRACT = Contract("translation", {TEXT_INPUT: TEXT_DTYPE}, SIGNATURE_OUTPUTS)
RECOMMENDATION_CONTRACT = Contract("recommendation", HISTORY_INPUTS, RECOMMENDATION_OUTPUTS)
CONTRACTS = (TRANSLATION_CONTRACT, RECOMMENDATION_CONTRACT)


@dataclasses.dataclass(frozen=True)
class History:
    """One customer's events, oldest first: a row of the recommendation inputs.

    The four fields are stored as tuples. Events may share a timestamp (the lines of one
    invoice) but must not go back in time.

    Attributes:
        items: Stock code of each event's product; none may be `""` (padding).
        timestamps: Unix seconds of each event, non-decreasing.
        quantities: Units of each event; negative for a cancellation.
        prices: Unit price of each event.

    Raises:
        TypeError: If a field is a single string, or holds a value of the wrong type
            (items: `str`; timestamps: integers; quantities and prices: real numbers).
        ValueError: If the fields differ in length, an item is `""`, a quantity or price is
            not finite, or the timestamps decrease.
    """

    items: Sequence[str]
    timestamps: Sequence[int]
    quantities: Sequence[float]
    prices: Sequence[float]

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, (str, bytes)):
                raise TypeError(
                    f"Expected a sequence for {field.name}. Received: a single "
                    f"{type(value).__name__} {value[:40]!r}"
                )
            object.__setattr__(self, field.name, tuple(value))
        lengths = {field.name: len(getattr(self, field.name)) for field in dataclasses.fields(self)}
        if len(set(lengths.values())) > 1:
            received = ", ".join(f"len({name})={length}" for name, length in lengths.items())
            raise ValueError(f"Expected fields of one length (one per event). Received: {received}")
        for index, item in enumerate(self.items):
            if not isinstance(item, str):
                raise TypeError(
                    f"Expected every item to be a str. Received: items[{index}] of type "
                    f"{type(item).__name__}"
                )
            if item == PADDING_ITEM:
                raise ValueError(
                    f"Expected non-empty items ({PADDING_ITEM!r} is padding). "
                    f"Received: items[{index}]={item!r}"
                )
        for index, timestamp in enumerate(self.timestamps):
            if not isinstance(timestamp, numbers.Integral) or isinstance(timestamp, bool):
                raise TypeError(
                    f"Expected integer timestamps (unix seconds). Received: "
                    f"timestamps[{index}]={timestamp!r} of type {type(timestamp).__name__}"
                )
            if index and timestamp < self.timestamps[index - 1]:
                raise ValueError(
                    "Expected non-decreasing timestamps (oldest event first). Received: "
                    f"timestamps[{index - 1}]={self.timestamps[index - 1]}, "
                    f"timestamps[{index}]={timestamp}"
                )
        for name in ("quantities", "prices"):
            for index, value in enumerate(getattr(self, name)):
                if not isinstance(value, numbers.Real) or isinstance(value, bool):
                    raise TypeError(
                        f"Expected real numbers in {name}. Received: {name}[{index}]={value!r} "
                        f"of type {type(value).__name__}"
                    )
                if not math.isfinite(value):
                    raise ValueError(f"Expected finite {name}. Received: {name}[{index}]={value!r}")

    def __len__(self) -> int:
        """The number of events."""
        return len(self.items)


def pad_histories(histories: Sequence[History]) -> dict[str, np.ndarray]:
    """Lays out a batch of histories as the recommendation inputs.

    Args:
        histories: At least one history.

    Returns:
        `HISTORY_INPUTS` name -> `(len(histories), history_len)` array, `history_len` the
        longest history's length (at least 1): `items` an object array of `str`,
        `timestamps` int64, `quantities` and `prices` float32; each row left-aligned,
        padded with `PADDING_ITEM` and zeros.

    Raises:
        ValueError: If `histories` is empty.
    """
    if not histories:
        raise ValueError("Expected at least one history. Received: none")
    shape = (len(histories), max(1, *(len(history) for history in histories)))
    arrays = {
        name: np.full(shape, PADDING_ITEM, dtype=object)
        if dtype == types_pb2.DT_STRING
        else np.zeros(shape, dtype=NUMPY_DTYPES[dtype])
        for name, dtype in HISTORY_INPUTS.items()
    }
    for row, history in enumerate(histories):
        for name, array in arrays.items():
            array[row, : len(history)] = getattr(history, name)
    return arrays
