r"""The cost of beam search: sentences per second of greedy against beam search, same input.

    python benchmarks/beam_cost.py --run runs/compare/bahdanau [--beam-sizes 1 5] \
        [--src ../shared/data/multi30k/test2016.de.gz] [--saved-model] [--reorder-memory]

The first `--sentences` non-empty lines of `--src` (default: the run's test source
file) are translated in batches of `--batch-size` by a translator per beam size, built
with `TrainedRun.translator(decoding=DecodingOptions(beam_size=..., length_penalty=...))`
(beam size 1 is greedy search and is always measured, as the reference). With
`--saved-model` each translator is first exported by `nmt_keras.export.export_run` to a
temporary directory and its `serving_default` signature (what TF Serving runs) is timed
instead of the in-process translator. With `--reorder-memory` every beam size above 1 is
also timed with the search reordering every state tensor by parent beam at every step,
the encoder memory included, as it did before issue #16 (the same outputs, more copying),
side by side with today's search that leaves the memory in place.

Every translator translates all the sentences once untimed (tracing, and recording the
output lengths), then the timed passes are interleaved: for each of `--repeats` repeats
every beam size in turn, the order reversed on every other repeat, so background load
hits every setting alike. The table gives medians over repeats; "x greedy" is the median
of the per-repeat ratios beam / greedy of sentences per second. CPU columns divide by
this process's CPU time, which other processes on a shared machine disturb far less.
Beam search stops when every hypothesis of a batch has ended, so a setting that ends
sentences earlier runs fewer decoder steps: the "out tokens/sentence" column (of the
returned best hypotheses, `</s>` included) shows whether the settings compared produced
outputs of similar length. Measure a trained run: a barely trained model's beam may
prefer the empty output. Target: beam 5 at >= 40% of greedy's sentences per second.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from script_tools import log, resolve_path  # noqa: E402

TARGET_RATIO = 0.4
TARGET_BEAM = 5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run directory written by `nmt-keras train`")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument(
        "--src", help="source sentences, one a line, .gz allowed (default: the run's test source)"
    )
    parser.add_argument("--sentences", type=int, default=64, help="first N non-empty lines")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per call")
    parser.add_argument(
        "--beam-sizes", type=int, nargs="+", default=[1, TARGET_BEAM], help="1 is greedy"
    )
    parser.add_argument("--length-penalty", type=float, default=0.6, help="GNMT alpha")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timed passes")
    parser.add_argument(
        "--saved-model",
        action="store_true",
        help="time exported SavedModels' serving_default instead of the in-process translator",
    )
    parser.add_argument(
        "--reorder-memory",
        action="store_true",
        help="also time beam search reordering the encoder memory every step (before #16)",
    )
    parser.add_argument(
        "--json",
        default=os.path.join(REPO_ROOT, "benchmarks", "results", "beam_cost.json"),
        help="write the results here",
    )
    args = parser.parse_args(argv)
    for name in ("sentences", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if min(args.beam_sizes) < 1:
        parser.error("--beam-sizes must be positive integers")
    args.beam_sizes = sorted(set(args.beam_sizes) | {1})
    if not os.path.isfile(os.path.join(args.run, "config.yaml")):
        parser.error(f"not a run directory (no config.yaml): {args.run}")
    return args


def read_sentences(path: str, count: int) -> list[str]:
    """The first `count` non-empty lines of a UTF-8 text file (gzip if it ends in .gz)."""
    opener = gzip.open if path.endswith(".gz") else open
    sentences = []
    with opener(path, "rt", encoding="utf-8") as file:
        for line in file:
            if line.strip():
                sentences.append(line.rstrip("\n"))
                if len(sentences) == count:
                    break
    if not sentences:
        raise SystemExit(f"beam_cost.py: error: no sentence in {path}")
    return sentences


class ReorderingEverything:
    """The run's model, except that a beam search reorders all of its state (before #16)."""

    def __init__(self, model):
        self._model = model

    def __getattr__(self, name):
        return getattr(self._model, name)

    def state_reorder_flags(self, state):
        """None: `beam_search` gathers every state tensor by parent beam."""
        del state
        return None


class Decoder:
    """One setting: a translator, or its exported `serving_default`, on string batches.

    Args:
        run: The loaded run.
        beam_size: Hypotheses kept per sentence (1: greedy).
        length_penalty: GNMT alpha for beam search.
        export_dir: Export here and time the SavedModel (None: the translator itself).
        reorder_memory: Reorder the encoder memory by parent beam too (in-process only).
    """

    def __init__(
        self,
        run,
        beam_size: int,
        length_penalty: float,
        export_dir: str | None,
        reorder_memory: bool = False,
    ):
        import tensorflow as tf

        from nmt_keras.decoding import GREEDY, DecodingOptions
        from nmt_keras.translator import Translator

        self.beam_size = beam_size
        self.label = f"{beam_size}, memory reordered" if reorder_memory else str(beam_size)
        decoding = GREEDY
        if beam_size > 1:
            decoding = DecodingOptions(beam_size=beam_size, length_penalty=length_penalty)
        self.translator = None
        if reorder_memory:
            self.translator = Translator(
                ReorderingEverything(run.model),
                run.source_tokenizer,
                run.target_tokenizer,
                max_source_length=run.config.data.max_length,
                max_decode_length=run.config.training.max_decode_length,
                decoding=decoding,
            )
            return
        if export_dir is None:
            self.translator = run.translator(decoding=decoding)
            return
        from nmt_keras.export import export_run

        base = os.path.join(export_dir, f"beam{beam_size}")
        self.loaded = tf.saved_model.load(export_run(run, base, decoding=decoding))
        self.signature = self.loaded.signatures["serving_default"]
        self.input_name = next(iter(self.signature.structured_input_signature[1]))

    def __call__(self, text) -> dict:
        """Translates a `[batch]` string tensor; returns the outputs (eager tensors)."""
        if self.translator is not None:
            return self.translator.translate(text)
        return self.signature(**{self.input_name: text})

    def lengths(self, batches: list[list[str]]) -> list[int]:
        """Translates every batch once; returns the output lengths (</s> included)."""
        import tensorflow as tf

        lengths = []
        for batch in batches:
            lengths += [int(length) for length in self(tf.constant(batch))["length"]]
        return lengths

    def time_pass(self, batches: list[list[str]]) -> tuple[float, float]:
        """Wall and CPU seconds of one call per batch."""
        import tensorflow as tf

        inputs = [tf.constant(batch) for batch in batches]
        wall, cpu = time.perf_counter(), time.process_time()
        for text in inputs:
            self(text)
        return time.perf_counter() - wall, time.process_time() - cpu


def measure(args, decoders: list[Decoder], sentences: list[str]) -> dict:
    """Warm-up pass, interleaved timed passes, medians and ratios to greedy."""
    batches = [
        sentences[start : start + args.batch_size]
        for start in range(0, len(sentences), args.batch_size)
    ]
    lengths = {}
    for decoder in decoders:
        log(f"warm-up: beam {decoder.label}")
        lengths[decoder.label] = decoder.lengths(batches)
    runs = {decoder.label: [] for decoder in decoders}
    for repeat in range(args.repeats):
        order = decoders if repeat % 2 == 0 else decoders[::-1]
        for decoder in order:
            wall, cpu = decoder.time_pass(batches)
            runs[decoder.label].append({"seconds": wall, "cpu_seconds": cpu})
            log(
                f"  repeat {repeat + 1}/{args.repeats} beam {decoder.label} "
                f"{len(sentences) / wall:7.1f} sentences/s"
            )
    greedy = runs["1"]
    results = {}
    for label, passes in runs.items():
        seconds = [run["seconds"] for run in passes]
        cpu_seconds = [run["cpu_seconds"] for run in passes]
        results[label] = {
            "sentences_per_s": len(sentences) / statistics.median(seconds),
            "sentences_per_cpu_s": len(sentences) / statistics.median(cpu_seconds),
            "ratio_to_greedy": statistics.median(
                reference["seconds"] / run["seconds"]
                for run, reference in zip(passes, greedy, strict=True)
            ),
            "ratio_to_greedy_cpu": statistics.median(
                reference["cpu_seconds"] / run["cpu_seconds"]
                for run, reference in zip(passes, greedy, strict=True)
            ),
            "mean_output_tokens": sum(lengths[label]) / len(sentences),
            "ms_per_batch": 1000 * statistics.median(seconds) / len(batches),
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
        }
    return results


def markdown(results: dict) -> str:
    """The table, the target line and the machine."""
    settings, machine = results["settings"], results["machine"]
    lines = [
        f"{'SavedModel `serving_default`' if settings['saved_model'] else 'Translator'}, "
        f"{settings['sentences']} sentences of `{settings['src']}` in batches of "
        f"{settings['batch_size']}, length penalty {settings['length_penalty']:g}, median of "
        f"{settings['repeats']} interleaved passes.",
        "",
        "| beam | sentences/s | x greedy | sentences/CPU s | x greedy (CPU) "
        "| out tokens/sentence | ms/batch |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for beam_size, row in results["beam_sizes"].items():
        lines.append(
            f"| {beam_size} | {row['sentences_per_s']:.1f} | {row['ratio_to_greedy']:.2f} "
            f"| {row['sentences_per_cpu_s']:.1f} | {row['ratio_to_greedy_cpu']:.2f} "
            f"| {row['mean_output_tokens']:.1f} | {row['ms_per_batch']:.1f} |"
        )
    target = results["beam_sizes"].get(str(TARGET_BEAM))
    if target:
        met = "met" if target["ratio_to_greedy"] >= TARGET_RATIO else "not met"
        lines += [
            "",
            f"Target: beam {TARGET_BEAM} at >= {TARGET_RATIO:.0%} of greedy's sentences/s: "
            f"{target['ratio_to_greedy']:.1%} ({met}).",
        ]
    lines += [
        "",
        f"Machine: {machine['cpu_model']}, {machine.get('cpus_usable', machine['cpu_count'])} "
        f"usable CPUs, load average {machine['loadavg_start'][0]:.1f} at start, "
        f"{machine.get('loadavg_end', [float('nan')])[0]:.1f} at end; TensorFlow "
        f"{machine['tensorflow']}, {machine['platform']}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from machine import machine_info

    from nmt_keras.run import load_run

    run = load_run(args.run, args.checkpoint)
    src = args.src
    if src is None:
        if run.config.data.test is None or run.config.data.test.source is None:
            log("beam_cost.py: error: the run has no test source file; pass --src")
            return 2
        src = resolve_path(run.config.data.test.source)
    sentences = read_sentences(src, args.sentences)
    results: dict = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {
            "run": os.path.abspath(args.run),
            "checkpoint": args.checkpoint,
            "src": src,
            "sentences": len(sentences),
            "batch_size": args.batch_size,
            "beam_sizes": args.beam_sizes,
            "length_penalty": args.length_penalty,
            "repeats": args.repeats,
            "saved_model": args.saved_model,
            "reorder_memory": args.reorder_memory,
        },
    }
    export_dir = tempfile.mkdtemp(prefix="nmt_beam_cost_") if args.saved_model else None
    try:
        decoders = [
            Decoder(run, beam_size, args.length_penalty, export_dir)
            for beam_size in args.beam_sizes
        ]
        if args.reorder_memory:
            decoders += [
                Decoder(run, beam_size, args.length_penalty, None, reorder_memory=True)
                for beam_size in args.beam_sizes
                if beam_size > 1
            ]
        results["beam_sizes"] = measure(args, decoders, sentences)
    finally:
        if export_dir:
            shutil.rmtree(export_dir, ignore_errors=True)
    if hasattr(os, "getloadavg"):
        results["machine"]["loadavg_end"] = list(os.getloadavg())
    print(markdown(results))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w", encoding="utf-8") as file:
        json.dump(results, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
