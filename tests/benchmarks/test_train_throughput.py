"""Smoke test of benchmarks/train_throughput.py on a tiny synthetic corpus."""

import gzip
import json
import os
import random
import subprocess
import sys

import pytest

SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "benchmarks",
    "train_throughput.py",
)
WORDS = {
    "de": "ein eine der die das mann frau hund katze kind spielt läuft sitzt auf im park".split(),
    "en": "a an the man woman dog cat child plays runs sits on in park street red".split(),
}


def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, SCRIPT, *args], capture_output=True, text=True, env=env, timeout=600
    )


def _write_corpus(folder, pairs=160):
    rng = random.Random(0)
    lengths = [rng.randint(2, 9) for _ in range(pairs)]
    for lang, words in WORDS.items():
        lines = [" ".join(rng.choice(words) for _ in range(n)) + " ." for n in lengths]
        with gzip.open(folder / f"train.{lang}.gz", "wt", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")


def test_missing_data_folder_is_one_line_error(tmp_path):
    result = _run("--data", str(tmp_path / "nope"))
    assert result.returncode != 0
    assert "data folder not found" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_runs_every_family_and_writes_json(tmp_path):
    _write_corpus(tmp_path)
    out = tmp_path / "out.json"
    result = _run(
        "--data", str(tmp_path), "--steps", "2", "--warmup", "1", "--repeats", "2",
        "--batch-size", "16", "--vocab-size", "40", "--word-vocab-size", "30",
        "--embedding-dim", "8", "--units", "8", "--families", "luong,bahdanau,seq2seq",
        "--jit-compile", "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| tutorial |" in result.stdout and "| bahdanau |" in result.stdout
    results = json.loads(out.read_text())
    families = ["luong", "bahdanau", "seq2seq"]
    assert list(results["models"]) == ["tutorial", *families, *(f"{f}-xla" for f in families)]
    assert "| bahdanau-xla |" in result.stdout and "tgt len 1-8" in result.stdout
    assert results["machine"]["cpu_count"] >= 1
    tutorial = results["models"]["tutorial"]
    assert tutorial["ratio_vs_tutorial"]["pairs_per_s"]["median"] == pytest.approx(1.0)
    for model in results["models"].values():
        assert len(model["runs"]) == 2
        assert model["median"]["pairs_per_s"] > 0
        assert model["median"]["target_tokens_per_s"] > model["median"]["pairs_per_s"]
        assert model["ratio_vs_tutorial"]["target_tokens_per_s"]["median"] > 0
        assert model["first_pass_seconds"] > 0
        assert sum(band["steps"] for band in model["by_target_length"]) == 2
    for name in families:
        plain, xla = results["models"][name], results["models"][f"{name}-xla"]
        assert not plain["jit_compile"] and xla["jit_compile"]
        assert xla["batches_padded_to_bucket"] and not plain["batches_padded_to_bucket"]
