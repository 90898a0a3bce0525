"""The serving contract: what an exported translation model's signatures take and return.

Defined once, here, and imported by the exporter (`nmt_keras.export.module`), the warmup
writer, the local server, the REST codec and the client, so none of them can drift.
Dtypes are `DataType` enums (`tensorflow/core/framework/types.proto`), the form the
SignatureDefs and TensorProtos carry.

Every signature takes `text`: string `[batch]`. Outputs are dense, batch first:

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
"""

from __future__ import annotations

from tensorflow.core.framework import types_pb2

#: The MetaGraph TF Serving loads.
SERVE_TAG = "serve"
#: The signature a request with an empty `signature_name` runs.
SERVING_DEFAULT = "serving_default"
#: Translations with their pieces and attention, for alignment plots.
ALIGN = "align"
#: The n-best lists of beam search; exported only by a translator that runs a beam.
NBEST = "nbest"
SIGNATURE_NAMES = (SERVING_DEFAULT, ALIGN, NBEST)

#: The only input of every signature, and its dtype.
TEXT_INPUT = "text"
TEXT_DTYPE = types_pb2.DT_STRING

_TRANSLATION = {
    "translation": types_pb2.DT_STRING,
    "score": types_pb2.DT_FLOAT,
    "length": types_pb2.DT_INT32,
}
#: Signature -> output name -> dtype enum.
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
#: Rank of each output that is not a `[batch]` vector.
OUTPUT_RANKS = {
    "source_tokens": 2,
    "target_tokens": 2,
    "attention": 3,
    "translations": 2,
    "scores": 2,
}
