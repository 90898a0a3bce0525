"""The next-purchase families, by name (TF-free, for the config and the CLI)."""

#: Neural families, in the order of the lineage: a fixed context vector, attention with the
#: candidate item as the query, self-attention over the events (see `NextPurchaseModel`).
MODEL_FAMILIES = ("gru", "gru-bahdanau", "gru-luong", "self-attention")
#: Families whose score attends over the events, so they can explain a recommendation.
ATTENTION_FAMILIES = MODEL_FAMILIES[1:]
#: Baselines that count instead of training (`nmt_keras.behaviour.baselines`).
BASELINES = (
    "popularity",
    "p-topfreq",
    "gp-topfreq",
    "decayed-topfreq",
    "repeat-basket",
    "tifu-knn",
    "up-cf",
)
#: Every family a config may name.
FAMILIES = BASELINES + MODEL_FAMILIES


def check_family(family: str, choices: tuple[str, ...] = FAMILIES, prefix: str = "") -> None:
    """Raises ValueError unless `family` is one of `choices`.

    Args:
        family: The name to check.
        choices: The allowed names.
        prefix: Prepended to the argument's name in the message (e.g. `"model."`).
    """
    if family not in choices:
        raise ValueError(
            f"Expected {prefix}family to be one of {', '.join(choices)}. "
            f"Received: {prefix}family={family!r}"
        )
