"""Measures how much padding the default bucketing costs on Multi30k.

Trains SentencePiece (joint or one model per language) on the train split, builds the
training dataset with shuffling at a fixed batch size and at a token budget, and prints the
fraction of padding tokens among all source and target tokens.

    python benchmarks/padding.py --src de --tgt en
"""

from __future__ import annotations

import argparse
import os
import time

from nmt_keras.data.corpus import filter_pairs, read_parallel
from nmt_keras.data.pipeline import DEFAULT_BUCKET_WIDTH, make_dataset, padding_fraction
from nmt_keras.text.sentencepiece_training import train_sentencepiece
from nmt_keras.text.tokenizer import Tokenizer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        default=os.path.join(REPO_ROOT, "..", "shared", "data", "multi30k"),
        help="directory with train.<lang>.gz",
    )
    parser.add_argument("--src", default="de")
    parser.add_argument("--tgt", default="en")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--joint", action="store_true", help="one SentencePiece model for both")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=2048)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--bucket-width", type=int, default=DEFAULT_BUCKET_WIDTH)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    corpus = read_parallel(
        os.path.join(args.data, f"train.{args.src}.gz"),
        os.path.join(args.data, f"train.{args.tgt}.gz"),
    )
    start = time.perf_counter()
    if args.joint:
        source_tokenizer = Tokenizer(
            train_sentencepiece(corpus.sources + corpus.targets, args.vocab_size, seed=args.seed)
        )
        target_tokenizer = source_tokenizer
    else:
        source_tokenizer = Tokenizer(
            train_sentencepiece(corpus.sources, args.vocab_size, seed=args.seed)
        )
        target_tokenizer = Tokenizer(
            train_sentencepiece(corpus.targets, args.vocab_size, seed=args.seed)
        )
    print(
        f"sentencepiece ({'joint' if args.joint else 'separate'}, vocab {args.vocab_size}): "
        f"{time.perf_counter() - start:.1f} s"
    )
    corpus, report = filter_pairs(
        corpus, source_tokenizer.token_lengths, target_tokenizer.token_lengths, args.max_length
    )
    print(f"{args.src}-{args.tgt} train: {report}")
    for budget in ({"batch_size": args.batch_size}, {"max_tokens": args.max_tokens}):
        dataset = make_dataset(
            corpus,
            source_tokenizer,
            target_tokenizer,
            max_length=args.max_length,
            shuffle=True,
            seed=args.seed,
            bucket_width=args.bucket_width,
            **budget,
        )
        start = time.perf_counter()
        fraction = padding_fraction(dataset)
        name, value = next(iter(budget.items()))
        print(
            f"{name}={value} bucket_width={args.bucket_width}: padding {fraction:.1%} "
            f"of source+target tokens ({time.perf_counter() - start:.1f} s per epoch)"
        )


if __name__ == "__main__":
    main()
