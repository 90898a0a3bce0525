r"""Translation quality under a wall-clock training budget.

Trains a recipe with `nmt-keras`'s own trainer for at most `--minutes` of wall-clock time
(validation and per-epoch BLEU included in the budget), then translates the test split
with the best checkpoint and scores it with sacreBLEU (cased, 13a, detokenized output)
and chrF. Writes the figures and signatures as JSON.

    python benchmarks/quality.py --recipe training/configs/multi30k-bahdanau.yaml \\
        --data ../shared/data/multi30k --minutes 20 --json benchmarks/results/quality.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="training/configs/multi30k-bahdanau.yaml")
    parser.add_argument(
        "--data",
        default=os.path.join(REPO_ROOT, "..", "shared", "data", "multi30k"),
        help="folder with {train,val,test2016}.{src,tgt}.gz",
    )
    parser.add_argument("--src", default="de")
    parser.add_argument("--tgt", default="en")
    parser.add_argument("--test", default="test2016", help="test split name")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget")
    parser.add_argument("--run-dir", help="run directory (default: runs/quality-<recipe>)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", help="write the results here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not os.path.isdir(args.data):
        print(f"quality.py: error: data folder not found: {args.data}", file=sys.stderr)
        return 2

    import tensorflow as tf

    from nmt_keras.config import Config
    from nmt_keras.data.corpus import read_parallel
    from nmt_keras.evaluation import score
    from nmt_keras.run import load_run
    from nmt_keras.training.trainer import train

    def split(name: str, language: str) -> str:
        return os.path.join(args.data, f"{name}.{language}.gz")

    overrides = [
        f"data.train.source={split('train', args.src)}",
        f"data.train.target={split('train', args.tgt)}",
        f"data.valid.source={split('val', args.src)}",
        f"data.valid.target={split('val', args.tgt)}",
        f"training.max_minutes={args.minutes}",
        "training.epochs=1000",
        "training.early_stopping_patience=null",
        *args.set,
    ]
    config = Config.from_yaml(args.recipe, overrides)
    run_dir = args.run_dir or os.path.join("runs", f"quality-{config.name}")
    if os.path.exists(run_dir):
        print(f"quality.py: error: {run_dir} exists; remove it or pass --run-dir", file=sys.stderr)
        return 2

    start = time.monotonic()
    history = train(config, run_dir)
    train_minutes = (time.monotonic() - start) / 60.0

    test = read_parallel(split(args.test, args.src), split(args.test, args.tgt))
    translator = load_run(run_dir, "best").translator()
    hypotheses = translator.translate_all(list(test.sources), batch_size=128)
    scores = score(hypotheses, test.targets)
    lowercased = score([h.lower() for h in hypotheses], [r.lower() for r in test.targets])
    results = {
        "recipe": args.recipe,
        "overrides": args.set,
        "budget_minutes": args.minutes,
        "train_minutes": round(train_minutes, 2),
        "epochs": len(history.epoch),
        "best_val_bleu": max(history.history.get("val_bleu", [0.0])),
        "test": args.test,
        "bleu": round(scores.bleu, 2),
        "bleu_lowercased": round(lowercased.bleu, 2),
        "chrf": round(scores.chrf, 2),
        "bleu_signature": scores.bleu_signature,
        "chrf_signature": scores.chrf_signature,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}",
        "tensorflow": tf.__version__,
    }
    print(json.dumps(results, indent=2))
    print(scores)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
