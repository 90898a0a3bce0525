"""`nmt-keras behaviour ...`: train, export and explain next-purchase models."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

import numpy as np

from nmt_keras.behaviour.config import BehaviourDataConfig
from nmt_keras.run_directory import RunError

#: Past events an explanation plot shows at most: those with the largest weights.
PLOTTED_EVENTS = 40


def _train(args: argparse.Namespace) -> None:
    from nmt_keras.behaviour.config import BehaviourConfig
    from nmt_keras.behaviour.training import train_behaviour

    config = BehaviourConfig.from_yaml(args.config, list(args.set))
    run_dir = args.run_dir or os.path.join("runs", config.name)
    metrics = train_behaviour(config, run_dir, log=lambda line: print(line, file=sys.stderr))
    metrics.pop("per_example")  # kept in the run's metrics.json
    print(json.dumps(metrics, indent=2))
    print(f"run saved in {run_dir}", file=sys.stderr)


def _export(args: argparse.Namespace) -> None:
    from nmt_keras.behaviour.export import export_recommender
    from nmt_keras.behaviour.run import BehaviourRunPaths, load_recommender

    if args.run_positional is not None:
        if args.run is not None:
            raise RunError("Give the run once: --run RUN (the positional RUN is deprecated).")
        print(
            "nmt-keras: warning: `behaviour export RUN` is deprecated and will be removed; "
            "use `behaviour export --run RUN`, as `nmt-keras export` does.",
            file=sys.stderr,
        )
        args.run = args.run_positional
    if args.run is None:
        raise RunError("behaviour export needs the run directory: --run RUN.")
    _, recommender = load_recommender(args.run)
    paths = BehaviourRunPaths(args.run)
    print(
        export_recommender(
            recommender,
            args.model_base_path,
            args.version,
            asset_files=[paths.config, paths.vocabulary],
        )
    )


def _event_label(timestamp: int, item: str, quantity: float) -> str:
    """`2011-10-05 85123A x6` (a cancellation shows a negative quantity)."""
    day = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d")
    return f"{day} {item} x{quantity:g}"


def _most_attended(attention: np.ndarray, limit: int) -> list[int]:
    """The `limit` events with the largest weight for any product, in time order."""
    if attention.shape[1] <= limit:
        return list(range(attention.shape[1]))
    strongest = np.argsort(-attention.max(axis=0), kind="stable")[:limit]
    return sorted(strongest.tolist())


def _explain(args: argparse.Namespace) -> None:
    from nmt_keras.behaviour.events import BehaviourDataError, read_transactions
    from nmt_keras.behaviour.examples import latest_history, parse_date
    from nmt_keras.plotting import plot_attention
    from nmt_keras.serving import History

    invoices, _ = read_transactions(args.transactions)
    try:
        before = parse_date(args.before) if args.before else None
        example = latest_history(invoices, args.customer, before, args.history_length)
    except ValueError as error:
        raise BehaviourDataError(f"{args.transactions}: {error}") from None
    real = example.items[0] != ""
    history = History(
        items=example.items[0][real].tolist(),
        timestamps=example.timestamps[0][real].tolist(),
        quantities=example.quantities[0][real].tolist(),
        prices=example.prices[0][real].tolist(),
    )
    if args.target:
        from nmt_keras.serving import Client

        with Client(args.target, args.model_name) as client:
            recommendation = client.recommend([history], explain=True)[0]
        products, scores, attention = (
            recommendation.products,
            recommendation.scores,
            recommendation.attention,
        )
    else:
        from nmt_keras.behaviour.run import load_recommender

        _, recommender = load_recommender(args.run)
        if not recommender.explains:
            raise RunError(f"{args.run} holds a model without attention (model.family=gru)")
        outputs = recommender.recommend(
            [list(history.items)],
            [list(history.timestamps)],
            [list(history.quantities)],
            [list(history.prices)],
            explain=True,
        )
        products = [code.decode("utf-8") for code in outputs["products"].numpy()[0]]
        scores = outputs["scores"].numpy()[0].tolist()
        attention = outputs["attention"].numpy()[0]
    labels = [
        _event_label(*event)
        for event in zip(history.timestamps, history.items, history.quantities, strict=True)
    ]
    attention = np.asarray(attention)[: len(products), : len(labels)]
    shown = _most_attended(attention, PLOTTED_EVENTS)
    plot_attention(
        attention[:, shown],
        [labels[event] for event in shown],
        products,
        args.output,
        title=f"customer {args.customer}: attention of each recommended product"
        + (
            f" ({len(shown)} most weighted of {len(labels)} events)"
            if len(shown) < len(labels)
            else ""
        ),
        axis_labels=("past event (date, product, quantity)", "recommended product"),
    )
    for product, score in zip(products, scores, strict=True):
        print(f"{product}\t{score:.4f}")
    print(f"attention plot written to {args.output}", file=sys.stderr)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `behaviour train|export|explain` to the `nmt-keras` subcommands."""
    behaviour = commands.add_parser(
        "behaviour", help="next-purchase models on customer event histories"
    )
    actions = behaviour.add_subparsers(dest="behaviour_command", required=True)

    train = actions.add_parser("train", help="train and evaluate a family on a time split")
    train.add_argument("--config", required=True, help="YAML recipe (training/configs/retail-*)")
    train.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value"
    )
    train.add_argument("--run-dir", help="run directory (default: runs/<config name>)")
    train.set_defaults(handler=_train)

    export = actions.add_parser("export", help="write a versioned SavedModel for TF Serving")
    export.add_argument("--run", help="run directory of a trained model")
    export.add_argument("run_positional", nargs="?", metavar="RUN", help=argparse.SUPPRESS)
    export.add_argument("--model_base_path", required=True, help="versions go below")
    export.add_argument("--version", type=int, help="version number (default: next free)")
    export.set_defaults(handler=_export)

    explain = actions.add_parser(
        "explain", help="plot a customer's attention over past events for each recommendation"
    )
    source = explain.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="run directory of a trained attention model")
    source.add_argument("--target", help="host:port of a server serving the model")
    explain.add_argument("--model_name", default="retail", help="served model (with --target)")
    explain.add_argument("--transactions", required=True, help="invoice-line CSV (.csv/.gz)")
    explain.add_argument("--customer", required=True, help="CustomerID")
    explain.add_argument("--before", help="YYYY-MM-DD: read only events before this date")
    explain.add_argument(
        "--history-length",
        type=int,
        default=BehaviourDataConfig.history_length,
        help="latest events read",
    )
    explain.add_argument("--output", default="explanation.png", help="PNG file")
    explain.set_defaults(handler=_explain)
