"""Translate through TensorFlow Serving (or the local `nmt-keras serve`) with the Python client.

Start a server first, either the real one

    docker compose -f serving/docker-compose.yml up -d          # gRPC on localhost:8500

or the local one, which speaks the same API:

    nmt-keras serve --port 8500 --model_name nmt --model_base_path saved_models/demo

then run

    python serving/client_example.py [--target localhost:8500] [--model_name nmt]

The client uses only the stock `tensorflow.serving.PredictionService` gRPC API, so this
script does not know or care which server answers.
"""

from __future__ import annotations

import argparse
import sys

from nmt_keras.serving import Client, ServingError


def main() -> int:
    """Translates a few sentences, then prints the alignment of one of them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="localhost:8500", help="host:port of the gRPC API")
    parser.add_argument("--model_name", default="nmt", help="model name in the server config")
    args = parser.parse_args()

    sentences = ["Tengo hambre.", "¿Dónde está la estación?", "Me gusta leer libros."]
    # One channel per Client; it is thread-safe, so share it rather than making one per call.
    # `timeout` is the deadline of each call; UNAVAILABLE (server starting or restarting) is
    # retried with backoff. Pass version=2 or version_label="canary" to pin a version.
    with Client(args.target, args.model_name, timeout=30) as client:
        try:
            # serving_default: text [batch] -> translation, score (log-probability), length.
            # The client sends at most 64 sentences per request, grouped by length, and
            # returns the results in input order.
            for source, translation in zip(sentences, client.translate(sentences), strict=True):
                print(f"{source}\n  -> {translation.text}  (log p = {translation.score:.2f})")

            # align: the same plus source/target pieces and attention, trimmed by the
            # client with `length` and `source_length` (the server may pad them when it
            # batches requests together).
            [aligned] = client.translate([sentences[0]], align=True)
        except ServingError as error:  # any gRPC failure, with its status code
            print(f"client_example.py: {error}", file=sys.stderr)
            return 1

    alignment = aligned.alignment
    print(f"\nattention of {sentences[0]!r}, shape {alignment.weights.shape} (target x source):")
    print("      " + " ".join(f"{piece[:6]:>6}" for piece in alignment.source_tokens))
    for piece, row in zip(alignment.target_tokens, alignment.weights, strict=True):
        print(f"{piece[:6]:>6} " + " ".join(f"{weight:6.2f}" for weight in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
