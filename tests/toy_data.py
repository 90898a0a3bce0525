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


def chinese_english_pairs() -> list[tuple[str, str]]:
    """A small Chinese-English corpus: unsegmented Chinese, full-width punctuation.

    Made from templates (subject, verb, object, statement or question), 144 pairs, with
    a few Traditional characters as in real Chinese corpora.
    """
    subjects = [("我", "I", "do"), ("你", "you", "do"), ("我们", "we", "do")]
    subjects += [("他们", "they", "do"), ("她", "she", "does"), ("他", "he", "does")]
    verbs = [("喜欢", "like"), ("想要", "want")]
    objects = [("猫", "cats"), ("狗", "dogs"), ("茶", "tea"), ("書", "books")]
    objects += [("苹果", "apples"), ("音樂", "music")]
    pairs = []
    for zh_subject, en_subject, auxiliary in subjects:
        for zh_verb, en_verb in verbs:
            for zh_object, en_object in objects:
                verb = en_verb + "s" if auxiliary == "does" else en_verb
                pairs.append(
                    (
                        f"{zh_subject}{zh_verb}{zh_object}。",
                        f"{en_subject.capitalize()} {verb} {en_object}.",
                    )
                )
                pairs.append(
                    (
                        f"{zh_subject}{zh_verb}{zh_object}吗？",
                        f"{auxiliary.capitalize()} {en_subject} {en_verb} {en_object}?",
                    )
                )
    return pairs
