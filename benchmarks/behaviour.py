r"""Next purchases: every family at one training budget on one time split, side by side.

Runs `nmt_keras.behaviour.training.train_behaviour` for each family in turn, in one
process on one machine: the popularity and repeat-last-basket baselines (counting only),
the fixed-context GRU, GRU + Bahdanau and GRU + Luong attention with the candidate as the
query, and self-attention over the events. Each neural family trains for at most
`--minutes` of wall-clock time with `keras.Model.fit` on the same pairs, then ranks the
whole catalogue for every purchase invoice after the cutoff. Prints a markdown table
(Recall@k, NDCG@k, HitRate@k, parameters, training time) and writes the figures as JSON.

    python benchmarks/behaviour.py \
        --transactions ../shared/data/online-retail/online_retail.csv.gz \
        --minutes 5 --json benchmarks/results/behaviour.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from machine import machine_info  # noqa: E402
from script_tools import log, resolve_path  # noqa: E402

from nmt_keras.behaviour.config import BehaviourConfig  # noqa: E402
from nmt_keras.behaviour.families import FAMILIES  # noqa: E402
from nmt_keras.behaviour.training import train_behaviour  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", required=True, help="Online Retail CSV (.csv/.gz)")
    parser.add_argument("--recipe", default="training/configs/retail.yaml")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per family")
    parser.add_argument(
        "--families", default=",".join(FAMILIES), help=f"comma-separated, of {FAMILIES}"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--runs-dir", help="keep each family's run here (default: discarded)")
    return parser.parse_args(argv)


def table(results: list[dict], k: int) -> str:
    """The results as a markdown table, one row per family."""
    lines = [
        f"| family | Recall@{k} | NDCG@{k} | HitRate@{k} | parameters | epochs | train s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results:
        lines.append(
            f"| {row['family']} | {row[f'recall@{k}']:.4f} | {row[f'ndcg@{k}']:.4f} | "
            f"{row[f'hit_rate@{k}']:.4f} | {row['parameters']:,} | {row.get('epochs', '-')} | "
            f"{row['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    overrides = [
        f"data.transactions={args.transactions}",
        f"training.max_minutes={args.minutes}",
        *args.set,
    ]
    base = BehaviourConfig.from_yaml(resolve_path(args.recipe), overrides)
    families = [family.strip() for family in args.families.split(",") if family.strip()]
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        runs = args.runs_dir or scratch
        for family in families:
            log(f"== {family}")
            config = base.replace(model=dataclasses.replace(base.model, family=family))
            results.append(train_behaviour(config, os.path.join(runs, family), log=log))
    k = base.training.top_k
    print(table(results, k))
    if args.json:
        report = {
            "machine": machine_info(),
            "config": base.to_dict(),
            "minutes_per_family": args.minutes,
            "results": results,
        }
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=2)
            file.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
