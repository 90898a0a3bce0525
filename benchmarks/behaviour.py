r"""Next purchases: every baseline and model at one budget on one time split, side by side.

Runs `nmt_keras.behaviour.training.train_behaviour` for each family in turn, in one
process on one machine. A baseline counts, its hyperparameters chosen on the validation
window before the cutoff (`baselines.select_hyperparameters`); a model (`family`, or
`family+repeat` for the repeat-aware variant) trains for at most `--minutes` with
`keras.Model.fit` once per seed, then ranks the whole catalogue for every purchase invoice
after the cutoff. Prints markdown tables (mean, standard deviation and range over seeds of
Recall@k, NDCG@k and HitRate@k; where the hits come from: repeat and explore recall and
the share of repeat items in the top k), a paired randomization test of the best model
(its per-invoice metrics averaged over seeds) against the strongest baseline, and, with
`--session-check`, the best model's first run exported and ranked again through TF
Serving's C++ session loader. Writes every figure as JSON.

    python benchmarks/behaviour.py \
        --transactions ../shared/data/online-retail/online_retail.csv.gz \
        --families gp-topfreq,decayed-topfreq,tifu-knn,up-cf,gru-luong+repeat \
        --seeds 0,1,2 --minutes 5 --session-check --json benchmarks/results/behaviour.json

`--validation` evaluates on the validation window instead (`data.validation_days` before
the cutoff, training before it): the split where a model's hyperparameters are chosen.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import tempfile

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from machine import machine_info  # noqa: E402
from script_tools import log, resolve_path  # noqa: E402

from nmt_keras.behaviour.config import BehaviourConfig  # noqa: E402
from nmt_keras.behaviour.examples import parse_date  # noqa: E402
from nmt_keras.behaviour.families import (  # noqa: E402
    BASELINES,
    FAMILIES,
    MODEL_FAMILIES,
    check_family,
)
from nmt_keras.behaviour.ranking import paired_randomization_test  # noqa: E402

#: Suffix of a family name that selects its repeat-aware variant (`model.repeat`).
REPEAT = "+repeat"
DEFAULT_FAMILIES = (*BASELINES, *MODEL_FAMILIES, *(f"{f}{REPEAT}" for f in MODEL_FAMILIES))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", required=True, help="Online Retail CSV (.csv/.gz)")
    parser.add_argument("--recipe", default="training/configs/retail.yaml")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per run")
    parser.add_argument(
        "--families",
        default=",".join(DEFAULT_FAMILIES),
        help=f"comma-separated, of {FAMILIES}, a model family optionally with {REPEAT}",
    )
    parser.add_argument("--seeds", default="0", help="comma-separated seeds of every model")
    parser.add_argument(
        "--validation", action="store_true", help="evaluate on the window before the cutoff"
    )
    parser.add_argument(
        "--session-check",
        action="store_true",
        help="export the best model and rank again through the C++ session loader",
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--runs-dir", help="keep each run here (default: discarded)")
    return parser.parse_args(argv)


def variant_config(base: BehaviourConfig, variant: str, seed: int) -> BehaviourConfig:
    """The config of one variant (`family` or `family+repeat`) and seed."""
    family = variant.removesuffix(REPEAT)
    check_family(family, prefix="--families ")
    repeat = variant.endswith(REPEAT)
    if repeat and family in BASELINES:
        raise SystemExit(f"--families: a baseline has no repeat variant. Received: {variant}")
    return base.replace(
        model=dataclasses.replace(base.model, family=family, repeat=repeat), seed=seed
    )


def validation_split(config: BehaviourConfig) -> BehaviourConfig:
    """The config evaluated on the `validation_days` before its cutoff, trained before them."""
    cutoff = parse_date(config.data.cutoff)
    start = cutoff - config.data.validation_days * 86_400
    day = datetime.datetime.fromtimestamp(start, datetime.timezone.utc).strftime("%Y-%m-%d")
    return config.replace(data=dataclasses.replace(config.data, cutoff=day, end=config.data.cutoff))


def summarize(variant: str, runs: list[dict], k: int) -> dict:
    """Mean, standard deviation, minimum and maximum over a variant's runs."""
    summary = {"family": variant, "runs": len(runs), "seeds": [run["seed"] for run in runs]}
    names = (
        f"recall@{k}",
        f"ndcg@{k}",
        f"hit_rate@{k}",
        f"repeat_recall@{k}",
        f"explore_recall@{k}",
        f"repeat_share@{k}",
    )
    for name in names:
        values = np.array([run[name] for run in runs], np.float64)
        summary[name] = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    for name in ("parameters", "epochs", "train_seconds"):
        summary[name] = float(np.mean([run.get(name, 0) for run in runs]))
    summary["hyperparameters"] = runs[0].get("hyperparameters")
    summary["per_example"] = {
        name: np.mean([run["per_example"][name] for run in runs], axis=0).tolist()
        for name in (f"recall@{k}", f"ndcg@{k}")
    }
    return summary


def table(summaries: list[dict], k: int) -> str:
    """Metrics as a markdown table: mean ± std over seeds, then the range."""
    lines = [
        f"| family | runs | Recall@{k} | NDCG@{k} | HitRate@{k} | Recall range | NDCG range "
        "| parameters | epochs | train s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summaries:
        recall, ndcg, hits = row[f"recall@{k}"], row[f"ndcg@{k}"], row[f"hit_rate@{k}"]
        lines.append(
            f"| {row['family']} | {row['runs']} | {recall['mean']:.4f} ± {recall['std']:.4f} "
            f"| {ndcg['mean']:.4f} ± {ndcg['std']:.4f} | {hits['mean']:.4f} "
            f"| {recall['min']:.4f}-{recall['max']:.4f} | {ndcg['min']:.4f}-{ndcg['max']:.4f} "
            f"| {row['parameters']:,.0f} | {row['epochs']:.1f} | {row['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def breakdown_table(summaries: list[dict], k: int) -> str:
    """Where the hits come from, as a markdown table (means over seeds)."""
    lines = [
        f"| family | repeat recall@{k} | explore recall@{k} | repeat share of the top {k} |",
        "|---|---:|---:|---:|",
    ]
    for row in summaries:
        values = [row[f"{name}@{k}"]["mean"] for name in ("repeat_recall", "explore_recall")]
        share = row[f"repeat_share@{k}"]["mean"]
        lines.append(f"| {row['family']} | {values[0]:.4f} | {values[1]:.4f} | {share:.3f} |")
    return "\n".join(lines)


def compare(summaries: list[dict], k: int) -> dict | None:
    """The best model against the strongest baseline: ratios and paired p-values."""
    baselines = [row for row in summaries if row["family"] in BASELINES]
    models = [row for row in summaries if row["family"] not in BASELINES]
    if not baselines or not models:
        return None

    def recall(row):
        return row[f"recall@{k}"]["mean"]

    baseline, model = max(baselines, key=recall), max(models, key=recall)
    comparison = {"model": model["family"], "baseline": baseline["family"]}
    for name in (f"recall@{k}", f"ndcg@{k}"):
        comparison[name] = {
            "model": model[name]["mean"],
            "baseline": baseline[name]["mean"],
            "ratio": model[name]["mean"] / max(baseline[name]["mean"], 1e-12),
            "p_value": paired_randomization_test(
                model["per_example"][name], baseline["per_example"][name]
            ),
        }
    return comparison


def session_check(run_dir: str, metrics: dict, k: int) -> dict:
    """Exports a run and ranks its evaluation invoices again through the C++ session loader."""
    from nmt_keras.behaviour.events import read_transactions
    from nmt_keras.behaviour.examples import time_split
    from nmt_keras.behaviour.export import export_recommender
    from nmt_keras.behaviour.ranking import ranking_metrics
    from nmt_keras.behaviour.run import load_recommender
    from nmt_keras.behaviour.training import rank, session_ranker

    config, recommender = load_recommender(run_dir)
    invoices, _ = read_transactions(config.data.transactions)
    end = None if config.data.end is None else parse_date(config.data.end)
    _, test = time_split(invoices, parse_date(config.data.cutoff), config.data.history_length, end)
    with tempfile.TemporaryDirectory() as exports:
        version = export_recommender(recommender, exports)
        served = ranking_metrics(rank(session_ranker(version), test), test.targets, k)
    names = (f"recall@{k}", f"ndcg@{k}", f"hit_rate@{k}")
    return {
        "run": run_dir,
        "python": {name: metrics[name] for name in names},
        "session_loader": {name: served[name] for name in names},
        "identical": all(served[name] == metrics[name] for name in names),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    overrides = [
        f"data.transactions={args.transactions}",
        f"training.max_minutes={args.minutes}",
        *args.set,
    ]
    from nmt_keras.behaviour.training import train_behaviour

    base = BehaviourConfig.from_yaml(resolve_path(args.recipe), overrides)
    if args.validation:
        base = validation_split(base)
    variants = [variant.strip() for variant in args.families.split(",") if variant.strip()]
    seeds = [int(seed) for seed in args.seeds.split(",")]
    k = base.training.top_k
    summaries, first_runs = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        runs_dir = args.runs_dir or scratch
        for variant in variants:
            runs = []
            for seed in seeds if variant.removesuffix(REPEAT) not in BASELINES else seeds[:1]:
                log(f"== {variant}, seed {seed}")
                config = variant_config(base, variant, seed)
                run_dir = os.path.join(runs_dir, f"{variant}-seed{seed}")
                runs.append({**train_behaviour(config, run_dir, log=log), "seed": seed})
                first_runs.setdefault(variant, (run_dir, runs[-1]))
            summaries.append(summarize(variant, runs, k))
        comparison = compare(summaries, k)
        check = None
        if args.session_check and comparison is not None:
            run_dir, metrics = first_runs[comparison["model"]]
            check = session_check(run_dir, metrics, k)
    print(table(summaries, k))
    print()
    print(breakdown_table(summaries, k))
    if comparison is not None:
        print()
        ratios = (
            f"{name} x{row['ratio']:.3f} (paired p = {row['p_value']:.4f})"
            for name, row in ((name, comparison[name]) for name in (f"recall@{k}", f"ndcg@{k}"))
        )
        print(f"{comparison['model']} against {comparison['baseline']}: " + ", ".join(ratios))
    if check is not None:
        print(
            f"session loader: {check['session_loader']} "
            f"({'identical to' if check['identical'] else 'differs from'} Python's)"
        )
    if args.json:
        report = {
            "machine": machine_info(),
            "config": base.to_dict(),
            "split": "validation" if args.validation else "evaluation",
            "minutes_per_run": args.minutes,
            "seeds": seeds,
            "results": [
                {key: value for key, value in row.items() if key != "per_example"}
                for row in summaries
            ],
            "comparison": comparison,
            "session_check": check,
        }
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=2)
            file.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
