"""The exported model behind the local server, reached through the gRPC client and REST."""

import json
import urllib.request

import numpy as np
import pytest

from nmt_keras.cli import main
from nmt_keras.decoding import DecodingOptions
from nmt_keras.export import export_run
from nmt_keras.serving import AUTO_PORT, Client, ServerOptions, start_server
from tests.toy_data import TOY_PAIRS


@pytest.fixture(scope="module")
def server(version_dir, model_base_path):
    options = ServerOptions(
        port=AUTO_PORT,
        rest_api_port=AUTO_PORT,
        model_name="nmt",
        model_base_path=str(model_base_path),
        file_system_poll_wait_seconds=0,
    )
    with start_server(options) as running:
        yield running


def test_client_translations_equal_the_local_translator(server, trained_run):
    sources = [source for source, _ in TOY_PAIRS] + ["", "x " * 500]
    translator = trained_run.translator()
    expected = translator.translate_all(sources)
    with Client(f"127.0.0.1:{server.grpc_port}", "nmt", max_batch_size=3) as client:
        served = client.translate(sources)
    assert [translation.text for translation in served] == expected
    assert served[len(TOY_PAIRS)].text == "" and served[len(TOY_PAIRS)].score == 0.0


def test_served_alignment_equals_the_local_alignment(server, trained_run):
    local = trained_run.translator().align(TOY_PAIRS[0][0])
    with Client(f"127.0.0.1:{server.grpc_port}", "nmt") as client:
        (served,) = client.translate([TOY_PAIRS[0][0]], align=True)
    assert served.alignment.source_tokens == local.source_tokens
    assert served.alignment.target_tokens == local.target_tokens
    np.testing.assert_allclose(served.alignment.weights, local.weights, atol=1e-6)


def test_rest_predict_on_the_exported_model(server, trained_run):
    expected = trained_run.translator().translate_all([TOY_PAIRS[1][0]])
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.rest_port}/v1/models/nmt:predict",
        data=json.dumps({"instances": [TOY_PAIRS[1][0]]}).encode(),
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        predictions = json.loads(response.read())["predictions"]
    assert predictions[0]["translation"] == expected[0]


def test_client_command_writes_translations_and_the_served_attention(
    server, trained_run, tmp_path, capsys
):
    source = tmp_path / "in.txt"
    source.write_text(f"{TOY_PAIRS[2][0]}\n", encoding="utf-8")
    png = tmp_path / "served.png"
    target = f"127.0.0.1:{server.grpc_port}"
    args = ["client", "--target", target, "--model_name", "nmt", "--input", str(source)]
    assert main([*args, "--align", str(png)]) == 0
    expected = trained_run.translator().translate_all([TOY_PAIRS[2][0]])
    assert capsys.readouterr().out.splitlines() == expected
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_client_command_names_an_unknown_model(server, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("ein hund\n", encoding="utf-8")
    target = f"127.0.0.1:{server.grpc_port}"
    status = main(["client", "--target", target, "--model_name", "nope", "--input", str(source)])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nmt-keras: error: ") and "NOT_FOUND" in err and "nope" in err
    assert len(err.splitlines()) == 1


def test_client_command_with_no_server(tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("ein hund\n", encoding="utf-8")
    args = ["client", "--target", "127.0.0.1:1", "--input", str(source), "--timeout", "2"]
    assert main(args) == 2
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_client_command_prints_the_served_nbest_lists(trained_run, tmp_path, capsys):
    decoding = DecodingOptions(beam_size=3, n_best=2)
    export_run(trained_run, tmp_path / "beam", decoding=decoding)
    options = ServerOptions(
        port=AUTO_PORT, model_name="beam", model_base_path=str(tmp_path / "beam")
    )
    sources = [source for source, _ in TOY_PAIRS[:3]]
    source = tmp_path / "in.txt"
    source.write_text("".join(f"{line}\n" for line in sources), encoding="utf-8")
    with start_server(options) as running:
        target = f"127.0.0.1:{running.grpc_port}"
        args = ["client", "--target", target, "--model_name", "beam", "--input", str(source)]
        assert main([*args, "--n-best"]) == 0
    lines = capsys.readouterr().out.splitlines()
    local = trained_run.translator(decoding=decoding).nbest_all(sources)
    assert lines == [
        f"{index} ||| {text} ||| {score:.4f}"
        for index, hypotheses in enumerate(local)
        for text, score in hypotheses
    ]
