"""Chinese <-> English on the demo's path.

The demo recipe with only its corpus paths changed (and a few steps, so that it takes
seconds) trains, evaluates, exports, serves and plots attention, as `make demo` does.
"""

import warnings

import pytest

from nmt_keras.cli import main
from nmt_keras.export import export_run
from nmt_keras.plotting import plot_attention
from nmt_keras.run import load_run
from nmt_keras.serving import AUTO_PORT, Client, ServerOptions, start_server
from nmt_keras.text.tokenizer import UNK_ID
from tests.toy_data import REPO_ROOT, chinese_english_pairs, write_lines

DEMO_RECIPE = REPO_ROOT / "training" / "configs" / "demo.yaml"
# Not the recipe's model or tokenizer settings: only its length, so a test takes seconds.
FEW_STEPS = [
    "training.epochs=1",
    "training.steps_per_epoch=3",
    "training.max_minutes=null",
    "training.bleu_samples=8",
]
UNSEEN = "你們喜歡鬱金香嗎？"  # Traditional characters the corpus does not have


@pytest.fixture(
    scope="module",
    params=["zh-en", pytest.param("en-zh", marks=pytest.mark.slow)],
)
def demo_run(request, tmp_path_factory):
    """`nmt-keras train` of the demo recipe on the Chinese corpus, in one direction."""
    source_language, target_language = request.param.split("-")
    directory = tmp_path_factory.mktemp(request.param)
    pairs = chinese_english_pairs()
    by_language = {"zh": [zh for zh, _ in pairs], "en": [en for _, en in pairs]}
    source = write_lines(directory / f"corpus.{source_language}", by_language[source_language])
    target = write_lines(directory / f"corpus.{target_language}", by_language[target_language])
    run_dir = directory / "run"
    settings = [
        f"data.{split}.{side}={path}"
        for split in ("train", "valid", "test")
        for side, path in (("source", source), ("target", target))
    ]
    args = ["train", "--config", str(DEMO_RECIPE), "--run-dir", str(run_dir)]
    for setting in settings + FEW_STEPS:
        args += ["--set", setting]
    assert main(args) == 0
    return request.param, load_run(str(run_dir)), by_language[source_language]


def test_the_chinese_tokenizer_keeps_unseen_characters(demo_run):
    direction, run, _ = demo_run
    tokenizer = run.source_tokenizer if direction == "zh-en" else run.target_tokenizer
    ids = tokenizer.tokenize([UNSEEN])[0].numpy().tolist()
    assert UNK_ID not in ids
    assert tokenizer.detokenize([ids]).numpy()[0].decode() == UNSEEN


def test_evaluate_scores_with_the_target_languages_tokenizer(demo_run, capsys):
    direction, run, _ = demo_run
    assert main(["evaluate", "--run", run.paths.root]) == 0
    expected = "tok:zh" if direction == "en-zh" else "tok:13a"
    out = capsys.readouterr().out
    assert expected in out and "chrF2" in out


def test_export_serves_chinese_through_grpc_and_draws_its_attention(demo_run, tmp_path, recwarn):
    direction, run, sources = demo_run
    export_run(run, tmp_path / "models")  # audited through TF's C++ session loader
    sentences = [*sources[:5], UNSEEN if direction == "zh-en" else "Do you like tulips?"]
    options = ServerOptions(
        port=AUTO_PORT, rest_api_port=0, model_name="demo", model_base_path=str(tmp_path / "models")
    )
    with start_server(options) as server, Client(f"127.0.0.1:{server.grpc_port}", "demo") as client:
        served = client.translate(sentences, align=True)
    assert [t.text for t in served] == run.translator().translate_all(sentences)
    alignment = served[-1].alignment
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" fails the test
        plot_attention(
            alignment.weights,
            alignment.source_tokens,
            alignment.target_tokens,
            str(tmp_path / "attention.png"),
            title=sentences[-1],
        )
    assert (tmp_path / "attention.png").read_bytes()[:4] == b"\x89PNG"
