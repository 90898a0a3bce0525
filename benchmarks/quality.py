r"""Translation quality under a wall-clock training budget.

Trains a recipe with `nmt-keras`'s own trainer for at most `--minutes` of wall-clock time
(validation and per-epoch BLEU included in the budget), then translates the test split
with the best checkpoint, greedy and with a beam (`--beam-size`, default 5, length
penalty 0.6), and scores it with sacreBLEU (cased, detokenized output, the recipe's
`training.bleu_tokenize`) and chrF.
Writes the figures and signatures as JSON.

`--milestone M` (repeatable) also scores the model as it stood after M minutes of the same
run: the best checkpoint (by the recipe's monitor) among the epochs that ended within M
minutes. So one 60-minute run answers "within 20 minutes" and "within 60 minutes" without
a second run whose learning-rate state differs. Short epochs
(`--set training.steps_per_epoch=250`) make the milestones finer.

    python benchmarks/quality.py --recipe training/configs/multi30k-bahdanau.yaml \\
        --data ../shared/data/multi30k --minutes 60 --milestone 20 \\
        --set training.steps_per_epoch=250 --json benchmarks/results/quality.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from nmt_keras.config import Config  # noqa: E402
from nmt_keras.data.corpus import read_parallel  # noqa: E402
from nmt_keras.decoding import GREEDY, DecodingOptions  # noqa: E402
from nmt_keras.evaluation import score  # noqa: E402
from nmt_keras.run import RunPaths, load_run  # noqa: E402
from nmt_keras.training.trainer import train  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Snapshot:
    """The best checkpoint as it stood at the end of one epoch."""

    path: str
    epoch: int
    minutes: float
    monitor_value: float

    def description(self) -> dict:
        """The JSON fields of this snapshot."""
        return {
            "epoch": self.epoch,
            "trained_minutes": round(self.minutes, 2),
            "monitor_value": self.monitor_value,
        }


class BestSnapshots(keras.callbacks.Callback):
    """Copies the run's best checkpoint whenever an epoch improves on it, with the time.

    Runs after the trainer's own callbacks, so the epoch's `val_bleu` is in the logs and
    `best.weights.h5` is already written. The clock starts with training, as the trainer's
    time budget does.

    Args:
        paths: The run's files; snapshots go to `<run>/snapshots/`.
        monitor: The quantity the trainer's best checkpoint follows.
    """

    def __init__(self, paths: RunPaths, monitor: str):
        super().__init__()
        self.paths = paths
        self.monitor = monitor
        self.snapshots: list[Snapshot] = []
        self.curve: list[dict] = []
        self.start = 0.0

    def on_train_begin(self, logs=None):
        """Starts the clock."""
        self.start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        """Records the epoch and keeps a copy of the best checkpoint if it improved."""
        minutes = (time.monotonic() - self.start) / 60.0
        value = float(logs[self.monitor])
        self.curve.append({"epoch": epoch + 1, "minutes": round(minutes, 2), self.monitor: value})
        better = max if "bleu" in self.monitor else min
        if self.snapshots and better(value, self.snapshots[-1].monitor_value) != value:
            return
        directory = os.path.join(self.paths.root, "snapshots")
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"epoch-{epoch + 1}.weights.h5")
        shutil.copyfile(self.paths.checkpoint("best"), path)
        self.snapshots.append(Snapshot(path, epoch + 1, minutes, value))

    def best_within(self, minutes: float) -> Snapshot | None:
        """The best checkpoint among the epochs that ended within `minutes`, if any."""
        within = [s for s in self.snapshots if s.minutes <= minutes]
        return within[-1] if within else None


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
    parser.add_argument("--valid", default="val", help="validation split name")
    parser.add_argument("--test", default="test2016", help="test split name")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget")
    parser.add_argument(
        "--milestone",
        type=float,
        action="append",
        default=[],
        metavar="MINUTES",
        help="also score the best checkpoint as it stood after MINUTES (repeatable)",
    )
    parser.add_argument("--run-dir", help="run directory (default: runs/quality-<recipe>)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--beam-size", type=int, default=5, help="also score beam search of this width (1: off)"
    )
    parser.add_argument("--length-penalty", type=float, default=0.6, help="beam search's alpha")
    parser.add_argument("--json", help="write the results here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not os.path.isdir(args.data):
        print(f"quality.py: error: data folder not found: {args.data}", file=sys.stderr)
        return 2

    def split(name: str, language: str) -> str:
        return os.path.join(args.data, f"{name}.{language}.gz")

    overrides = [
        f"data.train.source={split('train', args.src)}",
        f"data.train.target={split('train', args.tgt)}",
        f"data.valid.source={split(args.valid, args.src)}",
        f"data.valid.target={split(args.valid, args.tgt)}",
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

    paths = RunPaths(run_dir)
    snapshots = BestSnapshots(paths, config.training.monitor)
    start = time.monotonic()
    history = train(config, run_dir, callbacks=[snapshots])
    train_minutes = (time.monotonic() - start) / 60.0

    test = read_parallel(split(args.test, args.src), split(args.test, args.tgt))
    run = load_run(run_dir, "best")

    searches = {"greedy": GREEDY}
    if args.beam_size > 1:
        searches[f"beam{args.beam_size}"] = DecodingOptions(
            beam_size=args.beam_size, length_penalty=args.length_penalty
        )

    def test_scores() -> dict:
        """Cased and lowercased BLEU and chrF of each search on the test split."""
        results = {}
        for name, decoding in searches.items():
            translator = run.translator(decoding=decoding)
            hypotheses = translator.translate_all(list(test.sources), batch_size=128)
            tokenize = config.training.bleu_tokenize
            scores = score(hypotheses, test.targets, tokenize)
            lowercased = score(
                [h.lower() for h in hypotheses], [r.lower() for r in test.targets], tokenize
            )
            results[name] = {
                "bleu": round(scores.bleu, 2),
                "bleu_lowercased": round(lowercased.bleu, 2),
                "chrf": round(scores.chrf, 2),
            }
        return {
            **results,
            "bleu_signature": scores.bleu_signature,
            "chrf_signature": scores.chrf_signature,
        }

    milestones = []
    for minutes in sorted(args.milestone):
        snapshot = snapshots.best_within(minutes)
        if snapshot is None:
            milestones.append({"minutes": minutes, "note": "no epoch ended within the budget"})
            continue
        run.model.load_weights(snapshot.path)
        milestones.append(
            {"minutes": minutes, **snapshot.description(), "test": args.test, **test_scores()}
        )
    run.model.load_weights(paths.checkpoint("best"))
    results = {
        "recipe": args.recipe,
        "overrides": args.set,
        "budget_minutes": args.minutes,
        "train_minutes": round(train_minutes, 2),
        "epochs": len(history.epoch),
        "val_curve": snapshots.curve,
        "best_val_bleu": max(history.history.get("val_bleu", [0.0])),
        "test": args.test,
        **test_scores(),
        "milestones": milestones,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}",
        "tensorflow": tf.__version__,
    }
    print(json.dumps(results, indent=2))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
