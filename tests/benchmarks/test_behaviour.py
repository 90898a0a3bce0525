"""Tests of benchmarks/behaviour.py: every family side by side, on synthetic transactions."""

import json
import os
import subprocess
import sys

import pytest

from tests.behaviour.retail_data import write_transactions

SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "benchmarks",
    "behaviour.py",
)


@pytest.mark.slow
def test_runs_the_families_over_seeds_and_compares_them(tmp_path):
    transactions = write_transactions(tmp_path / "retail.csv.gz")
    out = tmp_path / "behaviour.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, SCRIPT, "--transactions", transactions, "--minutes", "1",
         "--families", "popularity,decayed-topfreq,gru,gru+repeat", "--seeds", "0,1",
         "--session-check", "--json", str(out),
         "--set", "data.cutoff=2011-07-01", "--set", "data.history_length=8",
         "--set", "model.units=8", "--set", "training.epochs=1",
         "--set", "training.negatives=8"],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| decayed-topfreq | 1 |" in result.stdout and "| gru+repeat | 2 |" in result.stdout
    assert "against decayed-topfreq" in result.stdout or "against popularity" in result.stdout
    report = json.loads(out.read_text())
    families = [row["family"] for row in report["results"]]
    assert families == ["popularity", "decayed-topfreq", "gru", "gru+repeat"]
    assert report["minutes_per_run"] == 1.0 and report["machine"]["cpu_count"] >= 1
    repeat = report["results"][3]
    assert repeat["seeds"] == [0, 1] and repeat["parameters"] > 0 and repeat["epochs"] == 1
    assert repeat["recall@10"]["min"] <= repeat["recall@10"]["mean"] <= repeat["recall@10"]["max"]
    assert report["results"][1]["hyperparameters"]  # chosen on the validation window
    assert 0.0 < report["comparison"]["recall@10"]["p_value"] <= 1.0
    assert report["session_check"]["identical"]


@pytest.mark.slow
def test_a_validation_run_evaluates_the_window_before_the_cutoff(tmp_path):
    transactions = write_transactions(tmp_path / "retail.csv.gz")
    out = tmp_path / "behaviour.json"
    result = subprocess.run(
        [sys.executable, SCRIPT, "--transactions", transactions, "--families", "popularity",
         "--validation", "--json", str(out), "--set", "data.cutoff=2011-07-01"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["split"] == "validation"
    assert (report["config"]["data"]["cutoff"], report["config"]["data"]["end"]) == (
        "2011-06-01",
        "2011-07-01",
    )
