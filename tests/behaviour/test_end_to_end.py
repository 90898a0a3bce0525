"""The second application through the real thing: CLI training, session-loader export, gRPC."""

import json
import os

import numpy as np
import pytest

from nmt_keras.behaviour.events import read_transactions
from nmt_keras.behaviour.examples import parse_date, time_split
from nmt_keras.behaviour.ranking import ranking_metrics
from nmt_keras.behaviour.run import BehaviourRunPaths, load_recommender
from nmt_keras.behaviour.training import python_ranker, rank, session_ranker
from nmt_keras.cli import main
from nmt_keras.export.audit import run_in_session
from nmt_keras.serving import Client, History, ServerOptions, start_server
from tests.behaviour.retail_data import write_transactions

HISTORY = History(
    ["20001", "20002", "20001"],
    [1293876000, 1293876000, 1296554400],
    [2.0, 2.0, -1.0],
    [1.25, 1.25, 1.25],
)


def write_config(tmp_path, transactions, family, repeat=False):
    config = tmp_path / f"{family}.yaml"
    config.write_text(
        f"name: {family}\n"
        f"data: {{transactions: {transactions}, cutoff: '2011-07-01', history_length: 6}}\n"
        f"model: {{family: {family}, units: 8, num_heads: 2, attention_units: 4, dropout: 0.0,"
        f" repeat: {str(repeat).lower()}, sequence_length: 4}}\n"
        "training: {batch_size: 16, negatives: 8, epochs: 2, top_k: 3}\n"
    )
    return str(config)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A repeat-aware gru-luong run trained by `nmt-keras behaviour train` on synthetic data."""
    root = tmp_path_factory.mktemp("retail")
    transactions = write_transactions(root / "retail.csv.gz")
    run_dir = str(root / "run")
    config = write_config(root, transactions, "gru-luong", repeat=True)
    assert main(["behaviour", "train", "--config", config, "--run-dir", run_dir]) == 0
    return root, transactions, run_dir


def test_training_writes_a_run_with_its_metrics(trained):
    _, _, run_dir = trained
    paths = BehaviourRunPaths(run_dir)
    metrics = json.loads(open(paths.metrics).read())
    assert metrics["family"] == "gru-luong" and metrics["examples"] > 0
    assert 0.0 <= metrics["recall@3"] <= 1.0 and metrics["parameters"] > 0
    assert len(metrics["per_example"]["recall@3"]) == metrics["examples"]
    assert 0.0 <= metrics["repeat_share@3"] <= 1.0
    _, recommender = load_recommender(run_dir)
    assert recommender.k == 3 and recommender.explains and recommender.model.repeat


@pytest.mark.parametrize("family", ["popularity", "repeat-basket", "decayed-topfreq", "up-cf"])
def test_baselines_count_and_evaluate(trained, family, capsys):
    root, transactions, _ = trained
    run_dir = str(root / family)
    config = write_config(root, transactions, family)
    assert main(["behaviour", "train", "--config", config, "--run-dir", run_dir]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["parameters"] == 0 and metrics["hit_rate@3"] > 0.0
    tuned = family in ("decayed-topfreq", "up-cf")
    assert bool(metrics["hyperparameters"]) == tuned
    export = ["behaviour", "export", "--run", run_dir, "--model_base_path", str(root / "x")]
    assert main(export) == 2


def test_the_session_loader_ranks_as_python_does(trained, capsys):
    root, transactions, run_dir = trained
    base = root / "ranked"
    assert main(["behaviour", "export", "--run", run_dir, "--model_base_path", str(base)]) == 0
    version = capsys.readouterr().out.strip()
    config, recommender = load_recommender(run_dir)
    invoices, _ = read_transactions(transactions)
    _, test = time_split(invoices, parse_date(config.data.cutoff), config.data.history_length)
    in_python = rank(python_ranker(recommender), test)
    assert rank(session_ranker(version), test) == in_python
    metrics = json.loads(open(BehaviourRunPaths(run_dir).metrics).read())
    assert ranking_metrics(in_python, test.targets, 3)["recall@3"] == metrics["recall@3"]


def test_export_serves_products_and_attention_over_grpc(trained, capsys):
    root, transactions, run_dir = trained
    base = root / "served"
    # The positional run of earlier releases still works, with a one-line deprecation.
    assert main(["behaviour", "export", run_dir, "--model_base_path", str(base)]) == 0
    captured = capsys.readouterr()
    version = captured.out.strip()
    assert captured.err.count("\n") == 1 and "use `behaviour export --run RUN`" in captured.err
    assert version == str(base / "1")
    assert run_in_session(version) > 0  # the C++ session loader replays every warmup record
    _, recommender = load_recommender(run_dir)
    local = recommender.recommend(
        [list(HISTORY.items)],
        [list(HISTORY.timestamps)],
        [list(HISTORY.quantities)],
        [list(HISTORY.prices)],
        explain=True,
    )
    server = start_server(ServerOptions(port=0, model_name="retail", model_base_path=str(base)))
    try:
        with Client(f"127.0.0.1:{server.grpc_port}", "retail") as client:
            served, empty = client.recommend([HISTORY, History([], [], [], [])], explain=True)
        target = f"127.0.0.1:{server.grpc_port}"
        picture = root / "served.png"
        assert (
            main(
                [
                    "behaviour",
                    "explain",
                    "--target",
                    target,
                    "--transactions",
                    transactions,
                    "--customer",
                    "12001",
                    "--output",
                    str(picture),
                ]
            )
            == 0
        )
        assert picture.stat().st_size > 0
    finally:
        server.stop(grace=1)
    assert served.products == [code.decode() for code in local["products"].numpy()[0]]
    np.testing.assert_allclose(served.scores, local["scores"].numpy()[0], rtol=1e-5)
    assert served.attention.shape == (3, 3)
    np.testing.assert_allclose(served.attention, local["attention"].numpy()[0], rtol=1e-5)
    np.testing.assert_allclose(served.attention.sum(-1), 1.0, rtol=1e-5)
    assert len(empty.products) == 3 and empty.attention.shape == (3, 0)


def test_explain_plots_a_customer_from_the_run(trained, capsys):
    root, transactions, run_dir = trained
    picture = root / "explain.png"
    argv = [
        "behaviour",
        "explain",
        "--run",
        run_dir,
        "--transactions",
        transactions,
        "--customer",
        "12003",
        "--before",
        "2011-07-01",
        "--output",
        str(picture),
    ]
    assert main(argv) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3  # one line per product
    assert os.path.getsize(picture) > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--customer", "99999"], "Expected a customer of the transactions"),
        (["--customer", "12003", "--before", "2011-13-01"], "Expected a date"),
        (["--customer", "12003", "--before", "2010-01-01"], "before the date"),
    ],
)
def test_explain_errors_are_one_line(trained, capsys, argv, message):
    _, transactions, run_dir = trained
    code = main(["behaviour", "explain", "--run", run_dir, "--transactions", transactions, *argv])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error


def test_an_unknown_config_key_is_one_line(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("model: {famly: gru}\n")
    assert main(["behaviour", "train", "--config", str(config)]) == 2
    assert "Unknown config key 'model.famly'" in capsys.readouterr().err


def test_a_cutoff_after_every_invoice_is_one_line(trained, tmp_path, capsys):
    _, transactions, _ = trained
    config = write_config(tmp_path, transactions, "gru")
    argv = ["behaviour", "train", "--config", config, "--set", "data.cutoff=2012-01-01"]
    assert main([*argv, "--run-dir", str(tmp_path / "run")]) == 2
    assert "expected purchase invoices on both sides of data.cutoff" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "needs the run directory: --run RUN"),
        (["runs/a", "--run", "runs/b"], "Give the run once"),
    ],
)
def test_export_needs_one_run(tmp_path, capsys, argv, message):
    base = ["behaviour", "export", "--model_base_path", str(tmp_path / "models")]
    assert main([*base, *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "models").exists()
