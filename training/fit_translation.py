"""Train a translation model with plain `model.fit`: a script to copy and edit.

Everything `nmt-keras train` does for a YAML recipe, written out as one readable Keras
script: SentencePiece tokenizers, a tf.data pipeline, a model built from its Keras
classes, `compile` and `fit` with validation BLEU, then saving, translating and
exporting a SavedModel for TensorFlow Serving.

    python training/fit_translation.py --model bahdanau       # Spanish -> English demo
    python training/fit_translation.py --model transformer --epochs 20 --units 256
    python training/fit_translation.py --model luong --source my.de --target my.en \
        --valid-source dev.de --valid-target dev.en --output-dir runs/my-luong

Files (plain or .gz, one sentence a line) default to the bundled Tatoeba corpus. The
output directory gets `model.keras`, `source.spm`, `target.spm` and `serving/<version>/`
(serve it with `nmt-keras serve --model_base_path OUTPUT/serving` or TF Serving).
"""

# ruff: noqa: E402 (TF_CPP_MIN_LOG_LEVEL is set before TensorFlow is imported)
import argparse
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from nmt_keras.config import CorpusFiles
from nmt_keras.data import make_dataset, read_corpus, scan_corpus, stream_dataset, subsample
from nmt_keras.decoding import DecodingOptions
from nmt_keras.export import export_translator
from nmt_keras.layers import (
    BahdanauDecoder,
    Encoder,
    LuongDecoder,
    TransformerDecoder,
    TransformerEncoder,
)
from nmt_keras.models import Seq2Seq, Transformer
from nmt_keras.text import PAD_ID, Tokenizer, train_sentencepiece
from nmt_keras.training import (
    BleuCallback,
    MaskedAccuracy,
    MaskedCrossEntropy,
    StepLog,
    WarmupInverseSqrt,
    WeightsCheckpoint,
)
from nmt_keras.translator import Translator

# The bundled Spanish-English demo corpus, found from this file (any working directory).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(REPO, "data", "tatoeba-spa-eng")


def parse_args(argv=None) -> argparse.Namespace:
    """The command line: data files, model size and training length."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["bahdanau", "luong", "transformer"], default="bahdanau")
    parser.add_argument("--source", default=f"{DEMO}/train.es.gz")
    parser.add_argument("--target", default=f"{DEMO}/train.en.gz")
    parser.add_argument("--valid-source", default=f"{DEMO}/dev.es.gz")
    parser.add_argument("--valid-target", default=f"{DEMO}/dev.en.gz")
    parser.add_argument("--output-dir", help="default: runs/fit-MODEL")
    parser.add_argument("--vocab-size", type=int, default=2000, help="per language")
    parser.add_argument("--units", type=int, default=256, help="hidden size (units)")
    parser.add_argument("--max-length", type=int, default=32, help="tokens, <s> </s> included")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps-per-epoch", type=int, default=300)
    parser.add_argument("--learning-rate", type=float, help="default: 3e-3, Transformer 1.5e-3")
    parser.add_argument("--warmup-steps", type=int, help="default: none, Transformer 400")
    parser.add_argument("--bleu-samples", type=int, default=200, help="validation pairs")
    parser.add_argument("--beam-size", type=int, default=4, help="1: greedy examples only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.output_dir = args.output_dir or os.path.join("runs", f"fit-{args.model}")
    transformer = args.model == "transformer"  # rates as in the recipes, training/configs/
    if args.learning_rate is None:
        args.learning_rate = 1.5e-3 if transformer else 3e-3  # the peak, with warm-up
    if args.warmup_steps is None:
        args.warmup_steps = 400 if transformer else 0
    return args


def make_tokenizers(train: CorpusFiles, vocab_size: int, seed: int) -> tuple[Tokenizer, Tokenizer]:
    """Checks the training files and trains one SentencePiece model per language.

    SentencePiece learns from a random sample of at most 100,000 pairs: a corpus of
    any size is read once, as a stream.
    """
    scan = scan_corpus(train, sample_size=100_000, seed=seed)
    print(f"training pairs: {scan.pairs}")

    def train_side(sentences) -> Tokenizer:
        # "auto" sizes the alphabet for the script (Latin, Cyrillic, Chinese, ...).
        proto = train_sentencepiece(sentences, vocab_size, character_coverage="auto", seed=seed)
        return Tokenizer(proto)

    return train_side(scan.sample.sources), train_side(scan.sample.targets)


def build_model(kind: str, source_vocab: int, target_vocab: int, units: int) -> keras.Model:
    """The encoder-decoder, composed of Keras layers from `nmt_keras.layers`.

    `Seq2Seq` takes an `Encoder` (bidirectional RNN) and a decoder: `BahdanauDecoder`
    attends before the RNN step, `LuongDecoder` after it (`ContextDecoder`: no
    attention). `Transformer` takes a `TransformerEncoder` and a `TransformerDecoder`.
    Their docstrings list every option (LSTM, layers, residual connections, score
    modes, local attention, shared embeddings, ...); any `RNNDecoder` subclass fits.
    """
    if kind == "transformer":
        sizes = dict(units=units, num_heads=4, ff_dim=4 * units, num_layers=2, dropout=0.1)
        model = Transformer(
            TransformerEncoder(source_vocab, name="encoder", **sizes),
            TransformerDecoder(target_vocab, name="decoder", **sizes),
            name="transformer",
        )
    else:
        sizes = dict(embedding_dim=units // 2, units=units, rnn="gru", dropout=0.1)
        encoder = Encoder(source_vocab, bidirectional=True, name="encoder", **sizes)
        if kind == "bahdanau":
            decoder = BahdanauDecoder(
                target_vocab, attention_units=units // 2, name="decoder", **sizes
            )
        else:
            decoder = LuongDecoder(target_vocab, score_mode="general", name="decoder", **sizes)
        model = Seq2Seq(encoder, decoder, name=kind)
    ids = keras.ops.ones((1, 2), dtype="int32")
    model({"source": ids, "target": ids})  # creates the weights, so summary() can count them
    return model


def main(argv=None) -> None:
    """Trains, saves, translates and exports; see the module docstring."""
    args = parse_args(argv)
    # Bucketed batches have no known count: Keras finds the end of the validation set by
    # running out of it, and would warn about it after every epoch.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    keras.utils.set_random_seed(args.seed)  # before any Tokenizer exists (see its docstring)
    os.makedirs(args.output_dir, exist_ok=True)

    # 1. Data and tokenizers.
    train_files = CorpusFiles(source=args.source, target=args.target)
    valid = read_corpus(CorpusFiles(source=args.valid_source, target=args.valid_target))
    source_tokenizer, target_tokenizer = make_tokenizers(train_files, args.vocab_size, args.seed)
    source_tokenizer.save(os.path.join(args.output_dir, "source.spm"))
    target_tokenizer.save(os.path.join(args.output_dir, "target.spm"))

    # 2. tf.data: ({"source": ids, "target": <s> y}, y </s>) batches, bucketed by length.
    batching = dict(batch_size=args.batch_size, max_length=args.max_length)
    train_data = stream_dataset(
        train_files,
        source_tokenizer,
        target_tokenizer,
        shuffle_buffer=100_000,
        seed=args.seed,
        repeat=True,  # an endless stream; steps_per_epoch says where an epoch ends
        **batching,
    )
    valid_data = make_dataset(valid, source_tokenizer, target_tokenizer, shuffle=False, **batching)

    # 3. Model, loss, metric and learning rate.
    model = build_model(
        args.model, source_tokenizer.vocab_size, target_tokenizer.vocab_size, args.units
    )
    model.summary()
    learning_rate = args.learning_rate
    if args.warmup_steps:
        learning_rate = WarmupInverseSqrt(args.learning_rate, args.warmup_steps)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0),
        loss=MaskedCrossEntropy(PAD_ID, label_smoothing=0.1),  # padding does not count
        metrics=[MaskedAccuracy(PAD_ID)],
    )

    # 4. fit, with greedy-search BLEU on validation pairs after every epoch.
    lengths = dict(max_source_length=args.max_length, max_decode_length=args.max_length + 8)
    translator = Translator(model, source_tokenizer, target_tokenizer, **lengths)  # greedy
    sample = subsample(valid, args.bleu_samples, args.seed)
    best = os.path.join(args.output_dir, "best.weights.h5")
    callbacks = [
        BleuCallback(translator, sample.sources, sample.targets),  # adds val_bleu to the logs
        WeightsCheckpoint(os.path.join(args.output_dir, "last.weights.h5"), best, "val_bleu"),
        StepLog(every=100),
    ]
    model.fit(
        train_data,
        validation_data=valid_data,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        callbacks=callbacks,
        shuffle=False,  # the dataset shuffles itself
        verbose=2,
    )

    # 5. Keep the best epoch, save the model, and translate a few validation sentences.
    model.load_weights(best)
    model.save(os.path.join(args.output_dir, "model.keras"))
    searches = {"greedy": translator}
    if args.beam_size > 1:
        beam = DecodingOptions(beam_size=args.beam_size, length_penalty=0.6)
        searches["beam"] = Translator(
            model, source_tokenizer, target_tokenizer, decoding=beam, **lengths
        )
    examples = list(sample.sources[:3])
    outputs = {name: search.translate_all(examples) for name, search in searches.items()}
    for index, source in enumerate(examples):
        print(source)
        for name, translations in outputs.items():
            print(f"  {name}: {translations[index]}")

    # 6. A SavedModel for TF Serving, with the tokenizers inside its graph: staged, audited
    # and loaded as TF Serving's C++ loader does, then published as the next version.
    assets = [os.path.join(args.output_dir, name) for name in ("source.spm", "target.spm")]
    version_dir = export_translator(
        translator, os.path.join(args.output_dir, "serving"), asset_files=assets
    )
    print(f"SavedModel for TF Serving: {version_dir}")


if __name__ == "__main__":
    main()
