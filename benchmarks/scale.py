"""How training start-up, speed and memory scale with the size of the training corpus.

What it measures: for each corpus size (`--sizes`, default 29,000, 1,000,000 and 4,000,000
pairs) one `nmt_keras.training.train` run of the same tiny model (Bahdanau GRU, 32 units,
SentencePiece vocabularies of 1000, batches of 64, `--steps` steps of one epoch, no
validation BLEU) in a fresh child process, so every size has its own peak memory:

* time to first step: from the call of `train` to the end of the first training batch
  (reading the corpus, training the tokenizers, filtering, building the pipeline and the
  model, tracing the train step and running it); also from the launch of the child
  process, which adds Python start-up and the TensorFlow import;
* steady steps/s: batches per second from the end of step 20 (20% of the steps when there
  are fewer than 100) to the end of the last step;
* peak RSS: `ru_maxrss` of the child process when `train` returns (validation included).

The timings come from a Keras callback that stamps `time.perf_counter()` after every
training batch. The corpora are synthetic and generated here, never shipped: sentences of
3-30 words drawn from a Zipf-distributed vocabulary of made-up lowercase words, the target
a word-by-word substitution into a second made-up vocabulary with every two neighbouring
words swapped, so the tokenizers and the model have something real to learn. They are
deterministic for `--seed`; the smaller training corpora are prefixes of the largest, and
every size shares the same 1,000 validation pairs. Generation streams in chunks, so only
one chunk is in memory at a time and this parent process stays small (it never imports
TensorFlow); its own peak RSS is reported too, since Linux carries it into a child's
`ru_maxrss` over fork and exec.

The corpora and runs go to a new temporary folder (under `--work-dir` if given), removed
at the end unless `--keep`.

Every run trains its SentencePiece models on a random sample of `--tokenizer-sample`
pairs (default: the smallest size, i.e. the whole smallest corpus). Equal samples split
the text alike, so every size trains on the same kind of batches and steady steps/s
compares like with like; `--tokenizer-sample 100000` measures the project's default
(`tokenizer.sample_size`), whose tokenizers at 1M pairs and more learn from more text
than those of a 29k corpus and may split it differently.

The table compares every size with the smallest and checks the targets: peak RSS at the
largest size within 15% of the smallest's, time to first step within 30 s of it, and
steady steps/s no more than 10% below it (faster is within the machine's noise, not a
failure: a steady window of a few hundred steps still varies by about 10% here).

    python benchmarks/scale.py --sizes 29000,1000000,4000000 --steps 100 --json scale.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from script_tools import log  # noqa: E402

DEFAULT_SIZES = (29_000, 1_000_000, 4_000_000)
VALID_PAIRS = 1_000
CHUNK_PAIRS = 50_000
VOCABULARY_WORDS = 4_000
ZIPF_EXPONENT = 1.0
MIN_WORDS, MAX_WORDS = 3, 30
STEADY_FROM_STEP = 20
MAX_RSS_RATIO = 1.15
MAX_FIRST_STEP_DELTA_S = 30.0
STEPS_PER_S_TOLERANCE = 0.10  # The slowdown allowed.
MODEL = {
    "type": "bahdanau",
    "rnn": "gru",
    "embedding_dim": 32,
    "units": 32,
    "attention_units": 32,
    "bidirectional": False,
    "dropout": 0.0,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in DEFAULT_SIZES),
        help="comma-separated training corpus sizes, in sentence pairs",
    )
    parser.add_argument("--steps", type=int, default=100, help="training steps per size (>= 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the corpora and the runs")
    parser.add_argument(
        "--tokenizer-sample",
        type=int,
        help="tokenizer.sample_size of every run (default: the smallest size, so that every "
        "run's SentencePiece models learn from equally many pairs and split the text alike)",
    )
    parser.add_argument(
        "--work-dir", help="put the corpora and runs in a new folder here (default: the temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the corpora and runs")
    parser.add_argument("--json", help="write every figure to this JSON file")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # Internal: one size's run folder.
    parser.add_argument("--launched-at", type=float, help=argparse.SUPPRESS)  # time.time()
    args = parser.parse_args(argv)
    try:
        sizes = sorted({int(size) for size in args.sizes.split(",") if size.strip()})
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers. Received: {args.sizes!r}")
    if not sizes or sizes[0] < 1:
        parser.error(f"--sizes must be positive. Received: {args.sizes!r}")
    args.sizes = sizes
    if args.tokenizer_sample is None:
        args.tokenizer_sample = sizes[0]
    if args.steps < 2:
        parser.error("--steps must be >= 2 (the steady rate needs steps after the first)")
    return args


def make_vocabularies(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Two vocabularies of made-up lowercase words, the shortest words first.

    The source words are consonant-vowel syllables, the target words vowel-consonant ones,
    so the two languages look different. Target word `i` translates source word `i`; with
    the Zipf ranks following the list order, frequent words are short, as in real text.
    """
    consonants, vowels = list("bcdfghjklmnprstvwz"), list("aeiou")

    def words(syllable) -> list[str]:
        found: dict[str, None] = {}
        while len(found) < VOCABULARY_WORDS:
            count = int(rng.integers(1, 4))
            found.setdefault("".join(syllable() for _ in range(count)), None)
        return sorted(found, key=len)

    def pick(letters: list[str]) -> str:
        return letters[int(rng.integers(len(letters)))]

    source = words(lambda: pick(consonants) + pick(vowels))
    target = words(lambda: pick(vowels) + pick(consonants))
    return source, target


class WordTable:
    """A vocabulary as one byte array, every word followed by a space, for fast rendering."""

    def __init__(self, words: list[str]):
        encoded = [word.encode("utf-8") + b" " for word in words]
        self.bytes = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        self.lengths = np.array([len(word) for word in encoded], dtype=np.int64)
        self.offsets = np.cumsum(self.lengths) - self.lengths

    def render(self, tokens: np.ndarray, sentence_lengths: np.ndarray) -> bytes:
        """The sentences as UTF-8 lines: `tokens` (word ids) cut by `sentence_lengths`."""
        lengths = self.lengths[tokens]
        starts = np.cumsum(lengths) - lengths
        gather = np.repeat(self.offsets[tokens] - starts, lengths)
        gather += np.arange(len(gather))
        text = self.bytes[gather]
        last_tokens = np.cumsum(sentence_lengths) - 1
        text[starts[last_tokens] + lengths[last_tokens] - 1] = ord("\n")
        return text.tobytes()


def swap_neighbours(sentence_lengths: np.ndarray) -> np.ndarray:
    """The index that swaps words 0 and 1, 2 and 3, ... of every sentence (an odd last stays)."""
    starts = np.repeat(np.cumsum(sentence_lengths) - sentence_lengths, sentence_lengths)
    position = np.arange(len(starts)) - starts
    partner = position ^ 1
    partner = np.where(partner < np.repeat(sentence_lengths, sentence_lengths), partner, position)
    return starts + partner


class PairGenerator:
    """Synthetic sentence pairs, one chunk at a time, deterministic for a seed."""

    def __init__(self, seed: int):
        source, target = make_vocabularies(np.random.default_rng([seed, 0]))
        self.source, self.target = WordTable(source), WordTable(target)
        ranks = np.arange(1, VOCABULARY_WORDS + 1, dtype=np.float64)
        weights = ranks**-ZIPF_EXPONENT
        self.cumulative = np.cumsum(weights / weights.sum())
        self.seed = seed

    def chunk(self, rng: np.random.Generator, pairs: int) -> tuple[bytes, bytes]:
        """`pairs` sentence pairs as the bytes of the source and the target lines."""
        lengths = rng.integers(MIN_WORDS, MAX_WORDS + 1, size=pairs)
        tokens = np.searchsorted(self.cumulative, rng.random(int(lengths.sum())), side="right")
        tokens = np.minimum(tokens, VOCABULARY_WORDS - 1)  # cumulative[-1] may round below 1.
        translated = tokens[swap_neighbours(lengths)]
        return self.source.render(tokens, lengths), self.target.render(translated, lengths)

    def write_train(self, folders: dict[int, str]) -> None:
        """Writes `train.src`/`train.tgt` of `pairs` pairs into each `{pairs: folder}`.

        One stream of fixed-size chunks feeds every file, so each corpus is a prefix of
        the larger ones and does not depend on which other sizes are written.
        """
        rng = np.random.default_rng([self.seed, 1])
        files = {
            pairs: (open(os.path.join(folder, "train.src"), "wb"),
                    open(os.path.join(folder, "train.tgt"), "wb"))
            for pairs, folder in folders.items()
        }  # fmt: skip
        try:
            for first in range(0, max(folders), CHUNK_PAIRS):
                source, target = self.chunk(rng, CHUNK_PAIRS)
                for pairs, (source_file, target_file) in files.items():
                    if first < pairs:
                        source_file.write(_first_lines(source, pairs - first))
                        target_file.write(_first_lines(target, pairs - first))
        finally:
            for source_file, target_file in files.values():
                source_file.close()
                target_file.close()

    def write_valid(self, folders: list[str]) -> None:
        """Writes the same `VALID_PAIRS` validation pairs into every folder."""
        source, target = self.chunk(np.random.default_rng([self.seed, 2]), VALID_PAIRS)
        for folder in folders:
            for name, text in (("valid.src", source), ("valid.tgt", target)):
                with open(os.path.join(folder, name), "wb") as file:
                    file.write(text)


def _first_lines(text: bytes, count: int) -> bytes:
    """The first `count` lines of `text` (all of it when it has fewer)."""
    ends = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == ord("\n"))
    return text if count >= len(ends) else text[: ends[count - 1] + 1]


def generate(work_dir: str, sizes: list[int], seed: int) -> dict[int, str]:
    """Writes a corpus folder per size under `work_dir`; returns `{size: folder}`."""
    folders = {size: os.path.join(work_dir, f"pairs-{size}") for size in sizes}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    generator = PairGenerator(seed)
    generator.write_train(folders)
    generator.write_valid(list(folders.values()))
    return folders


def config_values(folder: str, steps: int, seed: int, tokenizer_sample: int) -> dict:
    """The run's config as a dict: the same tiny model at every size, only existing keys."""

    def split(name: str) -> dict:
        return {
            "source": os.path.join(folder, f"{name}.src"),
            "target": os.path.join(folder, f"{name}.tgt"),
        }

    return {
        "name": "scale",
        "seed": seed,
        "model": MODEL,
        "tokenizer": {"vocab_size": 1000, "sample_size": tokenizer_sample},
        "data": {
            "train": split("train"),
            "valid": split("valid"),
            "max_length": 64,
            "batch_size": 64,
        },
        "training": {
            "epochs": 1,
            "steps_per_epoch": steps,
            "bleu_samples": 0,
            "early_stopping_patience": None,
        },
    }


def make_probe():
    """A Keras callback whose `ends` get `time.perf_counter()` after every training batch.

    Defining `on_train_batch_end` also makes Keras call it synchronously, so each stamp is
    taken after its step has finished.
    """
    import keras

    class StepProbe(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            del batch, logs
            self.ends.append(time.perf_counter())

    return StepProbe()


def steady_from(steps: int) -> int:
    """The step whose end starts the steady window: 20, or 20% of shorter runs."""
    return max(1, min(STEADY_FROM_STEP, steps // 5))


def run_child(
    folder: str, steps: int, seed: int, tokenizer_sample: int, launched_at: float
) -> None:
    """Trains on `folder`'s corpus in this (fresh) process; writes `folder/result.json`."""
    from machine import machine_info

    from nmt_keras.config import Config
    from nmt_keras.training import train

    machine = machine_info()  # Imports TensorFlow and initialises its devices.
    config = Config.from_dict(config_values(folder, steps, seed, tokenizer_sample))
    probe = make_probe()
    called_wall, called = time.time(), time.perf_counter()
    train(config, os.path.join(folder, "run"), callbacks=[probe])
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ends = probe.ends
    if len(ends) != steps:
        raise RuntimeError(f"Expected {steps} training steps. Received: {len(ends)}")
    first = steady_from(steps)
    result = {
        "machine": machine,
        "loadavg_start": machine["loadavg_start"],
        "startup_s": called_wall - launched_at,
        "first_step_s": ends[0] - called,
        "first_step_from_launch_s": called_wall - launched_at + ends[0] - called,
        "steady_from_step": first,
        "steady_steps": steps - first,
        "steady_steps_per_s": (steps - first) / (ends[-1] - ends[first - 1]),
        "train_s": ends[-1] - called,
        "peak_rss_mib": peak_rss_mib,
        "loadavg_end": list(os.getloadavg()),
    }
    with open(os.path.join(folder, "result.json"), "w", encoding="utf-8") as file:
        json.dump(result, file, indent=2)


def measure(folder: str, steps: int, seed: int, tokenizer_sample: int) -> dict:
    """Runs `run_child` on `folder` in a fresh Python process and returns its figures.

    The child's stdout (Keras' epoch log) goes to stderr, so stdout keeps only the table.

    Raises:
        SystemExit: the child failed (its traceback is on stderr).
    """
    command = [
        sys.executable, os.path.abspath(__file__), "--child", folder,
        "--steps", str(steps), "--seed", str(seed), "--tokenizer-sample", str(tokenizer_sample),
        "--launched-at", repr(time.time()),
    ]  # fmt: skip
    completed = subprocess.run(command, stdout=sys.stderr, check=False)
    if completed.returncode:
        sys.exit(f"scale.py: error: the run on {folder} failed (exit {completed.returncode})")
    with open(os.path.join(folder, "result.json"), encoding="utf-8") as file:
        return json.load(file)


def compare(sizes: list[int], runs: dict[int, dict]) -> list[dict]:
    """Adds the ratios to the smallest size to every run; returns the targets checked.

    Each target compares the largest size with the smallest: `value` is the ratio or the
    delta its `description` names, `met` whether it holds.
    """
    base = runs[sizes[0]]
    for run in runs.values():
        run["rss_ratio"] = run["peak_rss_mib"] / base["peak_rss_mib"]
        run["first_step_delta_s"] = run["first_step_s"] - base["first_step_s"]
        run["steps_per_s_ratio"] = run["steady_steps_per_s"] / base["steady_steps_per_s"]
    largest = runs[sizes[-1]]
    against = f"at {sizes[-1]:,} pairs vs {sizes[0]:,}"
    rss, delta, speed = (
        largest[key] for key in ("rss_ratio", "first_step_delta_s", "steps_per_s_ratio")
    )
    checks = [
        ("peak_rss", f"peak RSS ratio <= {MAX_RSS_RATIO}", rss, rss <= MAX_RSS_RATIO),
        (
            "time_to_first_step",
            f"time to first step delta <= {MAX_FIRST_STEP_DELTA_S:.0f} s",
            delta,
            delta <= MAX_FIRST_STEP_DELTA_S,
        ),
        (
            "steady_steps_per_s",
            f"steady steps/s ratio >= {1 - STEPS_PER_S_TOLERANCE:.2f} (no slowdown)",
            speed,
            speed >= 1 - STEPS_PER_S_TOLERANCE,
        ),
    ]
    return [
        {"name": name, "description": f"{text} {against}", "value": value, "met": bool(met)}
        for name, text, value, met in checks
    ]


def markdown(sizes: list[int], runs: dict[int, dict], targets: list[dict]) -> str:
    """The runs as a markdown table, then the targets and whether each is met."""
    lines = [
        "| pairs | train files (MiB) | first step (s) | from launch (s) | steps/s "
        "| peak RSS (MiB) | RSS x smallest | first step delta (s) | steps/s x smallest "
        "| load avg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        run = runs[size]
        lines.append(
            f"| {size:,} | {run['train_bytes'] / 2**20:.1f} | {run['first_step_s']:.1f} "
            f"| {run['first_step_from_launch_s']:.1f} | {run['steady_steps_per_s']:.1f} "
            f"| {run['peak_rss_mib']:.0f} | {run['rss_ratio']:.2f} "
            f"| {run['first_step_delta_s']:+.1f} | {run['steps_per_s_ratio']:.2f} "
            f"| {run['loadavg_start'][0]:.1f} |"
        )
    lines.append("")
    for target in targets:
        verdict = "met" if target["met"] else "NOT met"
        lines.append(f"- {target['description']}: {target['value']:.2f}, {verdict}")
    return "\n".join(lines)


def corpus_bytes(folder: str) -> dict:
    """The sizes in bytes of the corpus files in `folder`."""
    names = ("train.src", "train.tgt", "valid.src", "valid.tgt")
    return {name: os.path.getsize(os.path.join(folder, name)) for name in names}


def benchmark(args: argparse.Namespace, work_dir: str, command: list[str]) -> dict:
    """Generates the corpora under `work_dir`, measures every size, returns all figures."""
    start = time.perf_counter()
    folders = generate(work_dir, args.sizes, args.seed)
    generation_s = time.perf_counter() - start
    log(f"generated {max(args.sizes):,} pairs in {generation_s:.1f} s under {work_dir}")
    runs = {}
    for size in args.sizes:
        log(f"training on {size:,} pairs")
        files = corpus_bytes(folders[size])
        runs[size] = {"pairs": size, "files": files}
        runs[size]["train_bytes"] = files["train.src"] + files["train.tgt"]
        runs[size].update(measure(folders[size], args.steps, args.seed, args.tokenizer_sample))
        log(
            f"{size:,} pairs: first step {runs[size]['first_step_s']:.1f} s, "
            f"{runs[size]['steady_steps_per_s']:.2f} steps/s, "
            f"peak RSS {runs[size]['peak_rss_mib']:.0f} MiB"
        )
    targets = compare(args.sizes, runs)
    machines = [run.pop("machine") for run in runs.values()]
    machine = machines[0]  # Each run keeps its own load averages.
    machine["loadavg_end"] = list(os.getloadavg())
    return {
        "benchmark": "scale",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "settings": {
            "sizes": args.sizes,
            "steps": args.steps,
            "seed": args.seed,
            "valid_pairs": VALID_PAIRS,
            "words_per_sentence": [MIN_WORDS, MAX_WORDS],
            "vocabulary_words": VOCABULARY_WORDS,
            "zipf_exponent": ZIPF_EXPONENT,
            "config": config_values("pairs-<size>", args.steps, args.seed, args.tokenizer_sample),
        },
        "machine": machine,
        "generation_s": generation_s,
        "parent_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "runs": {str(size): runs[size] for size in args.sizes},
        "targets": targets,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        run_child(args.child, args.steps, args.seed, args.tokenizer_sample, args.launched_at)
        return
    command = [os.path.basename(sys.argv[0]), *(sys.argv[1:] if argv is None else argv)]
    if args.work_dir:
        os.makedirs(args.work_dir, exist_ok=True)
    work_dir = tempfile.mkdtemp(prefix="nmt-scale-", dir=args.work_dir)
    try:
        results = benchmark(args, work_dir, command)
    finally:
        if args.keep:
            log(f"kept the corpora and runs in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    runs = {int(size): run for size, run in results["runs"].items()}
    print(markdown(args.sizes, runs, results["targets"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2)
            file.write("\n")


if __name__ == "__main__":
    main()
