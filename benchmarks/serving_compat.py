"""Do our exports run on the newest released TensorFlow Serving? Checked with its own TF.

    python benchmarks/serving_compat.py [--run runs/demo] [--tf-serving 2.20] \
        [--json benchmarks/results/serving_compat.json]      # or: make serving-compat

`tensorflow_model_server` X.Y is built on TensorFlow X.Y and, from 2.20 on, links the
tensorflow-text X.Y op library. Its loader is TensorFlow's C++ `SavedModelBundle`, which
the TensorFlow wheel of the same version exposes through its C API. So this script:

1. exports a run twice with this environment's TensorFlow (greedy, and beam 3 with the
   `nbest` signature), as a user would (`nmt_keras.export.export_run`; without `--run`,
   the tiny recipe is trained for a minute on the bundled Tatoeba corpus first);
2. runs every signature of both exports here through the C++ session loader, on
   sentences with and without accents, and an empty one;
3. makes a throw-away virtualenv with `tensorflow`, `tensorflow-text` and
   `tensorflow-serving-api` X.Y (hundreds of MB, cached by pip; not part of `make test`)
   and, in it, runs `nmt-keras audit` on each export (C++ loader, restore, init op,
   every warmup record through the server's Predict) and every signature again;
4. compares the outputs: identical strings and lengths, scores within 1e-4.

It exits non-zero, naming the export and signature, if anything fails or differs.
TF Serving 2.13-2.19 link tensorflow-text 2.12.1, which pip cannot install beside their
TensorFlow, so those servers cannot be reproduced this way.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from script_tools import REPO_ROOT, log  # noqa: E402  (benchmarks/ is the script's directory)

SENTENCES = ["Tengo hambre.", "¿Dónde está la estación de tren?", "", "Él lee un libro."]
#: Runs in either environment: every signature of a SavedModel through the C++ loader.
RUN_SIGNATURES = """
import json, sys
import numpy as np
from nmt_keras.serving.session_bundle import SessionBundle
from nmt_keras.serving.signatures import TEXT_INPUT
import tensorflow as tf, tensorflow_text
path, sentences = sys.argv[1], json.loads(sys.argv[2])
bundle = SessionBundle(path)
text = np.array([s.encode() for s in sentences], dtype=object)
outputs = {}
for name, signature in sorted(bundle.signature_defs.items()):
    if set(signature.inputs) != {TEXT_INPUT}:
        continue
    outputs[name] = {
        key: [v.decode("utf-8", "replace") if isinstance(v, bytes) else v
              for v in value.reshape(-1).tolist()]
        for key, value in bundle.run(name, {TEXT_INPUT: text}).items()
    }
print(json.dumps({"tensorflow": tf.__version__, "tensorflow_text": tensorflow_text.__version__,
                  "outputs": outputs}))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained run to export (default: train the tiny recipe)")
    parser.add_argument(
        "--tf-serving", default="2.20", help="TF Serving release X.Y to check (default: 2.20)"
    )
    parser.add_argument(
        "--venv", help="the virtualenv to make or reuse (default: a temporary one, removed)"
    )
    parser.add_argument("--json", help="write the results to this JSON file")
    return parser.parse_args(argv)


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Runs a command; exits naming it and its last output lines if it fails."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"serving_compat.py: `{' '.join(command[:4])} ...` failed:\n{tail}")
    return result


def trained_run(args, workdir: str) -> str:
    """`--run`, else the tiny recipe trained on the bundled corpus's first 3000 pairs."""
    if args.run:
        return args.run
    data = os.path.join(REPO_ROOT, "data", "tatoeba-spa-eng")
    run_dir = os.path.join(workdir, "run")
    log("training the tiny recipe on the bundled corpus (about a minute) ...")
    settings = {
        "data.train.source": f"{data}/train.es.gz",
        "data.train.target": f"{data}/train.en.gz",
        "data.valid.source": f"{data}/dev.es.gz",
        "data.valid.target": f"{data}/dev.en.gz",
        "data.max_train_pairs": "3000",
        "training.epochs": "3",
        "tokenizer.vocab_size": "500",
    }
    command = [sys.executable, "-m", "nmt_keras.cli", "train"]
    command += ["--config", os.path.join(REPO_ROOT, "training", "configs", "tiny.yaml")]
    command += ["--run-dir", run_dir]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    run(command, cwd=REPO_ROOT)
    return run_dir


def export_both(run_dir: str, base: str) -> dict[str, str]:
    """A greedy and a beam export of the run, with this environment's TensorFlow."""
    from nmt_keras.decoding import DecodingOptions
    from nmt_keras.export import export_run
    from nmt_keras.run import load_run

    trained = load_run(run_dir)
    return {
        "greedy": export_run(trained, os.path.join(base, "greedy")),
        "beam": export_run(
            trained, os.path.join(base, "beam"), decoding=DecodingOptions(beam_size=3, n_best=2)
        ),
    }


def signature_outputs(python: str, path: str, env: dict) -> dict:
    """Every signature's outputs on `SENTENCES`, computed by `python` through the C++ loader."""
    result = run([python, "-c", RUN_SIGNATURES, path, json.dumps(SENTENCES)], env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def make_venv(directory: str, release: str) -> str:
    """A virtualenv with TF Serving `release`'s TensorFlow and tensorflow-text; its python.

    An existing virtualenv at `directory` is reused (pip then only checks the pins).
    """
    python = os.path.join(directory, "bin", "python")
    if not os.path.isfile(python):
        log(f"making a virtualenv for TensorFlow {release} in {directory} ...")
        venv.create(directory, with_pip=True)
    log(f"installing TensorFlow {release} and its tensorflow-text there (pip, minutes) ...")
    packages = [f"{name}=={release}.*" for name in ("tensorflow", "tensorflow-text")]
    packages += [f"tensorflow-serving-api=={release}.*", "sentencepiece", "pyyaml", "matplotlib"]
    run([python, "-m", "pip", "install", "--quiet", *packages])
    return python


def compare(expected: dict, actual: dict, where: str) -> list[str]:
    """Differences between two `signature_outputs` results (empty when they agree)."""
    problems = []
    if set(expected) != set(actual):
        return [f"{where}: signatures {sorted(actual)} != {sorted(expected)}"]
    for name, outputs in expected.items():
        for key, values in outputs.items():
            other = actual[name].get(key)
            if other is None or len(other) != len(values):
                problems.append(f"{where} {name}.{key}: missing or a different size")
            elif values and isinstance(values[0], float):
                if max(abs(a - b) for a, b in zip(values, other, strict=True)) > 1e-4:
                    problems.append(f"{where} {name}.{key}: {other} != {values}")
            elif values != other:
                problems.append(f"{where} {name}.{key}: {other} != {values}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Runs the check; returns the exit status."""
    args = parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="nmt_serving_compat_")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    results: dict = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tf_serving": args.tf_serving,
        "sentences": SENTENCES,
        "exports": {},
    }
    try:
        exports = export_both(trained_run(args, workdir), os.path.join(workdir, "models"))
        python = make_venv(args.venv or os.path.join(workdir, "venv"), args.tf_serving)
        problems = []
        for kind, path in exports.items():
            here = signature_outputs(sys.executable, path, env)
            audit = run([python, "-m", "nmt_keras.cli", "audit", path], env=env).stdout
            there = signature_outputs(python, path, env)
            log(
                f"{kind}: exported with TF {here['tensorflow']}, loaded by TF {there['tensorflow']}"
            )
            log("  " + audit.strip().splitlines()[-1])
            problems += compare(here["outputs"], there["outputs"], kind)
            results["exports"][kind] = {
                "exported_with": here["tensorflow"],
                "loaded_with": {k: there[k] for k in ("tensorflow", "tensorflow_text")},
                "audit": audit.strip().splitlines()[-1],
                "signatures": sorted(there["outputs"]),
                "translations": there["outputs"]["serving_default"]["translation"],
            }
        results["ok"] = not problems
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2, ensure_ascii=False)
    for problem in problems:
        print(f"serving_compat.py: {problem}", file=sys.stderr)
    verdict = "OK" if results["ok"] else "FAILED"
    print(
        f"TF Serving {args.tf_serving} (TensorFlow and tensorflow-text {args.tf_serving}): "
        f"{verdict} for {', '.join(results['exports'])} exports"
    )
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
