"""Rules on arguments that the layers and the configuration share, each defined once.

A layer calls a rule with its own argument names; `nmt_keras.config` calls it with the
config path as `prefix` (`"model."`), so a bad value is rejected by the same check, with
the same words, whether it comes from a Keras script or a YAML file. TensorFlow-free, so
the configuration can be checked without importing it.
"""

from __future__ import annotations

#: `character_coverage` value that sizes the alphabet from the corpus and the vocabulary.
AUTO_COVERAGE = "auto"
#: The lowest `character_coverage` SentencePiece accepts (trainer_interface.cc).
MIN_COVERAGE = 0.98


def check_bidirectional_units(units: int, bidirectional: bool, prefix: str = "") -> None:
    """A bidirectional encoder splits `units` between its two directions.

    Raises:
        ValueError: If `bidirectional` and `units` is odd.
    """
    if bidirectional and units % 2:
        raise ValueError(
            f"Expected even {prefix}units with {prefix}bidirectional=True. "
            f"Received: {prefix}units={units}"
        )


def check_num_heads(units: int, num_heads: int, prefix: str = "") -> None:
    """Multi-head attention splits `units` evenly between its heads.

    Raises:
        ValueError: If `num_heads` is not a positive divisor of `units`.
    """
    if num_heads < 1 or units % num_heads:
        raise ValueError(
            f"Expected {prefix}num_heads to divide {prefix}units. "
            f"Received: {prefix}units={units}, {prefix}num_heads={num_heads}"
        )


def check_alignment_head(alignment_head: int | None, num_heads: int, prefix: str = "") -> None:
    """`alignment_head` is None (average the heads) or a head, in Python indexing.

    Raises:
        ValueError: If `alignment_head` is outside `[-num_heads, num_heads)`.
    """
    if alignment_head is not None and not -num_heads <= alignment_head < num_heads:
        raise ValueError(
            f"Expected {prefix}alignment_head to be None or in [{-num_heads}, {num_heads}). "
            f"Received: {prefix}alignment_head={alignment_head}, {prefix}num_heads={num_heads}"
        )


def check_character_coverage(character_coverage: float | str, prefix: str = "") -> None:
    """`character_coverage` is `"auto"` or a fraction SentencePiece accepts.

    Raises:
        ValueError: naming the value received.
    """
    if character_coverage == AUTO_COVERAGE:
        return
    if (
        isinstance(character_coverage, bool)
        or not isinstance(character_coverage, (int, float))
        or not MIN_COVERAGE <= character_coverage <= 1.0
    ):
        raise ValueError(
            f"Expected {prefix}character_coverage in [{MIN_COVERAGE}, 1] or {AUTO_COVERAGE!r}. "
            f"Received: {prefix}character_coverage={character_coverage!r}"
        )
