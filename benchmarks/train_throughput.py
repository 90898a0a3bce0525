"""Measures `model.fit` training throughput of nmt-keras against the TensorFlow tutorial.

What it measures: sentence pairs per second, target tokens per second (non-padding label
tokens, so `</s>` / `[END]` count and padding does not) and seconds per step of
`keras.Model.fit` on the Multi30k training split, for

* `tutorial`: the TensorFlow "Neural machine translation with attention" model
  (`tutorial_model.py`: word vocabularies of 5000, bidirectional GRU encoder summed,
  GRU decoder + one-head `MultiHeadAttention`), on its own pipeline (shuffle, batch,
  pad to the longest sentence of the batch): the baseline;
* each requested nmt-keras family (`luong`: general score, no input feeding; `bahdanau`;
  `seq2seq`), built by `nmt_keras.models.build_model` with SentencePiece vocabularies
  (5000 per side) on `nmt_keras.data.pipeline.make_dataset` batches (length-bucketed),
  trained with `MaskedCrossEntropy` and `MaskedAccuracy`.

Both sides project onto vocabularies of the same size by default (`--vocab-size` pieces
and `--word-vocab-size` words, both 5000, the tutorial's), so the output projection, the
largest matmul of a step, costs both the same; the table's "vocab" column shows the sizes
every run used. All models see the same sentence pairs (those within `--max-length`
SentencePiece tokens), `--batch-size` pairs a step, Adam, embedding size and `--units`
(the nmt-keras encoder has `units // 2` per direction, concatenated; the tutorial's has
`units` per direction, summed, as in the tutorial). nmt-keras uses the project's
training defaults (dropout, label smoothing, gradient clipping from `nmt_keras.config`);
the tutorial its own (`optimizer="adam"`, no dropout).

How: the first `--warmup + --steps` batches of each pipeline are cached in memory (their
pair and token counts are taken then), so every run trains on identical batches and the
input pipeline is out of the measurement. Every model first makes one untimed pass over
them, which traces each batch shape (and under XLA compiles it): the table's "first pass"
column. Each run is then one `model.fit` over those batches; a callback stamps the end of
every step, the first `--warmup` steps are discarded and the next `--steps` are timed.
With `--jit-compile`, every family also runs under XLA as `<family>-xla`, compiled as
`training.jit_compile: true` compiles it and on the batches it trains on there: the same
pairs, each batch padded to its length bucket's longest length. Runs are interleaved
(tutorial, luong, bahdanau, ..., tutorial, luong, ...) `--repeats` times, so background
load hits every model alike; the table shows medians over repeats, and the ratios are the
medians of the per-repeat ratios to the tutorial run of the same repeat. Because every
repeat trains on the same batches, the "floor" columns add up each timed step at its
fastest repeat: background load only adds time, so on a shared machine the floor is the
least disturbed estimate (it approaches the median on a quiet one). The CPU columns divide
by this process's CPU time instead of wall time, which other processes hardly change.
A second table splits the timed steps by the padded target length of their batch (the
cost's growth with sentence length; the tutorial's batches are not length-bucketed, so
they are padded to their longest sentence and fall in the long bands).

    python benchmarks/train_throughput.py --src de --tgt en --json train_throughput.json
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import keras
import tensorflow as tf
import tutorial_model
from machine import machine_info

from nmt_keras.config import ModelConfig, TrainingConfig
from nmt_keras.data.corpus import CorpusError, filter_pairs, read_parallel
from nmt_keras.data.pipeline import make_dataset
from nmt_keras.models import build_model
from nmt_keras.text.sentencepiece_training import train_sentencepiece
from nmt_keras.text.tokenizer import PAD_ID, Tokenizer
from nmt_keras.training.losses import MaskedCrossEntropy
from nmt_keras.training.metrics import MaskedAccuracy

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from script_tools import log  # noqa: E402

DEFAULT_DATA = os.path.join(REPO_ROOT, "..", "shared", "data", "multi30k")
FAMILIES = ("luong", "bahdanau", "seq2seq")
BASELINE = "tutorial"
XLA_SUFFIX = "-xla"
LENGTH_BANDS = ((1, 8), (9, 16), (17, 24), (25, None))
DESCRIPTIONS = {
    BASELINE: "TF tutorial NMT with attention (word vocab)",
    "luong": "nmt-keras luong (general, no input feeding)",
    "bahdanau": "nmt-keras bahdanau",
    "seq2seq": "nmt-keras seq2seq (fixed context)",
}


def describe(name: str) -> str:
    """The table's description of a model name (`<family>-xla`: the family under XLA)."""
    if name.endswith(XLA_SUFFIX):
        return f"{DESCRIPTIONS[name.removesuffix(XLA_SUFFIX)]}, XLA, batches padded to bucket"
    return DESCRIPTIONS[name]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    model_defaults = ModelConfig()
    training_defaults = TrainingConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder with train.<lang>.gz")
    parser.add_argument("--src", default="de", help="source language")
    parser.add_argument("--tgt", default="en", help="target language")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="discarded steps per run (>= 1)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs per model")
    parser.add_argument("--batch-size", type=int, default=64, help="sentence pairs per step")
    parser.add_argument(
        "--families",
        default=",".join(FAMILIES),
        help=f"comma-separated nmt-keras families ({', '.join(FAMILIES)})",
    )
    parser.add_argument("--embedding-dim", type=int, default=256)
    parser.add_argument("--units", type=int, default=256, help="RNN units (encoder: total)")
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=tutorial_model.MAX_VOCAB_SIZE,
        help="SentencePiece pieces per side (default: the tutorial's word vocabulary size)",
    )
    parser.add_argument(
        "--word-vocab-size",
        type=int,
        default=tutorial_model.MAX_VOCAB_SIZE,
        help="tutorial TextVectorization max_tokens, per side",
    )
    parser.add_argument("--max-length", type=int, default=64, help="tokens per sentence")
    parser.add_argument("--dropout", type=float, default=model_defaults.dropout)
    parser.add_argument("--label-smoothing", type=float, default=training_defaults.label_smoothing)
    parser.add_argument(
        "--clipnorm",
        type=float,
        default=training_defaults.clipnorm,
        help="nmt-keras gradient clipping (0: off)",
    )
    parser.add_argument("--learning-rate", type=float, default=training_defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--jit-compile",
        action="store_true",
        help="also run each family under XLA (`training.jit_compile`) as `<family>-xla`",
    )
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--markdown", help="write the table to this markdown file")
    args = parser.parse_args(argv)
    families = [name.strip() for name in args.families.split(",") if name.strip()]
    args.families = list(dict.fromkeys(families))  # Unique, in the given order.
    unknown = sorted(set(args.families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown family {unknown[0]!r}; expected some of {', '.join(FAMILIES)}")
    for name in ("steps", "warmup", "repeats", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if not os.path.isdir(args.data):
        parser.exit(
            2, f"{parser.prog}: error: data folder not found: {os.path.normpath(args.data)}\n"
        )
    return args


class StepTimer(keras.callbacks.Callback):
    """Stamps wall-clock and process CPU time before the first and after every step.

    Defining `on_train_batch_end` also makes Keras call callbacks synchronously, so each
    stamp is taken after its step has finished.
    """

    def __init__(self):
        super().__init__()
        self.start = (0.0, 0.0)
        self.ends: list[tuple[float, float]] = []

    def on_train_begin(self, logs=None):
        """Clears the stamps of a previous `fit`."""
        self.ends = []

    def on_train_batch_begin(self, batch, logs=None):
        """Stamps the start of the first step."""
        del logs
        if batch == 0:
            self.start = (time.perf_counter(), time.process_time())

    def on_train_batch_end(self, batch, logs=None):
        """Stamps the end of step `batch`."""
        del batch, logs
        self.ends.append((time.perf_counter(), time.process_time()))


def cache_batches(dataset: tf.data.Dataset, count: int) -> tuple[tf.data.Dataset, dict]:
    """Caches the first `count` batches of `(inputs, labels)` in memory and counts them.

    Args:
        dataset: Batches whose labels are 0-padded `(batch, tgt_len)` ids; repeated if
            it has fewer than `count` batches.
        count: Batches to keep.

    Returns:
        The cached dataset (one full pass done, so later passes read memory) and per-batch
        statistics: `pairs`, `target_tokens` (non-padding labels), `padded_target_len`,
        `padded_source_len`, each a list with one value per batch.
    """
    cached = dataset.repeat().take(count).cache()
    stats = {"pairs": [], "target_tokens": [], "padded_target_len": [], "padded_source_len": []}
    for inputs, labels in cached:
        source = inputs["source"] if isinstance(inputs, dict) else inputs[0]
        stats["pairs"].append(int(labels.shape[0]))
        stats["target_tokens"].append(int(tf.math.count_nonzero(labels != PAD_ID)))
        stats["padded_target_len"].append(int(labels.shape[1]))
        stats["padded_source_len"].append(int(source.shape[1]))
    return cached, stats


def build_tutorial(args, corpus) -> tuple[keras.Model, tf.data.Dataset, dict]:
    """The tutorial model, compiled as in the tutorial, and its batches."""
    processors = []
    for sentences in (corpus.sources, corpus.targets):
        strings = tf.data.Dataset.from_tensor_slices(list(sentences)).batch(1024)
        processors.append(tutorial_model.make_text_processor(strings, args.word_vocab_size))
    dataset = tutorial_model.make_dataset(
        corpus.sources, corpus.targets, *processors, batch_size=args.batch_size, seed=args.seed
    )
    model = tutorial_model.Translator(
        args.units, processors[0].vocabulary_size(), processors[1].vocabulary_size()
    )
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=tutorial_model.masked_loss,
        metrics=[tutorial_model.masked_acc, tutorial_model.masked_loss],
    )
    info = {
        "vocab": [processors[0].vocabulary_size(), processors[1].vocabulary_size()],
        "tokenizer": "TextVectorization (tf_lower_and_split_punct)",
    }
    return model, dataset, info


def build_nmt_keras(
    args, family, corpus, tokenizers, jit_compile: bool
) -> tuple[keras.Model, dict]:
    """An nmt-keras model of `family`, compiled with the project's loss and metric."""
    config = ModelConfig(
        type=family,
        rnn="gru",
        embedding_dim=args.embedding_dim,
        units=args.units,
        bidirectional=True,
        dropout=args.dropout,
        score_mode="general",
        input_feeding=False,
    )
    config.validate("model")
    model = build_model(config, tokenizers[0].vocab_size, tokenizers[1].vocab_size)
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate, clipnorm=args.clipnorm or None),
        loss=MaskedCrossEntropy(pad_id=PAD_ID, label_smoothing=args.label_smoothing),
        metrics=[MaskedAccuracy(pad_id=PAD_ID)],
        jit_compile=jit_compile,
    )
    info = {
        "vocab": [tokenizers[0].vocab_size, tokenizers[1].vocab_size],
        "tokenizer": "SentencePiece unigram",
        "batches_padded_to_bucket": jit_compile,
        "model_config": {
            "type": config.type,
            "score_mode": config.score_mode,
            "input_feeding": config.input_feeding,
            "dropout": config.dropout,
        },
    }
    return model, info


def time_fit(model: keras.Model, dataset: tf.data.Dataset, stats: dict, warmup: int) -> dict:
    """One `model.fit` over the cached batches; times the steps after `warmup`.

    Returns:
        Wall-clock `seconds` of the timed steps, `s_per_step`, `pairs_per_s`,
        `target_tokens_per_s`; the same per CPU second of this process (`cpu_seconds`,
        `cpu_s_per_step`, `pairs_per_cpu_s`, `target_tokens_per_cpu_s`: other processes
        on the machine delay a step's wall time far more than its CPU time); and
        `step_seconds`, the wall time of every step, warmup included.
    """
    count = len(stats["pairs"])
    timer = StepTimer()
    model.fit(dataset, epochs=1, steps_per_epoch=count, verbose=0, callbacks=[timer])
    if len(timer.ends) != count:
        raise RuntimeError(f"Expected {count} steps. Received: {len(timer.ends)} step ends")
    seconds = timer.ends[-1][0] - timer.ends[warmup - 1][0]
    cpu_seconds = timer.ends[-1][1] - timer.ends[warmup - 1][1]
    steps = count - warmup
    pairs = sum(stats["pairs"][warmup:])
    tokens = sum(stats["target_tokens"][warmup:])
    stamps = [timer.start[0]] + [wall for wall, _ in timer.ends]
    return {
        "seconds": seconds,
        "s_per_step": seconds / steps,
        "pairs_per_s": pairs / seconds,
        "target_tokens_per_s": tokens / seconds,
        "cpu_seconds": cpu_seconds,
        "cpu_s_per_step": cpu_seconds / steps,
        "pairs_per_cpu_s": pairs / cpu_seconds,
        "target_tokens_per_cpu_s": tokens / cpu_seconds,
        "step_seconds": [later - earlier for earlier, later in itertools.pairwise(stamps)],
    }


def code_version() -> dict:
    """The repository's commit and whether files differ from it (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", "-C", REPO_ROOT, *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def summarise(names: list[str], runs: dict[str, list[dict]], timed: dict[str, dict]) -> dict:
    """Medians over repeats, a noise floor, and ratios to the tutorial.

    Args:
        names: Models, the tutorial first.
        runs: Per model, the `time_fit` results of every repeat.
        timed: Per model, `steps`, `pairs` and `target_tokens` of the timed steps.

    Returns:
        Per model: `median` (over repeats), `floor` (every timed step at its fastest
        repeat, summed: background load only ever adds time, so this is the least
        disturbed estimate) and `ratio_vs_tutorial` (median of the per-repeat ratios,
        and the ratio of the floors).
    """
    summary = {}
    for name in names:
        keys = [key for key in runs[name][0] if key != "step_seconds"]
        median = {key: statistics.median(run[key] for run in runs[name]) for key in keys}
        steps = timed[name]["steps"]
        per_step = [run["step_seconds"][-steps:] for run in runs[name]]
        seconds = sum(min(times) for times in zip(*per_step, strict=True))
        floor = {
            "seconds": seconds,
            "s_per_step": seconds / steps,
            "pairs_per_s": timed[name]["pairs"] / seconds,
            "target_tokens_per_s": timed[name]["target_tokens"] / seconds,
        }
        summary[name] = {"median": median, "floor": floor}
    for name in names:
        ratios = {}
        for key in ("pairs_per_s", "target_tokens_per_s", "pairs_per_cpu_s"):
            per_repeat = [
                run[key] / base[key] for run, base in zip(runs[name], runs[BASELINE], strict=True)
            ]
            ratios[key] = {"median": statistics.median(per_repeat), "per_repeat": per_repeat}
            if key in summary[name]["floor"]:
                floor = summary[name]["floor"][key] / summary[BASELINE]["floor"][key]
                ratios[key]["floor"] = floor
        summary[name]["ratio_vs_tutorial"] = ratios
    return summary


def throughput_by_length(runs: dict[str, list[dict]], stats: dict[str, dict], warmup: int):
    """Target tokens per second of the timed steps, by the padded target length of a batch.

    Each timed step counts at its median time over the repeats; its batch falls in the
    `LENGTH_BANDS` band of its padded target length (the longest target of the batch).

    Returns:
        Per model, a list of `{"band", "steps", "target_tokens_per_s", "pairs_per_s"}`,
        bands without a timed batch left out.
    """
    by_length = {}
    for name, model_runs in runs.items():
        seconds = [
            statistics.median(times)
            for times in zip(*(run["step_seconds"][warmup:] for run in model_runs), strict=True)
        ]
        batches = {key: values[warmup:] for key, values in stats[name].items()}
        rows = []
        for low, high in LENGTH_BANDS:
            steps = [
                index
                for index, length in enumerate(batches["padded_target_len"])
                if low <= length and (high is None or length <= high)
            ]
            if not steps:
                continue
            time_spent = sum(seconds[index] for index in steps)
            rows.append(
                {
                    "band": _band_name((low, high)),
                    "steps": len(steps),
                    "target_tokens_per_s": sum(batches["target_tokens"][i] for i in steps)
                    / time_spent,
                    "pairs_per_s": sum(batches["pairs"][i] for i in steps) / time_spent,
                }
            )
        by_length[name] = rows
    return by_length


def length_table(names: list[str], results: dict) -> str:
    """Target tokens per second by padded target length, a markdown table."""
    seen = {row["band"] for name in names for row in _bands(results, name)}
    bands = [band for band in map(_band_name, LENGTH_BANDS) if band in seen]
    lines = [
        "| model | " + " | ".join(f"tgt len {band}: tokens/s (steps)" for band in bands) + " |",
        "|---|" + "---:|" * len(bands),
    ]
    for name in names:
        rows = {row["band"]: row for row in _bands(results, name)}
        cells = [
            f"{rows[band]['target_tokens_per_s']:.0f} ({rows[band]['steps']})"
            if band in rows
            else "-"
            for band in bands
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _band_name(band: tuple[int, int | None]) -> str:
    low, high = band
    return f"{low}-{high}" if high else f">={low}"


def _bands(results: dict, name: str) -> list[dict]:
    return results["models"][name]["by_target_length"]


def markdown_table(names: list[str], results: dict) -> str:
    """The results as a markdown table."""
    lines = [
        "| model | vocab src/tgt | tgt tokens/pair | s/step | pairs/s | tgt tokens/s "
        "| x tutorial (pairs/s) | x tutorial (tokens/s) "
        "| floor s/step | x tutorial floor (pairs/s) | CPU s/step | x tutorial (pairs/CPU s) "
        "| first pass s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        model = results["models"][name]
        median = model["median"]
        ratios = model["ratio_vs_tutorial"]
        lines.append(
            f"| {name} | {model['vocab'][0]}/{model['vocab'][1]} "
            f"| {model['batches']['target_tokens_per_pair']:.1f} "
            f"| {median['s_per_step']:.3f} | {median['pairs_per_s']:.0f} "
            f"| {median['target_tokens_per_s']:.0f} "
            f"| {ratios['pairs_per_s']['median']:.2f} "
            f"| {ratios['target_tokens_per_s']['median']:.2f} "
            f"| {model['floor']['s_per_step']:.3f} | {ratios['pairs_per_s']['floor']:.2f} "
            f"| {median['cpu_s_per_step']:.3f} | {ratios['pairs_per_cpu_s']['median']:.2f} "
            f"| {model['first_pass_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # The tutorial's layers drop Keras masks by design; fit on a dataset ignores shuffle.
    warnings.filterwarnings("ignore", message=".*does not support masking.*")
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    machine = machine_info()
    try:
        corpus = read_parallel(
            os.path.join(args.data, f"train.{args.src}.gz"),
            os.path.join(args.data, f"train.{args.tgt}.gz"),
        )
    except CorpusError as error:
        sys.exit(f"train_throughput.py: error: {error}")
    keras.utils.set_random_seed(args.seed)

    start = time.perf_counter()
    try:
        tokenizers = [
            Tokenizer(train_sentencepiece(sentences, args.vocab_size, seed=args.seed))
            for sentences in (corpus.sources, corpus.targets)
        ]
    except ValueError as error:
        sys.exit(f"train_throughput.py: error: {error}")
    corpus, report = filter_pairs(
        corpus, tokenizers[0].token_lengths, tokenizers[1].token_lengths, args.max_length
    )
    log(f"sentencepiece: {time.perf_counter() - start:.1f} s; {args.src}-{args.tgt}: {report}")

    count = args.warmup + args.steps
    models, datasets, infos = {}, {}, {}
    models[BASELINE], tutorial_dataset, infos[BASELINE] = build_tutorial(args, corpus)
    datasets[BASELINE] = cache_batches(tutorial_dataset, count)
    for jit_compile in (False, True) if args.jit_compile else (False,):
        # Under XLA, the batches `training.jit_compile` trains on: the same pairs, padded
        # to their bucket's length.
        batches = cache_batches(
            make_dataset(
                corpus,
                *tokenizers,
                batch_size=args.batch_size,
                max_length=args.max_length,
                shuffle=True,
                seed=args.seed,
                pad_to_bucket=jit_compile,
            ),
            count,
        )
        for family in args.families:
            name = f"{family}{XLA_SUFFIX}" if jit_compile else family
            models[name], infos[name] = build_nmt_keras(
                args, family, corpus, tokenizers, jit_compile
            )
            datasets[name] = batches

    names = list(models)
    first_pass_seconds = {}
    for name in names:
        # Untimed: traces every batch shape once (under XLA, compiles a program for it).
        dataset, stats = datasets[name]
        start = time.perf_counter()
        models[name].fit(dataset, epochs=1, steps_per_epoch=len(stats["pairs"]), verbose=0)
        first_pass_seconds[name] = time.perf_counter() - start
        log(f"first pass {name}: {first_pass_seconds[name]:.1f} s")
    runs = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names:
            dataset, stats = datasets[name]
            run = time_fit(models[name], dataset, stats, args.warmup)
            runs[name].append(run)
            log(
                f"repeat {repeat + 1}/{args.repeats} {name}: {run['s_per_step']:.3f} s/step, "
                f"{run['pairs_per_s']:.0f} pairs/s, {run['target_tokens_per_s']:.0f} tokens/s"
            )

    if hasattr(os, "getloadavg"):
        machine["loadavg_end"] = list(os.getloadavg())
    timed = {}
    for name in names:
        stats = datasets[name][1]
        timed[name] = {
            "steps": args.steps,
            "pairs": sum(stats["pairs"][args.warmup :]),
            "target_tokens": sum(stats["target_tokens"][args.warmup :]),
        }
    summary = summarise(names, runs, timed)
    lengths = {name: datasets[name][1] for name in names}
    by_length = throughput_by_length(runs, lengths, args.warmup)
    results = {
        "benchmark": "train_throughput",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": [os.path.basename(sys.argv[0]), *(sys.argv[1:] if argv is None else argv)],
        "settings": {
            "data": os.path.normpath(args.data),
            "pair": f"{args.src}-{args.tgt}",
            "train_pairs": len(corpus),
            "steps": args.steps,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "batch_size": args.batch_size,
            "embedding_dim": args.embedding_dim,
            "units": args.units,
            "max_length": args.max_length,
            "nmt_keras": {
                "dropout": args.dropout,
                "label_smoothing": args.label_smoothing,
                "clipnorm": args.clipnorm or None,
                "learning_rate": args.learning_rate,
            },
            "tutorial": {"optimizer": "adam", "learning_rate": args.learning_rate},
        },
        "machine": machine,
        "code": code_version(),
        "models": {},
    }
    for name in names:
        stats = datasets[name][1]
        timed = slice(args.warmup, None)
        pairs = sum(stats["pairs"][timed])
        results["models"][name] = {
            "description": describe(name),
            **infos[name],
            "params": models[name].count_params(),
            "jit_compile": bool(models[name].jit_compile),
            "batches": {
                "target_tokens_per_pair": sum(stats["target_tokens"][timed]) / pairs,
                "mean_padded_target_len": statistics.mean(stats["padded_target_len"][timed]),
                "mean_padded_source_len": statistics.mean(stats["padded_source_len"][timed]),
            },
            "first_pass_seconds": first_pass_seconds[name],
            "by_target_length": by_length[name],
            "runs": runs[name],
            **summary[name],
        }
    table = markdown_table(names, results) + "\n\n" + length_table(names, results)
    print(table)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2)
            file.write("\n")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as file:
            file.write(table + "\n")


if __name__ == "__main__":
    main()
