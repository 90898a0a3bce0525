"""Serving speed: our exported SavedModel against the TF tutorial's, and over gRPC.

    python benchmarks/serving.py --run runs/demo [--saved-model saved_models/demo/1] \
        [--json serving.json] [--markdown serving.md]

Part A, direct SavedModel throughput. Both SavedModels are loaded in this process and
their `serving_default` signatures (what TF Serving runs) are called on the same batches
of real source sentences (the run's test split, else its validation split), at batch
sizes 1, 16 and 64:

* ours: `nmt_keras.export.export_run` of the run (`--saved-model`, or exported to a
  temporary directory): SentencePiece in the graph, greedy search in a `tf.while_loop`
  that stops when every row has emitted `</s>`, at most
  `min(training.max_decode_length, 2 * src_len + 10)` tokens;
* tutorial: the `Export` module of TensorFlow's "Neural machine translation with
  attention" tutorial (`tutorial_export.py`: its dynamic `translate` loop, greedy,
  stopping when every row has emitted `[END]`), at the same size: `UNITS` = the run's
  `model.units` (the tutorial ties embedding, GRU and attention sizes to it) and
  `max_tokens` = the run's `tokenizer.vocab_size` words per language.

Fairness of the decode length. Greedy decoding costs one loop step per generated token of
the longest row of a batch, so a model that never emits its end token runs to the cap and
looks slow for the wrong reason. Both models are therefore trained briefly on the same
corpus (the run as it is, e.g. the demo's 300 steps of batch 64; the tutorial model
`--tutorial-steps` steps of batch 64, 300 by default) and both stop at the same cap
(`training.max_decode_length`, 40 for the demo) with their own end tokens. The tables report
what each model actually produced: mean output tokens per sentence (end token included;
for the tutorial counted as words + 1, capped) and the loop steps each batch size needed
(the longest row of each batch), so "ms per loop step" compares the cost of one decoder
step independently of how long the outputs were. Sentences per second is the headline.

Repetitions are interleaved (for every repeat and batch size, both models back to back,
alternating which goes first) and the table shows medians; the ratio is the median of
the per-repeat ratios ours / tutorial. CPU-seconds columns divide by this process's CPU
time instead of wall time, which other processes on a shared machine disturb far less.

Part B, gRPC. `nmt-keras serve` (the local TF-Serving-compatible server, which loads the
version through TensorFlow's C++ session loader as TF Serving does) is started as a
subprocess on a free port (`--server inprocess` runs `nmt_keras.serving.start_server` in
this process instead), and clients (`nmt_keras.serving.Client`, one per thread) send
one short sentence per request (test sentences of at most `--short-words` words, in
turn). It reports requests/s and latency p50/p99 at each `--concurrency` level (1, 4,
16 and 64 clients), each level bounded by `--grpc-requests` requests and
`--grpc-seconds` seconds. With `--batching both` (the default) the server runs twice,
back to back: without server-side batching, then with `--enable_batching
--batching_parameters_file` (`--batching-parameters`, the deployment file by default),
and a table gives the batched / unbatched throughput ratio at each level. A "direct" row
gives the same sentences through the SavedModel in this process, to separate the
model's time from the server's and gRPC's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import queue
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from machine import machine_info  # noqa: E402  (benchmarks/ is the script's directory)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from script_tools import log, resolve_path  # noqa: E402

OURS = "ours"
TUTORIAL = "tutorial"
SERVER_LINE = re.compile(r"Running gRPC ModelServer at (\S+):(\d+)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run directory written by `nmt-keras train`")
    parser.add_argument(
        "--saved-model",
        help="our exported version directory (BASE/<version>); default: export --run to a "
        "temporary directory",
    )
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--markdown", help="write the tables to this markdown file")
    parser.add_argument("--batch-sizes", default="1,16,64", help="comma-separated")
    parser.add_argument("--sentences", type=int, default=128, help="sentences per timed pass")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved passes per model")
    parser.add_argument(
        "--tutorial-steps", type=int, default=300, help="training steps of the tutorial model"
    )
    parser.add_argument(
        "--tutorial-dir",
        help="where the tutorial's SavedModel is cached: reused when it exists, else "
        "trained and saved there (default: a temporary directory)",
    )
    parser.add_argument(
        "--max-length",
        type=int,
        help="decode cap of the tutorial model (default: the run's training.max_decode_length, "
        "which also caps ours)",
    )
    parser.add_argument("--skip-direct", action="store_true", help="skip part A")
    parser.add_argument("--skip-grpc", action="store_true", help="skip part B")
    parser.add_argument("--concurrency", default="1,4,16,64", help="gRPC client threads per level")
    parser.add_argument(
        "--batching",
        choices=("off", "on", "both"),
        default="both",
        help="server-side batching in part B: off, on, or both runs back to back",
    )
    parser.add_argument(
        "--batching-parameters",
        default=os.path.join(REPO_ROOT, "serving", "batching_parameters.txt"),
        help="the BatchingParameters file of the batched server",
    )
    parser.add_argument("--grpc-requests", type=int, default=300, help="requests per level (max)")
    parser.add_argument("--grpc-seconds", type=float, default=45.0, help="seconds per level (max)")
    parser.add_argument("--grpc-warmup", type=int, default=10, help="untimed requests first")
    parser.add_argument("--short-words", type=int, default=6, help="words in a 'short' sentence")
    parser.add_argument("--server", choices=("subprocess", "inprocess"), default="subprocess")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        args.batch_sizes = [int(value) for value in args.batch_sizes.split(",") if value.strip()]
        args.concurrency = [int(value) for value in args.concurrency.split(",") if value.strip()]
    except ValueError as error:
        parser.error(f"expected comma-separated integers: {error}")
    for name in ("sentences", "repeats", "grpc_requests", "short_words"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if min(args.batch_sizes + args.concurrency, default=0) < 1:
        parser.error("--batch-sizes and --concurrency must be positive integers")
    if args.tutorial_steps < 0:
        parser.error("--tutorial-steps must be >= 0")
    if not os.path.isfile(os.path.join(args.run, "config.yaml")):
        parser.error(f"not a run directory (no config.yaml): {args.run}")
    return args


# ----------------------------------------------------------------------------- data


def read_split(files) -> tuple[list[str], list[str]]:
    """Source and target sentences of a `CorpusFiles` split."""
    from nmt_keras.data.corpus import read_parallel, read_tsv

    if files.tsv is not None:
        corpus = read_tsv(resolve_path(files.tsv))
    else:
        corpus = read_parallel(resolve_path(files.source), resolve_path(files.target))
    return list(corpus.sources), list(corpus.targets)


def benchmark_sentences(config, count: int, seed: int) -> tuple[list[str], str]:
    """`count` non-empty source sentences sampled from the test (else validation) split."""
    split, name = (config.data.test, "test") if config.data.test else (config.data.valid, "valid")
    sources, _ = read_split(split)
    sources = [sentence for sentence in sources if sentence.strip()]
    rng = random.Random(seed)
    if count <= len(sources):
        return rng.sample(sources, count), name
    return [rng.choice(sources) for _ in range(count)], name


def short_sentences(config, max_words: int, seed: int) -> list[str]:
    """Test (else validation) sentences of at most `max_words` words, shuffled."""
    split = config.data.test or config.data.valid
    sources, _ = read_split(split)
    short = sorted({s for s in sources if s.strip() and len(s.split()) <= max_words})
    random.Random(seed).shuffle(short)
    if not short:
        raise SystemExit(f"serving.py: error: no test sentence has <= {max_words} words")
    return short


# ----------------------------------------------------------------------------- models


def saved_model_parameters(version_dir: str) -> int:
    """Model weights in a SavedModel's checkpoint (optimizer state and counters excluded)."""
    prefix = os.path.join(version_dir, "variables", "variables")
    total = 0
    for name, shape in tf.train.list_variables(prefix):
        if "optimizer" in name or name.startswith("_CHECKPOINTABLE") or not shape:
            continue
        total += int(np.prod(shape))
    return total


def prepare_ours(args, config) -> tuple[str, str | None]:
    """Our version directory: `--saved-model`, else a fresh export of the run.

    Returns:
        The version directory and the temporary directory to delete afterwards (or None).
    """
    if args.saved_model:
        path = args.saved_model
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            from nmt_keras.export import list_versions

            versions = list_versions(path)
            if not versions:
                raise SystemExit(f"serving.py: error: no SavedModel in {path}")
            path = os.path.join(path, str(max(versions)))
        return path, None
    from nmt_keras.export import export_run
    from nmt_keras.run import load_run

    temporary = tempfile.mkdtemp(prefix="nmt_serving_bench_")
    log(f"exporting {args.run} to {temporary} ...")
    start = time.perf_counter()
    version_dir = export_run(load_run(args.run), os.path.join(temporary, "demo"))
    log(f"  exported {version_dir} in {time.perf_counter() - start:.0f} s")
    return version_dir, temporary


def prepare_tutorial(args, config, max_length: int) -> tuple[str, dict, str | None]:
    """The tutorial's SavedModel: cached in `--tutorial-dir`, else trained and exported.

    Returns:
        Its directory, a description (size, training) and a temporary directory to delete
        afterwards (or None).
    """
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import tutorial_export

    temporary = None
    directory = args.tutorial_dir
    if directory is None:
        temporary = tempfile.mkdtemp(prefix="nmt_serving_tutorial_")
        directory = os.path.join(temporary, "translator")
    info_path = os.path.join(directory, "assets.extra", "benchmark_info.json")
    wanted = {
        "units": config.model.units,
        "vocab_size": config.tokenizer.vocab_size,
        "max_length": max_length,
        "train_steps": args.tutorial_steps,
    }
    if os.path.isfile(info_path):
        with open(info_path, encoding="utf-8") as file:
            info = json.load(file)
        if all(info.get(key) == value for key, value in wanted.items()):
            log(f"reusing the tutorial model in {directory}")
            return directory, info, temporary
        raise SystemExit(
            f"serving.py: error: {directory} holds a tutorial model built with "
            f"{ {key: info.get(key) for key in wanted} }, not {wanted}; remove it or pick "
            "another --tutorial-dir"
        )
    sources, targets = read_split(config.data.train)
    log(
        f"training the tutorial model: units={config.model.units}, "
        f"max_tokens={config.tokenizer.vocab_size}, {args.tutorial_steps} steps of 64 "
        f"on {len(sources)} pairs ..."
    )
    start = time.perf_counter()
    warnings.filterwarnings("ignore", message=".*does not support masking.*")
    model, context_processor, target_processor = tutorial_export.train_tutorial(
        sources,
        targets,
        units=config.model.units,
        vocab_size=config.tokenizer.vocab_size,
        steps=args.tutorial_steps,
        seed=args.seed,
    )
    train_seconds = time.perf_counter() - start
    history = model.history.history if model.history is not None else {}
    translator = tutorial_export.TutorialTranslator(
        model, context_processor, target_processor, max_length=max_length
    )
    tutorial_export.export_tutorial(translator, directory)
    info = {
        **wanted,
        "parameters": int(model.count_params()),
        "vocab": [context_processor.vocabulary_size(), target_processor.vocabulary_size()],
        "train_seconds": train_seconds,
        "final_loss": float(history["loss"][-1]) if history.get("loss") else None,
        "final_masked_acc": (
            float(history["masked_acc"][-1]) if history.get("masked_acc") else None
        ),
    }
    os.makedirs(os.path.dirname(info_path), exist_ok=True)
    with open(info_path, "w", encoding="utf-8") as file:
        json.dump(info, file, indent=2)
    log(f"  trained and exported in {train_seconds:.0f} s: {directory}")
    return directory, info, temporary


class Model:
    """A loaded `serving_default` signature with a uniform call and output length.

    Args:
        name: OURS or TUTORIAL.
        path: The SavedModel directory.
        max_length: The tutorial's decode cap (to turn its word counts into token counts).
    """

    def __init__(self, name: str, path: str, max_length: int):
        self.name = name
        self.path = path
        self.max_length = max_length
        self.loaded = tf.saved_model.load(path)
        self.signature = self.loaded.signatures["serving_default"]
        self.input_name = next(iter(self.signature.structured_input_signature[1]))

    def __call__(self, sentences: list[str]) -> dict:
        """Runs the signature on one batch; returns its outputs (eager tensors)."""
        return self.signature(**{self.input_name: tf.constant(sentences)})

    def translate(self, sentences: list[str]) -> tuple[list[str], list[int]]:
        """Translations and output lengths (tokens, end token included)."""
        outputs = self(sentences)
        if self.name == OURS:
            texts = [text.decode("utf-8") for text in outputs["translation"].numpy()]
            return texts, [int(length) for length in outputs["length"].numpy()]
        texts = [text.decode("utf-8") for text in next(iter(outputs.values())).numpy()]
        # The tutorial returns text only: words + [END], or max_length when it ran out.
        return texts, [min(len(text.split()) + 1, self.max_length) for text in texts]


# ----------------------------------------------------------------------------- part A


def batches_of(sentences: list[str], size: int) -> list[list[str]]:
    """Consecutive batches of `size` (the last one may be smaller)."""
    return [sentences[start : start + size] for start in range(0, len(sentences), size)]


def time_pass(model: Model, batches: list[list[str]]) -> tuple[float, float]:
    """Wall and CPU seconds of one call per batch."""
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        model(batch)
    return time.perf_counter() - wall, time.process_time() - cpu


def run_direct(args, models: dict[str, Model], sentences: list[str]) -> dict:
    """Part A: interleaved timed passes at every batch size; medians and ratios."""
    lengths, samples = {}, {}
    for name, model in models.items():
        # One untimed pass at the largest batch: warms up and records the output lengths.
        texts, lengths[name] = [], []
        for batch in batches_of(sentences, max(args.batch_sizes)):
            batch_texts, batch_lengths = model.translate(batch)
            texts += batch_texts
            lengths[name] += batch_lengths
        samples[name] = list(zip(sentences[:3], texts[:3], strict=True))
    runs = {(name, size): [] for name in models for size in args.batch_sizes}
    for size in args.batch_sizes:
        for model in models.values():
            model(batches_of(sentences, size)[0])  # warm up this batch shape
    names = list(models)
    for repeat in range(args.repeats):
        for size in args.batch_sizes:
            batches = batches_of(sentences, size)
            order = names if repeat % 2 == 0 else names[::-1]
            for name in order:
                wall, cpu = time_pass(models[name], batches)
                runs[name, size].append({"seconds": wall, "cpu_seconds": cpu})
                log(
                    f"  repeat {repeat + 1}/{args.repeats} batch {size:3d} {name:8s} "
                    f"{len(sentences) / wall:7.1f} sentences/s"
                )
    results: dict = {"batch_sizes": {}, "samples": samples}
    for size in args.batch_sizes:
        row = {}
        for name in models:
            per_batch = batches_of(lengths[name], size)
            loop_steps = sum(max(batch) for batch in per_batch)
            tokens = sum(lengths[name])
            seconds = [run["seconds"] for run in runs[name, size]]
            cpu_seconds = [run["cpu_seconds"] for run in runs[name, size]]
            median = statistics.median(seconds)
            row[name] = {
                "sentences_per_s": len(sentences) / median,
                "sentences_per_cpu_s": len(sentences) / statistics.median(cpu_seconds),
                "output_tokens_per_s": tokens / median,
                "mean_output_tokens": tokens / len(sentences),
                "capped_fraction": sum(
                    length >= models[name].max_length for length in lengths[name]
                )
                / len(sentences),
                "loop_steps": loop_steps,
                "ms_per_loop_step": 1000 * median / loop_steps,
                "ms_per_batch": 1000 * median / len(per_batch),
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
            }
        if OURS in row and TUTORIAL in row:
            per_repeat = [
                theirs["seconds"] / mine["seconds"]
                for mine, theirs in zip(runs[OURS, size], runs[TUTORIAL, size], strict=True)
            ]
            per_repeat_cpu = [
                theirs["cpu_seconds"] / mine["cpu_seconds"]
                for mine, theirs in zip(runs[OURS, size], runs[TUTORIAL, size], strict=True)
            ]
            row["ratio_ours_vs_tutorial"] = {
                "sentences_per_s": statistics.median(per_repeat),
                "sentences_per_s_per_repeat": per_repeat,
                "sentences_per_cpu_s": statistics.median(per_repeat_cpu),
                "ms_per_loop_step": (
                    row[TUTORIAL]["ms_per_loop_step"] / row[OURS]["ms_per_loop_step"]
                ),
            }
        results["batch_sizes"][str(size)] = row
    return results


# ----------------------------------------------------------------------------- part B


class ServerProcess:
    """`nmt-keras serve` in a subprocess on a free port, or `start_server` in-process."""

    def __init__(
        self, base_path: str, mode: str, log_path: str, batching_parameters: str | None = None
    ):
        self.mode = mode
        self.log_path = log_path
        self.process = None
        self.server = None
        if mode == "inprocess":
            from nmt_keras.serving import AUTO_PORT, ServerOptions, start_server

            self.server = start_server(
                ServerOptions(
                    port=AUTO_PORT,
                    model_name="nmt",
                    model_base_path=base_path,
                    enable_batching=batching_parameters is not None,
                    batching_parameters_file=batching_parameters,
                )
            )
            self.port = self.server.grpc_port
            return
        command = [sys.executable, "-m", "nmt_keras.cli", "serve", "--port", "0"]
        command += ["--model_name", "nmt", "--model_base_path", base_path]
        if batching_parameters is not None:
            command += ["--enable_batching", "--batching_parameters_file", batching_parameters]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        self._stderr = open(log_path, "w", encoding="utf-8")  # noqa: SIM115
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump():
            for line in self.process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + 300
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                raise SystemExit(f"serving.py: error: the server did not start; see {log_path}")
            match = SERVER_LINE.search(line)
            if match:
                self.port = int(match.group(2))
                return

    def stop(self) -> None:
        """SIGTERM (the server drains and exits), then SIGKILL after 30 s."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None:
            self._stderr.close()
            self.process = None


def percentiles(latencies: list[float]) -> dict:
    """p50/p90/p99/mean/max in milliseconds."""
    values = np.asarray(latencies) * 1000
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p90_ms": float(np.percentile(values, 90)),
        "p99_ms": float(np.percentile(values, 99)),
        "mean_ms": float(values.mean()),
        "max_ms": float(values.max()),
    }


def load_level(target: str, clients: int, sentences: list[str], args) -> dict:
    """`clients` threads, each with its own Client, one sentence per request."""
    from nmt_keras.serving import Client

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(args.grpc_requests))
    ready = threading.Barrier(clients + 1)
    deadline = [0.0]

    def worker(index: int) -> None:
        with Client(target, "nmt", timeout=60) as client:
            for warm in range(2):  # metadata check and a first Predict on this channel
                client.translate([sentences[(index + warm) % len(sentences)]])
            ready.wait()
            while time.perf_counter() < deadline[0]:
                with lock:
                    number = next(counter, None)
                if number is None:
                    return
                sentence = sentences[number % len(sentences)]
                start = time.perf_counter()
                try:
                    client.translate([sentence])
                except Exception as error:  # noqa: BLE001  (recorded and reported)
                    with lock:
                        errors.append(str(error))
                    continue
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + 3600  # set properly once everyone is warm
    ready.wait()
    start = time.perf_counter()
    deadline[0] = start + args.grpc_seconds
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    result = {
        "clients": clients,
        "requests": len(latencies),
        "errors": len(errors),
        "seconds": wall,
        "requests_per_s": len(latencies) / wall,
        **percentiles(latencies),
    }
    if errors:
        result["first_error"] = errors[0]
    return result


def direct_latency(model: Model, sentences: list[str], count: int) -> dict:
    """One short sentence per call of the SavedModel in this process."""
    for sentence in sentences[:5]:
        model([sentence])
    latencies = []
    for number in range(count):
        start = time.perf_counter()
        model([sentences[number % len(sentences)]])
        latencies.append(time.perf_counter() - start)
    return {"clients": 1, "requests": count, **percentiles(latencies)}


def run_grpc(
    args,
    version_dir: str,
    ours: Model | None,
    sentences: list[str],
    results_base: list,
    batching_parameters: str | None = None,
) -> dict:
    """Part B: start a server on our SavedModel and measure each concurrency level.

    The temporary base directory it creates is appended to `results_base` (for cleanup).
    `batching_parameters` turns server-side batching on with that file.
    """
    # Serve exactly `version_dir`: a base path holding only it, as version 1.
    base = tempfile.mkdtemp(prefix="nmt_serving_base_")
    results_base.append(base)
    os.symlink(os.path.abspath(version_dir), os.path.join(base, "1"))
    results: dict = {"server": args.server, "batching_parameters": batching_parameters}
    results["levels"] = []
    log_path = os.path.join(base, "server.log")
    batching = f"batching with {batching_parameters}" if batching_parameters else "no batching"
    log(f"starting the local server ({args.server}, {batching}) on {version_dir} ...")
    start = time.perf_counter()
    server = ServerProcess(base, args.server, log_path, batching_parameters)
    results["startup_seconds"] = time.perf_counter() - start
    target = f"127.0.0.1:{server.port}"
    log(f"  serving on {target} after {results['startup_seconds']:.0f} s")
    try:
        from nmt_keras.serving import Client

        with Client(target, "nmt", timeout=60) as client:
            for number in range(args.grpc_warmup):
                client.translate([sentences[number % len(sentences)]])
            results["sample"] = [sentences[0], client.translate([sentences[0]])[0].text]
        for clients in args.concurrency:
            level = load_level(target, clients, sentences, args)
            log(
                f"  {clients:2d} clients: {level['requests']} requests, "
                f"{level['requests_per_s']:.1f} req/s, p50 {level['p50_ms']:.1f} ms, "
                f"p99 {level['p99_ms']:.1f} ms, {level['errors']} errors"
            )
            results["levels"].append(level)
    finally:
        server.stop()
    if ours is not None:
        results["direct"] = direct_latency(ours, sentences, min(args.grpc_requests, 200))
        log(f"  direct SavedModel call: p50 {results['direct']['p50_ms']:.1f} ms")
    return results


# ----------------------------------------------------------------------------- report


def grpc_table(results: dict, key: str) -> list[str]:
    """The markdown lines of one part-B run (`grpc` or `grpc_batched`), if it ran."""
    grpc = results.get(key)
    if not grpc:
        return []
    batching = grpc.get("batching_parameters")
    lines = [
        f"gRPC, local server ({grpc['server']}, "
        + (f"batching: `{os.path.relpath(batching, REPO_ROOT)}`" if batching else "no batching")
        + f"), one short sentence per request (<= {results['settings']['short_words']} "
        "words), `nmt_keras.serving.Client` per thread.",
        "",
        "| clients | requests | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in grpc["levels"]:
        lines.append(
            f"| {level['clients']} | {level['requests']} | {level['requests_per_s']:.1f} "
            f"| {level['p50_ms']:.1f} | {level['p90_ms']:.1f} | {level['p99_ms']:.1f} "
            f"| {level['max_ms']:.1f} | {level['errors']} |"
        )
    if "direct" in grpc:
        level = grpc["direct"]
        lines.append(
            f"| direct (no server) | {level['requests']} | "
            f"{1000 / level['mean_ms']:.1f} | {level['p50_ms']:.1f} "
            f"| {level['p90_ms']:.1f} | {level['p99_ms']:.1f} | {level['max_ms']:.1f} | 0 |"
        )
    return [*lines, ""]


def markdown_tables(results: dict) -> str:
    """The results as markdown."""
    lines = []
    direct = results.get("direct")
    if direct:
        sizes = list(direct["batch_sizes"])
        lines += [
            f"Direct SavedModel `serving_default`, {results['settings']['sentences']} "
            f"{results['settings']['sentence_split']} sentences, greedy, decode cap "
            f"{results['settings']['max_length']} tokens, median of "
            f"{results['settings']['repeats']} interleaved passes.",
            "",
            "| batch | model | sentences/s | x tutorial | sentences/CPU s | x tutorial (CPU) "
            "| out tokens/sent | capped | loop steps | ms/loop step | ms/batch |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for size in sizes:
            row = direct["batch_sizes"][size]
            ratio = row.get("ratio_ours_vs_tutorial", {})
            for name in (OURS, TUTORIAL):
                if name not in row:
                    continue
                cell = row[name]
                if name == OURS and ratio:
                    speedup = f"{ratio['sentences_per_s']:.2f}"
                    cpu_speedup = f"{ratio['sentences_per_cpu_s']:.2f}"
                else:
                    speedup = cpu_speedup = "1" if name == TUTORIAL else "-"
                lines.append(
                    f"| {size} | {name} | {cell['sentences_per_s']:.1f} | {speedup} "
                    f"| {cell['sentences_per_cpu_s']:.1f} | {cpu_speedup} "
                    f"| {cell['mean_output_tokens']:.1f} | {100 * cell['capped_fraction']:.0f}% "
                    f"| {cell['loop_steps']} | {cell['ms_per_loop_step']:.2f} "
                    f"| {cell['ms_per_batch']:.1f} |"
                )
        lines.append("")
    for key in ("grpc", "grpc_batched"):
        lines += grpc_table(results, key)
    if "grpc" in results and "grpc_batched" in results:
        lines += [
            "Server-side batching, batched / unbatched at each level:",
            "",
            "| clients | requests/s | p99 ms (unbatched) | p99 ms (batched) |",
            "|---:|---:|---:|---:|",
        ]
        for plain, batched in zip(
            results["grpc"]["levels"], results["grpc_batched"]["levels"], strict=True
        ):
            ratio = batched["requests_per_s"] / plain["requests_per_s"]
            lines.append(
                f"| {plain['clients']} | {ratio:.2f}x "
                f"| {plain['p99_ms']:.1f} | {batched['p99_ms']:.1f} |"
            )
        lines.append("")
    machine = results["machine"]
    lines.append(
        f"Machine: {machine['cpu_model']}, {machine.get('cpus_usable', machine['cpu_count'])} "
        f"usable CPUs, load average {machine['loadavg_start'][0]:.1f} at start, "
        f"{machine.get('loadavg_end', [float('nan')])[0]:.1f} at end; TensorFlow "
        f"{machine['tensorflow']}, {machine['platform']}."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Runs parts A and B and prints the tables."""
    args = parse_args(argv)
    from nmt_keras.config import Config

    config = Config.from_yaml(os.path.join(args.run, "config.yaml"))
    max_length = args.max_length or config.training.max_decode_length
    results: dict = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {
            "run": os.path.abspath(args.run),
            "batch_sizes": args.batch_sizes,
            "sentences": args.sentences,
            "repeats": args.repeats,
            "max_length": max_length,
            "tutorial_steps": args.tutorial_steps,
            "concurrency": args.concurrency,
            "grpc_requests": args.grpc_requests,
            "grpc_seconds": args.grpc_seconds,
            "short_words": args.short_words,
            "batching": args.batching,
            "seed": args.seed,
        },
    }
    temporaries = []
    try:
        version_dir, temporary = prepare_ours(args, config)
        temporaries.append(temporary)
        results["ours"] = {
            "saved_model": os.path.abspath(version_dir),
            "parameters": saved_model_parameters(version_dir),
            "model": {
                "type": config.model.type,
                "rnn": config.model.rnn,
                "embedding_dim": config.model.embedding_dim,
                "units": config.model.units,
                "attention_units": config.model.attention_units,
                "vocab_size": config.tokenizer.vocab_size,
            },
        }
        models = {OURS: Model(OURS, version_dir, max_length)}
        if not args.skip_direct:
            tutorial_dir, tutorial_info, temporary = prepare_tutorial(args, config, max_length)
            temporaries.append(temporary)
            results["tutorial"] = {"saved_model": os.path.abspath(tutorial_dir), **tutorial_info}
            models[TUTORIAL] = Model(TUTORIAL, tutorial_dir, max_length)
            sentences, split = benchmark_sentences(config, args.sentences, args.seed)
            results["settings"]["sentence_split"] = split
            log(f"part A: {len(sentences)} {split} sentences, batch sizes {args.batch_sizes}")
            results["direct"] = run_direct(args, models, sentences)
        if not args.skip_grpc:
            short = short_sentences(config, args.short_words, args.seed)
            if args.batching in ("off", "both"):
                results["grpc"] = run_grpc(args, version_dir, models[OURS], short, temporaries)
            if args.batching in ("on", "both"):
                results["grpc_batched"] = run_grpc(
                    args, version_dir, None, short, temporaries, args.batching_parameters
                )
    finally:
        import shutil

        for temporary in temporaries:
            if temporary:
                shutil.rmtree(temporary, ignore_errors=True)
    if hasattr(os, "getloadavg"):
        results["machine"]["loadavg_end"] = list(os.getloadavg())
    table = markdown_tables(results)
    print(table)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as file:
            file.write(table + "\n")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
