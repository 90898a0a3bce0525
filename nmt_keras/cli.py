"""The `nmt-keras` command line: train, translate, evaluate, plot, export, audit, serve, client.

The next-purchase application adds `nmt-keras behaviour train|export|explain`.

A user mistake (bad config key, missing file, malformed corpus, incomplete run) prints
one line naming the culprit and exits with status 2; TensorFlow is imported only once a
command runs, so `--help` is instant. TensorFlow's native start-up chatter (INFO and
WARNING lines, the GPU probe's error on a machine without one) is filtered out of stderr
(`native_logs`); `nmt-keras --verbose <command>` shows it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from nmt_keras.behaviour import cli as behaviour_cli
from nmt_keras.config import STRATEGIES
from nmt_keras.native_logs import filter_native_logs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

USER_ERROR_EXIT = 2


def _train(args: argparse.Namespace) -> None:
    from nmt_keras.config import Config
    from nmt_keras.training.trainer import train

    overrides = list(args.set)
    if args.mixed_precision:
        overrides.append("training.mixed_precision=true")
    config = Config.from_yaml(args.config, overrides)
    run_dir = args.run_dir or os.path.join("runs", config.name)
    train(config, run_dir, strategy=args.strategy)
    print(f"run saved in {run_dir}", file=sys.stderr)


def _read_input(path: str | None) -> list[str]:
    if path is None:
        return [line.rstrip("\n") for line in sys.stdin]
    from nmt_keras.data.corpus import CorpusError

    try:
        with open(path, encoding="utf-8") as file:
            return [line.rstrip("\n") for line in file]
    except FileNotFoundError:
        raise CorpusError(f"Input file not found: {path}") from None
    except UnicodeDecodeError as error:
        raise CorpusError(f"{path}: invalid UTF-8 at byte {error.start}") from None


def _decoding_options(args: argparse.Namespace):
    """The `DecodingOptions` of the search flags (`--beam-size`, `--sample`, ...)."""
    from nmt_keras.decoding import DecodingOptions

    return DecodingOptions(
        beam_size=args.beam_size,
        length_penalty=args.length_penalty,
        coverage_penalty=args.coverage_penalty,
        n_best=args.n_best or args.beam_size,
        sampling=args.sample,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
        hard_attention=args.hard_attention,
    )


def _load_translator(args: argparse.Namespace):
    from nmt_keras.run import load_run

    return load_run(args.run, args.checkpoint).translator(decoding=args.decoding)


def _translate_lines(args: argparse.Namespace, translator, sentences: list[str]) -> list[str]:
    from tqdm import tqdm

    show_progress = args.input is not None and sys.stderr.isatty() or args.progress
    with tqdm(total=len(sentences), disable=not show_progress, unit="sent") as bar:
        return translator.translate_all(sentences, args.batch_size, progress=bar.update)


def _write_output(path: str | None, lines: Sequence[str]) -> None:
    text = "".join(f"{line}\n" for line in lines)
    if path is None:
        sys.stdout.write(text)
        return
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


def _moses_nbest(lists: Sequence[Sequence[tuple[str, float]]]) -> list[str]:
    """Moses-style n-best lines: `index ||| translation ||| log-probability`."""
    return [
        f"{index} ||| {text} ||| {score:.4f}"
        for index, hypotheses in enumerate(lists)
        for text, score in hypotheses
    ]


def _nbest_lines(args: argparse.Namespace, translator, sentences: list[str]) -> list[str]:
    from tqdm import tqdm

    show_progress = args.input is not None and sys.stderr.isatty() or args.progress
    with tqdm(total=len(sentences), disable=not show_progress, unit="sent") as bar:
        return _moses_nbest(translator.nbest_all(sentences, args.batch_size, progress=bar.update))


def _translate(args: argparse.Namespace) -> None:
    translator = _load_translator(args)
    sentences = _read_input(args.input)
    if args.n_best:
        _write_output(args.output, _nbest_lines(args, translator, sentences))
    else:
        _write_output(args.output, _translate_lines(args, translator, sentences))


def _test_split(run_dir: str, config):
    """The corpus of the run's `data.test`."""
    from nmt_keras.config import ConfigError
    from nmt_keras.data.corpus import read_corpus

    if config.data.test is None:
        raise ConfigError(f"{run_dir} has no data.test in its config.yaml: pass --src and --ref")
    return read_corpus(config.data.test)


def _evaluate(args: argparse.Namespace) -> None:
    from nmt_keras.config import ConfigError
    from nmt_keras.data.corpus import read_parallel
    from nmt_keras.evaluation import check_bleu_tokenize, score
    from nmt_keras.run import load_run

    if (args.src is None) != (args.ref is None):
        raise ConfigError("Expected both --src and --ref, or neither (the run's data.test).")
    if args.bleu_tokenize is not None:
        try:
            check_bleu_tokenize(args.bleu_tokenize, "--bleu-tokenize")
        except ValueError as error:
            raise ConfigError(str(error)) from None
    # Given files are checked before the model loads.
    corpus = read_parallel(args.src, args.ref) if args.src is not None else None
    run = load_run(args.run, args.checkpoint)
    if corpus is None:
        corpus = _test_split(args.run, run.config)
    translator = run.translator(decoding=args.decoding)
    hypotheses = _translate_lines(args, translator, list(corpus.sources))
    if args.output:
        _write_output(args.output, hypotheses)
    tokenize = args.bleu_tokenize or run.config.training.bleu_tokenize
    print(score(hypotheses, corpus.targets, tokenize))


def _plot_attention(args: argparse.Namespace) -> None:
    from nmt_keras.plotting import plot_attention
    from nmt_keras.run import load_run
    from nmt_keras.run_directory import RunError

    run = load_run(args.run, args.checkpoint)
    if not run.model.has_attention:
        raise RunError(f"{args.run} holds a model without attention (model.type=seq2seq)")
    alignment = run.translator(decoding=args.decoding).align(args.sentence)
    plot_attention(
        alignment.weights,
        alignment.source_tokens,
        alignment.target_tokens,
        args.output,
        title=alignment.translation,
    )
    print(alignment.translation)
    print(f"attention plot written to {args.output}", file=sys.stderr)


def _export(args: argparse.Namespace) -> None:
    from nmt_keras.export import export_run
    from nmt_keras.run import load_run

    run = load_run(args.run, args.checkpoint)
    print(export_run(run, args.model_base_path, args.version, decoding=args.decoding))


def _audit(args: argparse.Namespace) -> int:
    from nmt_keras.export import audit_saved_model, saved_model_dir

    report = audit_saved_model(saved_model_dir(args.path))
    print(report.summary())
    return 0 if report.ok else 1


def _flag_bool(value: str) -> bool:
    """A boolean flag value as `tensorflow_model_server` takes it (`--flag=true`)."""
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _serve(args: argparse.Namespace) -> None:
    from nmt_keras.serving import ServerOptions, serve

    serve(
        ServerOptions(
            port=args.port,
            rest_api_port=args.rest_api_port,
            model_name=args.model_name,
            model_base_path=args.model_base_path,
            model_config_file=args.model_config_file,
            file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
            max_batch_size=args.max_batch_size,
            max_request_bytes=args.max_request_bytes,
            host=args.host,
            enable_batching=args.enable_batching,
            batching_parameters_file=args.batching_parameters_file,
        )
    )


def _wait_until_servable(client, align: bool, seconds: float) -> None:
    """Waits for a server that is still starting (UNAVAILABLE or model NOT_FOUND)."""
    import time

    import grpc

    from nmt_keras.serving import ServingError

    deadline = time.monotonic() + seconds
    while True:
        try:
            client.check_model(align=align)
            return
        except ServingError as error:
            starting = error.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND)
            if not starting or time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def _client(args: argparse.Namespace) -> None:
    from nmt_keras.plotting import plot_attention
    from nmt_keras.serving import Client

    sentences = _read_input(args.input)
    with Client(
        args.target, args.model_name, args.timeout, max_batch_size=args.batch_size
    ) as client:
        _wait_until_servable(client, args.align is not None, args.wait)
        if args.n_best:
            lists = client.nbest(sentences)
            pairs = [[(t.text, t.score) for t in hypotheses] for hypotheses in lists]
            _write_output(args.output, _moses_nbest(pairs))
            return
        translations = client.translate(sentences, align=args.align is not None)
    _write_output(args.output, [translation.text for translation in translations])
    if args.align is None:
        return
    stem, extension = os.path.splitext(args.align)
    for index, translation in enumerate(translations):
        path = args.align if len(translations) == 1 else f"{stem}-{index + 1}{extension}"
        alignment = translation.alignment
        plot_attention(
            alignment.weights,
            alignment.source_tokens,
            alignment.target_tokens,
            path,
            title=translation.text,
        )
        print(f"attention plot written to {path}", file=sys.stderr)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run directory written by `train`")
    parser.add_argument(
        "--checkpoint", choices=("best", "last"), default="best", help="weights to load"
    )


def _add_search_arguments(parser: argparse.ArgumentParser, n_best: bool = False) -> None:
    search = parser.add_argument_group("search (default: greedy)")
    search.add_argument("--beam-size", type=int, default=1, help="beam width (1: greedy)")
    search.add_argument(
        "--length-penalty", type=float, default=0.0, help="GNMT length penalty alpha (0: off)"
    )
    search.add_argument(
        "--coverage-penalty", type=float, default=0.0, help="GNMT coverage penalty beta (0: off)"
    )
    if n_best:
        search.add_argument(
            "--n-best", type=int, help="hypotheses per sentence (at most --beam-size)"
        )
    search.add_argument("--sample", action="store_true", help="sample instead of searching")
    search.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    search.add_argument("--top-k", type=int, default=0, help="sample among the k best (0: all)")
    search.add_argument("--seed", type=int, help="sampling seed (default: a new draw each run)")
    search.add_argument(
        "--hard-attention", action="store_true", help="attend to the argmax source token only"
    )
    if not n_best:
        parser.set_defaults(n_best=None)


def _add_decoding_arguments(parser: argparse.ArgumentParser, n_best: bool = False) -> None:
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch")
    parser.add_argument("--progress", action="store_true", help="always show a progress bar")
    _add_search_arguments(parser, n_best)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="nmt-keras", description="Neural machine translation on Keras 3."
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's native log lines too (its start-up INFO, WARNING and GPU probe)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model from a YAML recipe")
    train.add_argument("--config", required=True, help="YAML recipe (training/configs/*.yaml)")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.units=128 (repeatable)",
    )
    train.add_argument("--run-dir", help="run directory (default: runs/<config name>)")
    train.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="tf.distribute strategy: one device, every device of this machine "
        "(mirrored), or the workers of TF_CONFIG (multi_worker)",
    )
    train.add_argument("--mixed-precision", action="store_true", help="mixed_float16 policy")
    train.set_defaults(handler=_train)

    translate = commands.add_parser("translate", help="translate a file or stdin to stdout")
    _add_run_arguments(translate)
    translate.add_argument("--input", help="source sentences, one a line (default: stdin)")
    translate.add_argument("--output", help="translations (default: stdout)")
    _add_decoding_arguments(translate, n_best=True)
    translate.set_defaults(handler=_translate)

    evaluate = commands.add_parser("evaluate", help="sacreBLEU and chrF against references")
    _add_run_arguments(evaluate)
    evaluate.add_argument(
        "--src", help="source file, plain or .gz (default: the run's data.test, with --ref)"
    )
    evaluate.add_argument("--ref", help="reference file aligned with --src")
    evaluate.add_argument("--output", help="also write the translations here")
    evaluate.add_argument(
        "--bleu-tokenize",
        metavar="NAME",
        help="sacreBLEU tokenizer: auto (from the references' script), zh, ja-mecab, "
        "ko-mecab, 13a, char, ... (default: the run's training.bleu_tokenize)",
    )
    _add_decoding_arguments(evaluate)
    evaluate.set_defaults(handler=_evaluate, input=None)

    plot = commands.add_parser("plot-attention", help="attention heatmap of one sentence")
    _add_run_arguments(plot)
    plot.add_argument("sentence", help="source sentence")
    plot.add_argument("--output", default="attention.png", help="PNG file")
    _add_search_arguments(plot)
    plot.set_defaults(handler=_plot_attention)

    export = commands.add_parser(
        "export", help="write a versioned SavedModel for TensorFlow Serving"
    )
    _add_run_arguments(export)
    export.add_argument(
        "--model_base_path", required=True, help="e.g. saved_models/<name>; versions go below"
    )
    export.add_argument("--version", type=int, help="version number (default: next free)")
    _add_search_arguments(export, n_best=True)
    export.set_defaults(handler=_export)

    audit = commands.add_parser(
        "audit", help="list a SavedModel's ops; fail on ops stock TF Serving lacks"
    )
    audit.add_argument("path", help="a SavedModel version directory or a model base path")
    audit.set_defaults(handler=_audit)

    serve = commands.add_parser(
        "serve", help="serve SavedModels over TF Serving's gRPC and REST APIs (local server)"
    )
    serve.add_argument("--port", type=int, default=8500, help="gRPC port")
    serve.add_argument("--rest_api_port", type=int, default=0, help="REST port (0: off)")
    serve.add_argument("--model_name", help="name of the single model served")
    serve.add_argument("--model_base_path", help="directory of its integer versions")
    serve.add_argument("--model_config_file", help="text-proto model_config_list")
    serve.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
    serve.add_argument("--max_batch_size", type=int, default=0, help="0: no limit")
    serve.add_argument("--max_request_bytes", type=int, default=0, help="0: no limit")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind")
    serve.add_argument(
        "--enable_batching",
        type=_flag_bool,
        nargs="?",
        const=True,
        default=False,
        help="merge concurrent requests into one run (also =true / =false)",
    )
    serve.add_argument(
        "--batching_parameters_file", help="text-proto BatchingParameters (with batching)"
    )
    serve.set_defaults(handler=_serve)

    client = commands.add_parser("client", help="translate through a server's gRPC API")
    client.add_argument("--target", default="127.0.0.1:8500", help="host:port of the server")
    client.add_argument("--model_name", default="nmt")
    client.add_argument("--input", help="source sentences, one a line (default: stdin)")
    client.add_argument("--output", help="translations (default: stdout)")
    served = client.add_mutually_exclusive_group()
    served.add_argument("--align", metavar="PNG", help="plot the served attention here")
    served.add_argument(
        "--n-best",
        action="store_true",
        help="print the `nbest` signature's lists (a model exported with --beam-size)",
    )
    client.add_argument("--timeout", type=float, default=10.0, help="deadline per call (s)")
    client.add_argument("--batch-size", type=int, default=64, help="sentences per request")
    client.add_argument(
        "--wait", type=float, default=0.0, help="seconds to wait for a starting server"
    )
    client.set_defaults(handler=_client)
    behaviour_cli.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the process exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "batch_size", 1) < 1:
        print(
            f"nmt-keras: error: --batch-size must be >= 1, got {args.batch_size}", file=sys.stderr
        )
        return USER_ERROR_EXIT
    if args.verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return _run(args)
    with filter_native_logs():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Runs the parsed command; a user's mistake is one line on stderr and status 2."""
    from nmt_keras.errors import NmtKerasError

    try:
        if hasattr(args, "beam_size"):
            args.decoding = _decoding_options(args)
        return args.handler(args) or 0
    except (NmtKerasError, FileNotFoundError) as error:
        print(f"nmt-keras: error: {error}", file=sys.stderr)
        return USER_ERROR_EXIT


if __name__ == "__main__":
    sys.exit(main())
