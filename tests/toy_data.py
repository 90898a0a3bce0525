"""Toy corpora and recipe arguments shared by the tests."""

import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
TINY_RECIPE = REPO_ROOT / "training" / "configs" / "tiny.yaml"

TOY_PAIRS = [
    ("ein hund läuft", "a dog runs"),
    ("eine katze schläft", "a cat sleeps"),
    ("der mann isst brot", "the man eats bread"),
    ("die frau liest ein buch", "the woman reads a book"),
    ("ein kind spielt", "a child plays"),
    ("zwei hunde laufen schnell", "two dogs run fast"),
]


def write_lines(path: pathlib.Path, lines) -> pathlib.Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def tiny_train_args(source, target, run_dir, *overrides):
    """`nmt-keras train` arguments for the tiny recipe on the given corpus."""
    args = ["train", "--config", str(TINY_RECIPE), "--run-dir", str(run_dir)]
    settings = [
        f"data.train.source={source}",
        f"data.train.target={target}",
        f"data.valid.source={source}",
        f"data.valid.target={target}",
        *overrides,
    ]
    for setting in settings:
        args += ["--set", setting]
    return args
