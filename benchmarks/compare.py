r"""The comparison that shows what each step buys: every model family at one training budget.

    python benchmarks/compare.py --data ../shared/data/multi30k --minutes 10

Each family is its Multi30k recipe in `training/configs/` (plus an override for the
input-feeding variants), trained by `nmt_keras.training.trainer.train` on the `--data`
folder's `train` split until `--minutes` of wall-clock time are spent
(`training.max_minutes`; `training.epochs` is raised and early stopping switched off, so
the budget alone ends training; the epoch that crosses it still finishes with its
validation). Families run one after the other in this process. Then the best checkpoint
(by validation BLEU, as the recipes monitor) is measured:

* parameters: `run.model.count_params()`;
* train tok/s: non-padding target tokens trained per second of the training call (labels
  `y </s>`, so `</s>` counts and padding does not). The training steps are read from the
  run's TensorBoard validation log (`evaluation_loss_vs_iterations` is logged at
  `optimizer.iterations` after every epoch, the interrupted last one included; see
  `training_steps`); tokens are steps x the mean target tokens per batch of one epoch of
  the run's training batches
  (the trainer's pipeline rebuilt with the run's tokenizers: exact for whole epochs, the
  mean for the part of the last one). The time is the whole `train()` call, so
  SentencePiece training, tracing, per-epoch validation loss and validation BLEU are in
  it: tokens the family actually trained on within the budget, per second;
* minutes: wall-clock minutes of the `train()` call (the budget plus the last epoch's
  validation); epochs: steps / batches per epoch (fractional: the budget usually stops
  an epoch part-way);
* BLEU and chrF: cased sacreBLEU (13a) and chrF2 of the detokenized translations of the
  `--test` split against its references, greedy and beam search (`--beam-size`,
  GNMT length penalty `--length-penalty`), in batches of `--batch-size` sentences of
  similar length;
* SavedModel sent/s: the run exported by `nmt_keras.export.export_run` (greedy) to a
  temporary directory, loaded with `tf.saved_model.load`, and its `serving_default`
  called on the test sentences in file order, `--batch-size` a call, after one untimed
  warm-up call: sentences / seconds of one pass;
* an attention heatmap of test sentence `--attention-index` (greedy) per family with
  attention, `<out-dir>/comparison/<family>.png`.

Results go to `<out-dir>/COMPARISON.md` and `<out-dir>/results/compare.json`. Every
family's run and results live in `--runs-dir` (`<family>/` and `<family>.json`): a family
whose training is recorded there is not retrained (an interrupted training is started
again from scratch, so every family gets one uninterrupted budget), and one whose
evaluation is recorded with the same evaluation settings is not re-evaluated, unless
`--force`. A family whose recipe file is missing is reported as skipped.

Bahdanau's decoder already feeds the attention context into every RNN step
(`s_i = f(s_{i-1}, [E y_{i-1}; c_i])`) and ignores `model.input_feeding`, so input feeding
is compared on the three Luong scores only.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import glob
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from script_tools import log  # noqa: E402

RECIPES = os.path.join(REPO_ROOT, "training", "configs")
FEEDING = "model.input_feeding=true"
ITERATIONS_TAG = "evaluation_loss_vs_iterations"


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family of the comparison.

    Attributes:
        name: Its name in tables, file names and `--families`.
        recipe: The recipe file name in `training/configs/`.
        description: What it is, for the table.
        overrides: Config overrides on top of the recipe.
    """

    name: str
    recipe: str
    description: str
    overrides: tuple[str, ...] = ()


FAMILIES = (
    Family("seq2seq", "multi30k-seq2seq.yaml", "fixed context (Cho et al. 2014)"),
    Family("bahdanau", "multi30k-bahdanau.yaml", "additive attention before the RNN step"),
    Family("luong-dot", "multi30k-luong-dot.yaml", "Luong global, dot score"),
    Family("luong-dot-feed", "multi30k-luong-dot.yaml", "Luong dot, input feeding", (FEEDING,)),
    Family("luong-general", "multi30k-luong-general.yaml", "Luong global, general score"),
    Family(
        "luong-general-feed",
        "multi30k-luong-general.yaml",
        "Luong general, input feeding",
        (FEEDING,),
    ),
    Family("luong-concat", "multi30k-luong-concat.yaml", "Luong global, concat score"),
    Family(
        "luong-concat-feed",
        "multi30k-luong-concat.yaml",
        "Luong concat, input feeding",
        (FEEDING,),
    ),
    Family("luong-local-p", "multi30k-luong-local-p.yaml", "Luong local-p window"),
    Family("transformer", "multi30k-transformer.yaml", "Transformer"),
)
BY_NAME = {family.name: family for family in FAMILIES}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        default=os.path.join(REPO_ROOT, "..", "shared", "data", "multi30k"),
        help="folder with {train,val,<test>}.{src,tgt}.gz",
    )
    parser.add_argument("--src", default="de", help="source language")
    parser.add_argument("--tgt", default="en", help="target language")
    parser.add_argument("--test", default="test2016", help="test split name")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per family")
    parser.add_argument(
        "--families",
        default=",".join(family.name for family in FAMILIES),
        help="comma-separated, in order (default: all)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override applied to every family (repeatable)",
    )
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--length-penalty", type=float, default=0.6, help="GNMT alpha")
    parser.add_argument(
        "--batch-size", type=int, default=64, help="sentences per call (decoding and SavedModel)"
    )
    parser.add_argument("--test-limit", type=int, help="use the first N test sentences only")
    parser.add_argument(
        "--attention-index", type=int, default=0, help="test sentence of the heatmaps"
    )
    parser.add_argument(
        "--out-dir",
        default=os.path.join(REPO_ROOT, "benchmarks"),
        help="COMPARISON.md, comparison/<family>.png and results/compare.json go here",
    )
    parser.add_argument(
        "--runs-dir",
        default=os.path.join(REPO_ROOT, "runs", "compare"),
        help="run directories and per-family results",
    )
    parser.add_argument("--force", action="store_true", help="retrain and re-evaluate")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.families.split(",") if name.strip()]
    args.families = list(dict.fromkeys(names))  # Unique, in the given order.
    unknown = [name for name in args.families if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown family {unknown[0]!r}; expected some of {', '.join(BY_NAME)}")
    if not args.families:
        parser.error("--families names no family")
    if args.minutes <= 0:
        parser.error("--minutes must be > 0")
    for name in ("beam_size", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.test_limit is not None and args.test_limit < 1:
        parser.error("--test-limit must be >= 1")
    if args.attention_index < 0 or (args.test_limit and args.attention_index >= args.test_limit):
        parser.error("--attention-index must be a test sentence within --test-limit")
    if not os.path.isdir(args.data):
        parser.exit(2, f"{parser.prog}: error: data folder not found: {args.data}\n")
    return args


def split_path(args, split: str, language: str) -> str:
    """`<data>/<split>.<language>.gz`."""
    return os.path.join(os.path.abspath(args.data), f"{split}.{language}.gz")


def train_settings(args, family: Family) -> dict:
    """What determines a family's training: its recipe, overrides and budget."""
    overrides = [
        f"data.train.source={split_path(args, 'train', args.src)}",
        f"data.train.target={split_path(args, 'train', args.tgt)}",
        f"data.valid.source={split_path(args, 'val', args.src)}",
        f"data.valid.target={split_path(args, 'val', args.tgt)}",
        f"data.test.source={split_path(args, args.test, args.src)}",
        f"data.test.target={split_path(args, args.test, args.tgt)}",
        f"training.max_minutes={args.minutes}",
        "training.epochs=1000",
        "training.early_stopping_patience=null",
        *family.overrides,
        *args.set,
    ]
    return {"recipe": os.path.join("training", "configs", family.recipe), "overrides": overrides}


def eval_settings(args) -> dict:
    """What determines a family's evaluation."""
    return {
        "test": args.test,
        "test_limit": args.test_limit,
        "beam_size": args.beam_size,
        "length_penalty": args.length_penalty,
        "batch_size": args.batch_size,
        "attention_index": args.attention_index,
    }


# ----------------------------------------------------------------------------- training


def training_steps(run_dir: str, batches_per_epoch: int) -> int | None:
    """Training steps of a run, from the optimizer iterations its validation log holds.

    Keras logs `optimizer.iterations` after every epoch's validation. On a dataset of
    unknown length (bucketed batches) it counts one iteration more than there were
    batches in every epoch that ran to the end of the data, so each epoch counts
    `min(iterations this epoch, batches per epoch)`: exact for whole epochs and for the
    epoch the budget interrupted.
    """
    import tensorflow as tf

    iterations = []
    for path in glob.glob(os.path.join(run_dir, "logs", "validation", "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            if any(value.tag == ITERATIONS_TAG for value in event.summary.value):
                iterations.append(int(event.step))
    if not iterations:
        return None
    iterations = sorted(iterations)
    epochs = zip([0, *iterations[:-1]], iterations, strict=True)
    return sum(min(end - start, batches_per_epoch) for start, end in epochs)


def epoch_batches(config, run_dir: str) -> dict:
    """Batches, pairs and non-padding target tokens of one epoch of a run's training data.

    Rebuilds the trainer's pipeline (length filter, `data.max_train_pairs` subsample,
    bucketed batches) with the run's tokenizers; the order does not change the counts.
    """
    from nmt_keras.data.corpus import filter_pairs, read_corpus, subsample
    from nmt_keras.data.pipeline import make_dataset
    from nmt_keras.run import RunPaths
    from nmt_keras.text.tokenizer import PAD_ID, Tokenizer

    paths = RunPaths(run_dir)
    source = Tokenizer.from_file(paths.source_tokenizer)
    target = Tokenizer.from_file(paths.target_tokenizer)
    data = config.data
    corpus, _ = filter_pairs(
        read_corpus(data.train), source.token_lengths, target.token_lengths, data.max_length
    )
    if data.max_train_pairs:
        corpus = subsample(corpus, data.max_train_pairs, data.shuffle_seed)
    dataset = make_dataset(
        corpus,
        source,
        target,
        batch_size=data.batch_size,
        max_tokens=data.max_tokens,
        max_length=data.max_length,
        shuffle=False,
    )
    counts = {"batches": 0, "pairs": 0, "target_tokens": 0}
    for _, labels in dataset:
        counts["batches"] += 1
        counts["pairs"] += int(labels.shape[0])
        counts["target_tokens"] += int((labels != PAD_ID).numpy().sum())
    return counts


def train_family(family: Family, config, run_dir: str) -> dict:
    """Trains one family from scratch within its budget; returns what it trained."""
    import keras
    from machine import machine_info

    from nmt_keras.training.trainer import train

    if os.path.exists(run_dir):
        log(f"  removing the unfinished run {run_dir}")
        shutil.rmtree(run_dir)
    keras.backend.clear_session()
    machine = machine_info()
    start = time.monotonic()
    history = train(config, run_dir)
    seconds = time.monotonic() - start
    epoch = epoch_batches(config, run_dir)
    steps = training_steps(run_dir, epoch["batches"])
    tokens = None if steps is None else steps * epoch["target_tokens"] / epoch["batches"]
    result = {
        "machine": machine,
        "seconds": seconds,
        "minutes": seconds / 60.0,
        "steps": steps,
        "epochs_started": len(history.epoch),
        "epochs": None if steps is None else steps / epoch["batches"],
        "epoch": epoch,
        "target_tokens": tokens,
        "target_tokens_per_s": None if tokens is None else tokens / seconds,
        "val_bleu": [float(value) for value in history.history.get("val_bleu", [])],
    }
    if hasattr(os, "getloadavg"):
        result["loadavg_end"] = list(os.getloadavg())
    log(
        f"  trained {result['minutes']:.1f} min, {steps} steps, "
        f"{result['epochs'] or 0:.2f} epochs, {result['target_tokens_per_s'] or 0:.0f} tok/s"
    )
    return result


# ----------------------------------------------------------------------------- evaluation


def decode_and_score(
    translator, sources: list[str], references: list[str], batch_size: int, tokenize: str
):
    """Translations of the test split, their scores (BLEU tokenizer `tokenize`), decoding speed."""
    from nmt_keras.evaluation import score

    start = time.perf_counter()
    hypotheses = translator.translate_all(sources, batch_size=batch_size)
    seconds = time.perf_counter() - start
    scores = score(hypotheses, references, tokenize)
    return {
        "bleu": round(scores.bleu, 2),
        "chrf": round(scores.chrf, 2),
        "bleu_signature": scores.bleu_signature,
        "chrf_signature": scores.chrf_signature,
        "decode_seconds": seconds,
        "sample": hypotheses[:3],
    }


def saved_model_speed(run, sources: list[str], batch_size: int) -> dict:
    """Sentences/s of the greedy SavedModel's `serving_default`, one pass after a warm-up."""
    import tensorflow as tf

    from nmt_keras.export import export_run

    with tempfile.TemporaryDirectory(prefix="nmt_compare_export_") as temporary:
        start = time.perf_counter()
        version_dir = export_run(run, os.path.join(temporary, "model"))
        export_seconds = time.perf_counter() - start
        signature = tf.saved_model.load(version_dir).signatures["serving_default"]
        input_name = next(iter(signature.structured_input_signature[1]))
        batches = [sources[i : i + batch_size] for i in range(0, len(sources), batch_size)]
        signature(**{input_name: tf.constant(batches[0])})  # warm-up
        start = time.perf_counter()
        for batch in batches:
            signature(**{input_name: tf.constant(batch)})
        seconds = time.perf_counter() - start
    return {
        "sentences_per_s": len(sources) / seconds,
        "seconds": seconds,
        "export_seconds": export_seconds,
    }


def attention_plot(family: Family, translator, sentence: str, path: str) -> str:
    """Writes the heatmap of `sentence` to `path`; returns the translation."""
    from nmt_keras.plotting import plot_attention

    alignment = translator.align(sentence)
    plot_attention(
        alignment.weights,
        alignment.source_tokens,
        alignment.target_tokens,
        path,
        title=f"{family.name}: {family.description}",
    )
    return alignment.translation


def attempt(what: str, function, *arguments) -> dict:
    """`function(*arguments)`, or `{"error": ...}` when it raises.

    Beam search and export are measured after training; a failure there (a search or an
    export still being written) is recorded, not fatal, so the other figures are kept and
    a later run of this script retries it.
    """
    try:
        return function(*arguments)
    except Exception as error:  # noqa: BLE001  (recorded, shown in the table, retried)
        traceback.print_exc()
        log(f"  {what} failed: {type(error).__name__}: {error}")
        return {"error": f"{type(error).__name__}: {error}"}


def evaluate_family(args, family: Family, run_dir: str, test: tuple[list, list]) -> dict:
    """Parameters, test scores greedy and beam, SavedModel speed and the heatmap."""
    from nmt_keras.run import load_run

    sources, references = test
    run = load_run(run_dir, "best")
    result: dict = {"parameters": int(run.model.count_params())}
    greedy = run.translator()
    log(f"  greedy decoding of {len(sources)} test sentences ...")
    tokenize = run.config.training.bleu_tokenize
    result["greedy"] = decode_and_score(greedy, sources, references, args.batch_size, tokenize)

    def beam_scores() -> dict:
        from nmt_keras.decoding import DecodingOptions

        options = DecodingOptions(beam_size=args.beam_size, length_penalty=args.length_penalty)
        return decode_and_score(
            run.translator(decoding=options), sources, references, args.batch_size, tokenize
        )

    log(f"  beam {args.beam_size} decoding ...")
    result["beam"] = attempt("beam search", beam_scores)
    log("  exporting and timing the SavedModel ...")
    result["saved_model"] = attempt("export", saved_model_speed, run, sources, args.batch_size)
    if run.model.has_attention:
        image = os.path.join("comparison", f"{family.name}.png")
        sentence = sources[args.attention_index]
        translation = attention_plot(family, greedy, sentence, os.path.join(args.out_dir, image))
        result["attention"] = {"image": image, "source": sentence, "translation": translation}
    speed = result["saved_model"].get("sentences_per_s")
    log(
        f"  BLEU greedy {result['greedy']['bleu']}, beam {result['beam'].get('bleu', 'n/a')}, "
        f"SavedModel {'n/a' if speed is None else f'{speed:.1f}'} sentences/s"
    )
    return result


# ----------------------------------------------------------------------------- one family


def read_json(path: str) -> dict | None:
    """A JSON file's contents, or None when it does not exist."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def write_json(path: str, value: dict) -> None:
    """Writes JSON atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as file:
        json.dump(value, file, indent=2)
    os.replace(path + ".tmp", path)


def evaluation_done(args, stored: dict) -> bool:
    """Whether `stored` holds a complete evaluation with these settings, heatmap included."""
    if stored.get("eval_settings") != eval_settings(args):
        return False
    evaluation = stored["evaluation"]
    if "error" in evaluation["beam"] or "error" in evaluation["saved_model"]:
        return False
    attention = evaluation.get("attention")
    return attention is None or os.path.isfile(os.path.join(args.out_dir, attention["image"]))


def run_family(args, family: Family, test: tuple[list, list]) -> dict:
    """Trains and evaluates one family, or reuses what its results file already holds."""
    from nmt_keras.config import Config, ConfigError

    recipe = os.path.join(RECIPES, family.recipe)
    if not os.path.isfile(recipe):
        return {"skipped": f"recipe training/configs/{family.recipe} not found"}
    settings = train_settings(args, family)
    try:
        config = Config.from_yaml(recipe, settings["overrides"])
    except ConfigError as error:
        return {"skipped": f"invalid config: {error}"}
    settings["config"] = config.to_dict()  # An edited recipe invalidates stored results.
    results_path = os.path.join(args.runs_dir, f"{family.name}.json")
    run_dir = os.path.join(args.runs_dir, family.name)
    stored = None if args.force else read_json(results_path)
    if stored is not None and stored["train_settings"] != settings:
        raise SystemExit(
            f"compare.py: error: {results_path} was trained with another config, budget, "
            "data or --set; pass --force to retrain or use another --runs-dir"
        )
    if stored is None:
        log(f"{family.name}: training {family.recipe} for {args.minutes} min into {run_dir}")
        stored = {
            "family": family.name,
            "description": family.description,
            "train_settings": settings,
            "train": train_family(family, config, run_dir),
        }
        write_json(results_path, stored)
    else:
        log(f"{family.name}: training recorded in {results_path}")
    if not evaluation_done(args, stored):
        log(f"{family.name}: evaluating")
        stored["evaluation"] = evaluate_family(args, family, run_dir, test)
        stored["eval_settings"] = eval_settings(args)
        write_json(results_path, stored)
    else:
        log(f"{family.name}: evaluation recorded in {results_path}")
    return stored


# ----------------------------------------------------------------------------- report


def number(value, digits: int = 1) -> str:
    """A table cell: the value rounded, or '-'."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def markdown(results: dict) -> str:
    """COMPARISON.md."""
    settings, machine = results["settings"], results["machine"]
    beam = f"beam {settings['beam_size']}"
    lines = [
        "# What each step buys",
        "",
        f"Every family trained for the same wall-clock budget of {settings['minutes']:g} "
        f"minutes on Multi30k {settings['src']}->{settings['tgt']} (`{settings['data']}`, "
        f"train split), then scored on {settings['test_sentences']} {settings['test']} "
        f"sentences with the best checkpoint by validation BLEU: greedy, and {beam} "
        f"with GNMT length penalty {settings['length_penalty']:g}, batches of "
        f"{settings['batch_size']}. Recipes: `training/configs/`; overrides for every "
        f"family: {', '.join(f'`{item}`' for item in settings['set']) or 'none'}. "
        "Written by `benchmarks/compare.py`; raw figures in `results/compare.json`.",
        "",
        f"Machine: {machine['cpu_model']}, {machine.get('cpus_usable', machine['cpu_count'])} "
        f"usable CPUs, GPUs: {', '.join(machine['gpus']) or 'none'}; Python "
        f"{machine['python']}, TensorFlow {machine['tensorflow']}, Keras {machine['keras']}, "
        f"{machine['platform']}. Load average at each family's start and end is in the "
        "JSON: families ran one after the other, so a shared machine disturbs them unequally.",
        "",
        f"| family | model | parameters | train tok/s | minutes | epochs | BLEU greedy "
        f"| chrF greedy | BLEU {beam} | chrF {beam} | SavedModel sent/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    images, signatures = [], None
    for name, entry in results["families"].items():
        description = BY_NAME[name].description
        if "skipped" in entry or "failed" in entry:
            reason = entry.get("skipped") or f"failed: {entry['failed']}"
            lines.append(f"| {name} | {description} | {reason} |" + " |" * 8)
            continue
        train, evaluation = entry["train"], entry["evaluation"]
        greedy, beam_scores = evaluation["greedy"], evaluation["beam"]
        signatures = signatures or (greedy["bleu_signature"], greedy["chrf_signature"])
        if "error" in beam_scores:
            beam_cells = "beam search failed (see JSON) | -"
        else:
            beam_cells = f"{beam_scores['bleu']:.2f} | {beam_scores['chrf']:.2f}"
        serving = evaluation["saved_model"]
        serving_cell = "export failed (see JSON)"
        if "error" not in serving:
            serving_cell = number(serving["sentences_per_s"])
        lines.append(
            f"| {name} | {description} | {number(evaluation['parameters'])} "
            f"| {number(train['target_tokens_per_s'], 0)} | {number(train['minutes'])} "
            f"| {number(train['epochs'], 2)} | {greedy['bleu']:.2f} | {greedy['chrf']:.2f} "
            f"| {beam_cells} | {serving_cell} |"
        )
        attention = evaluation.get("attention")
        if attention:
            images += [
                f"### {name}",
                "",
                f"{attention['source']} → {attention['translation']}",
                "",
                f"![{name} attention]({attention['image']})",
                "",
            ]
        else:
            images += [f"### {name}", "", "no attention (fixed-context model)", ""]
    lines += [
        "",
        "Columns: *train tok/s* is non-padding target tokens trained (optimizer steps x the "
        "mean target tokens of a training batch) per second of the whole training call, "
        "validation and per-epoch BLEU included; *minutes* is that call's wall-clock time "
        "(the last epoch finishes after the budget runs out); *epochs* is steps / batches "
        "per epoch; BLEU is cased sacreBLEU, chrF is chrF2, both on detokenized output; "
        "*SavedModel sent/s* is sentences per second of the exported greedy "
        f"`serving_default`, batches of {settings['batch_size']} in file order, one pass "
        "after a warm-up batch.",
        "",
    ]
    if signatures:
        lines += [f"Signatures: BLEU `{signatures[0]}`, chrF `{signatures[1]}`.", ""]
    if images:
        lines += [
            "## Attention",
            "",
            f"{settings['test']} sentence {settings['attention_index']}, greedy, best checkpoint.",
            "",
            *images,
        ]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from machine import machine_info

    from nmt_keras.data.corpus import read_parallel

    test = read_parallel(
        split_path(args, args.test, args.src), split_path(args, args.test, args.tgt)
    )
    sources, references = list(test.sources), list(test.targets)
    if args.test_limit:
        sources, references = sources[: args.test_limit], references[: args.test_limit]
    if args.attention_index >= len(sources):
        log(f"compare.py: error: --attention-index {args.attention_index} >= {len(sources)}")
        return 2
    results: dict = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {
            "data": os.path.abspath(args.data),
            "src": args.src,
            "tgt": args.tgt,
            "minutes": args.minutes,
            "set": args.set,
            "test_sentences": len(sources),
            **eval_settings(args),
        },
        "families": {},
    }
    for index, name in enumerate(args.families, start=1):
        family = BY_NAME[name]
        log(f"[{index}/{len(args.families)}] {name}")
        try:
            results["families"][name] = run_family(args, family, (sources, references))
        except Exception as error:  # noqa: BLE001  (reported; the other families still run)
            traceback.print_exc()
            results["families"][name] = {"failed": f"{type(error).__name__}: {error}"}
        if "skipped" in results["families"][name]:
            log(f"  skipped: {results['families'][name]['skipped']}")
    if hasattr(os, "getloadavg"):
        results["machine"]["loadavg_end"] = list(os.getloadavg())
    report = markdown(results)
    print(report)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "COMPARISON.md"), "w", encoding="utf-8") as file:
        file.write(report)
    write_json(os.path.join(args.out_dir, "results", "compare.json"), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
