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
def test_runs_the_families_and_writes_json(tmp_path):
    transactions = write_transactions(tmp_path / "retail.csv.gz")
    out = tmp_path / "behaviour.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, SCRIPT, "--transactions", transactions, "--minutes", "1",
         "--families", "popularity,repeat-basket,gru", "--json", str(out),
         "--set", "data.cutoff=2011-07-01", "--set", "model.units=8",
         "--set", "training.epochs=1", "--set", "training.negatives=8"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| repeat-basket |" in result.stdout and "| gru |" in result.stdout
    report = json.loads(out.read_text())
    assert [row["family"] for row in report["results"]] == ["popularity", "repeat-basket", "gru"]
    assert report["minutes_per_family"] == 1.0 and report["machine"]["cpu_count"] >= 1
    assert report["results"][2]["parameters"] > 0 and report["results"][2]["epochs"] == 1
