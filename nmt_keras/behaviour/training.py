"""Training and evaluating a next-purchase family on a time split, with `keras.Model.fit`."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping

import keras
import numpy as np
import tensorflow as tf

from nmt_keras.behaviour.baselines import RECOMMENDERS, Past, select_hyperparameters
from nmt_keras.behaviour.config import BehaviourConfig
from nmt_keras.behaviour.events import BehaviourDataError, read_transactions
from nmt_keras.behaviour.examples import HistoryExamples, item_counts, parse_date, time_split
from nmt_keras.behaviour.export import HISTORY_SPECS
from nmt_keras.behaviour.families import BASELINES
from nmt_keras.behaviour.featurizer import PAD_ID, EventFeaturizer
from nmt_keras.behaviour.model import basket_loss
from nmt_keras.behaviour.ranking import (
    example_metrics,
    ranking_metrics,
    repeat_explore_metrics,
)
from nmt_keras.behaviour.recommender import Recommender
from nmt_keras.behaviour.run import BehaviourRunPaths, build_model, save_run, write_metrics
from nmt_keras.serving.session_bundle import SessionBundle
from nmt_keras.serving.signatures import SERVING_DEFAULT
from nmt_keras.training.callbacks import TimeBudget

#: Histories featurized or ranked per call.
EVALUATION_BATCH = 64
#: Histories featurized at once for training.
_FEATURIZE_CHUNK = 256


def vocabulary(counts: Counter, min_count: int = 1) -> list[str]:
    """Items bought at least `min_count` times, most bought first (ties by code).

    Raises:
        ValueError: If no item is left.
    """
    codes = sorted(
        (code for code, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c)
    )
    if not codes:
        raise ValueError(
            f"Expected items bought at least min_item_count={min_count} times before the "
            "cutoff. Received: none"
        )
    return codes


def featurize(
    featurizer: EventFeaturizer, examples: HistoryExamples, statistics: bool = False
) -> dict[str, np.ndarray]:
    """The featurizer's outputs for every example, as arrays of `len(examples)` rows.

    Rows are featurized in chunks of similar length, each cut to its longest history,
    since `purchase_statistics` costs the square of the length.

    Args:
        featurizer: The featurizer.
        examples: The histories.
        statistics: Whether to add the purchase statistics and the repeat set.

    Returns:
        `FEATURE_NAMES` -> int32 `(len(examples), history_length)`, and with `statistics`
        `statistics` float32 `(len(examples), history_length, NUM_STATISTICS)` and
        `repeat_set` bool `(len(examples), history_length)`.
    """
    lengths = np.sum(examples.items != "", axis=1)
    order = np.argsort(lengths, kind="stable")
    call = tf.function(
        lambda *history: featurizer(*history, statistics=statistics), reduce_retracing=True
    )
    outputs = {}
    for start in range(0, len(examples), _FEATURIZE_CHUNK):
        rows = order[start : start + _FEATURIZE_CHUNK]
        width = max(1, int(lengths[rows].max()))
        history = (
            getattr(examples, name)[rows, :width]
            for name in ("items", "timestamps", "quantities", "prices")
        )
        for name, value in call(*history).items():
            value = value.numpy()
            if name not in outputs:
                shape = (len(examples), examples.items.shape[1], *value.shape[2:])
                outputs[name] = np.zeros(shape, value.dtype)
            outputs[name][rows, :width] = value
    return outputs


def basket_ids(
    featurizer: EventFeaturizer, examples: HistoryExamples, max_basket: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The known items of each target basket as ids, at most `max_basket` of them.

    A larger basket keeps a random `max_basket` of its items (drawn once, with `seed`).

    Returns:
        `(rows, baskets)`: int64 `(n,)`, the examples with at least one known item, and
        int32 `(n, max_basket)`, their item ids padded with `PAD_ID`.

    Raises:
        ValueError: If no example has a known item.
    """
    ids = {code: featurizer.first_item_id + i for i, code in enumerate(featurizer.vocabulary)}
    rng = np.random.default_rng(seed)
    rows, baskets = [], []
    for row, basket in enumerate(examples.targets):
        known = [ids[code] for code in basket if code in ids]
        if not known:
            continue
        if len(known) > max_basket:
            known = rng.choice(known, size=max_basket, replace=False).tolist()
        rows.append(row)
        baskets.append(known + [PAD_ID] * (max_basket - len(known)))
    if not rows:
        raise ValueError("Expected training baskets with items of the vocabulary. Received: none")
    return np.array(rows), np.array(baskets, dtype=np.int32)


def training_dataset(
    features: dict[str, np.ndarray], baskets: np.ndarray, batch_size: int, seed: int
) -> tf.data.Dataset:
    """Shuffled batches of `(inputs, labels)` for `NextPurchaseModel.fit`.

    Inputs are the histories' features `(batch, history_length)` and `basket`
    `(batch, max_basket)`; labels are `(batch, max_basket)`, 1.0 on real basket items
    (`basket_loss`).
    """

    def split(inputs):
        return inputs, tf.cast(inputs["basket"] != PAD_ID, tf.float32)

    return (
        tf.data.Dataset.from_tensor_slices({**features, "basket": baskets})
        .shuffle(len(baskets), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(split, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def rank(recommend: Callable[..., Mapping], examples: HistoryExamples) -> list[list[str]]:
    """The top-k codes of every example, `EVALUATION_BATCH` histories a call.

    Each batch is cut to its longest history, so padding costs nothing.

    Args:
        recommend: Takes the recommendation inputs (`HISTORY_INPUTS`: `items`,
            `timestamps`, `quantities`, `prices`, each `(batch, history_len)`) as keywords
            and returns `products`, `(batch, k)` UTF-8 codes: `python_ranker` or
            `session_ranker`.
        examples: The histories.

    Returns:
        One list of codes per example, best first.
    """
    lengths = np.sum(examples.items != "", axis=1)
    ranked = []
    for start in range(0, len(examples), EVALUATION_BATCH):
        rows = slice(start, start + EVALUATION_BATCH)
        width = max(1, int(lengths[rows].max()))
        products = recommend(
            items=examples.items[rows, :width],
            timestamps=examples.timestamps[rows, :width],
            quantities=examples.quantities[rows, :width],
            prices=examples.prices[rows, :width],
        )["products"]
        ranked.extend([code.decode("utf-8") for code in row] for row in np.asarray(products))
    return ranked


def python_ranker(recommender: Recommender) -> Callable[..., Mapping]:
    """`recommender.recommend` as one traced function, for `rank`."""
    return tf.function(recommender.recommend, input_signature=HISTORY_SPECS)


def session_ranker(path: str) -> Callable[..., Mapping]:
    """An exported version's `serving_default`, run by TF Serving's C++ loader, for `rank`."""
    bundle = SessionBundle(path)

    def recommend(**inputs):
        codes = [[code.encode("utf-8") for code in row] for row in inputs["items"]]
        inputs["items"] = np.array(codes, dtype=object).reshape(inputs["items"].shape)
        return bundle.run(SERVING_DEFAULT, inputs, ["products"])

    return recommend


def fit_model(
    config: BehaviourConfig, train: HistoryExamples, counts: Counter
) -> tuple[Recommender, dict]:
    """Builds the config's `NextPurchaseModel` and fits it on the training examples.

    Args:
        config: The experiment; its family is a `families.MODEL_FAMILIES` one.
        train: The training examples of the time split.
        counts: Purchase lines per item before the cutoff (the vocabulary's source).

    Returns:
        The recommender, and `parameters`, `train_seconds` (featurizing and `fit`),
        `train_baskets`, `epochs`, `final_loss` and `catalogue`.
    """
    started = time.monotonic()
    featurizer = EventFeaturizer(vocabulary(counts, config.data.min_item_count))
    rows, baskets = basket_ids(featurizer, train, config.training.max_basket, config.seed)
    features = featurize(featurizer, train, statistics=config.model.repeat)
    features = {name: values[rows] for name, values in features.items()}
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, featurizer.num_ids)
    model.compile(optimizer=keras.optimizers.Adam(config.training.learning_rate), loss=basket_loss)
    budget = config.training.max_minutes
    history = model.fit(
        training_dataset(features, baskets, config.training.batch_size, config.seed),
        epochs=config.training.epochs,
        callbacks=[TimeBudget(budget)] if budget else [],
        shuffle=False,  # the dataset reshuffles every epoch
        verbose=2,
    )
    metrics = {
        "parameters": int(model.count_params()),
        "train_seconds": round(time.monotonic() - started, 1),
        "train_baskets": len(rows),
        "epochs": len(history.history["loss"]),
        "final_loss": float(history.history["loss"][-1]),
        "catalogue": len(featurizer.vocabulary),
    }
    return Recommender(featurizer, model, config.training.top_k), metrics


def train_behaviour(
    config: BehaviourConfig, run_dir: str, log: Callable[[str], None] = print
) -> dict:
    """Trains (or, for a baseline, counts) a family and evaluates it on the time split.

    Reads the transactions, splits them at `data.cutoff` (`examples.time_split`), fits the
    model (`fit_model`) or counts the baseline, ranks the whole catalogue for every
    evaluation invoice and writes the run (`run.save_run`, or only the config for a
    baseline) and its `metrics.json`.

    Args:
        config: The experiment.
        run_dir: Where the run is written.
        log: Receives one line per stage.

    Returns:
        The metrics: `recall@k`, `ndcg@k`, `hit_rate@k`, `examples`, the repeat and explore
        breakdown (`ranking.repeat_explore_metrics`), `per_example` (each evaluation
        invoice's recall, NDCG and hit rate, for paired tests), `family`, the data report,
        `parameters` and `train_seconds`; for a baseline the `hyperparameters` chosen on
        the validation window, for a model those of `fit_model`.

    Raises:
        BehaviourDataError: If the transactions cannot be read, or the cutoff leaves no
            training or no evaluation invoice.
    """
    data = config.data
    invoices, report = read_transactions(data.transactions)
    log(report.summary())
    cutoff = parse_date(data.cutoff)
    end = None if data.end is None else parse_date(data.end)
    train, test = time_split(invoices, cutoff, data.history_length, end)
    window = data.cutoff if end is None else f"{data.cutoff} to {data.end}"
    log(f"time split at {window}: {len(train):,} training and {len(test):,} test invoices")
    if not len(train) or not len(test):
        raise BehaviourDataError(
            f"{data.transactions}: expected purchase invoices on both sides of data.cutoff. "
            f"Received: {len(train)} before and {len(test)} from {window}"
        )
    k = config.training.top_k
    metrics = {"family": config.model.family, "data": report.summary()}
    family = config.model.family
    if family in BASELINES:
        hyperparameters, validation = select_hyperparameters(
            family, invoices, cutoff, data.validation_days, data.history_length, k
        )
        if validation is not None:
            log(
                f"{family}: {hyperparameters} chosen on the {data.validation_days} days before "
                f"the cutoff (recall@{k} {validation[f'recall@{k}']:.4f})"
            )
        make, _ = RECOMMENDERS[family]
        past = Past.before(invoices, cutoff, data.history_length)
        ranked = make(past, **hyperparameters).recommend(test, k)
        metrics.update(parameters=0, train_seconds=0.0, hyperparameters=hyperparameters)
        config.to_yaml(BehaviourRunPaths(run_dir).config)
    else:
        counts = item_counts(invoices, before=cutoff)
        recommender, fit_metrics = fit_model(config, train, counts)
        metrics.update(fit_metrics)
        save_run(run_dir, config, recommender.featurizer, recommender.model)
        ranked = rank(python_ranker(recommender), test)
    metrics.update(ranking_metrics(ranked, test.targets, k))
    metrics.update(repeat_explore_metrics(ranked, test.targets, test.items, k))
    metrics["per_example"] = {
        name: values.round(6).tolist()
        for name, values in example_metrics(ranked, test.targets, k).items()
    }
    write_metrics(run_dir, metrics)
    names = (f"recall@{k}", f"ndcg@{k}", f"hit_rate@{k}")
    log(f"{family}: " + ", ".join(f"{name} {metrics[name]:.4f}" for name in names))
    return metrics
