"""Attention heatmaps: which source tokens each target token looked at.

Labels are drawn with DejaVu Sans (matplotlib's default); glyphs it lacks (Chinese, Japanese,
Korean) fall back per glyph to Noto Sans CJK SC, which the `mplfonts` dependency ships. The
fonts apply to this module's figures only: the user's own matplotlib settings are untouched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.figure  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import mplfonts.conf  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from nmt_keras.atomic import atomic_write

#: Resolution of the rendered heatmaps, dots per inch.
DPI = 120

#: Noto Sans CJK SC (SIL Open Font License 1.1) from `mplfonts`: Simplified and Traditional
#: Chinese, Japanese kana and Hangul. Only the file is used; `mplfonts`' functions, which
#: rewrite matplotlib's settings, are not called.
CJK_FONT = os.path.join(mplfonts.conf.FONT_DIR, "NotoSansCJKsc-Regular.otf")

#: The fonts of the heatmaps, in order of preference; matplotlib takes each glyph from the
#: first font that has it.
FONT_FAMILY = ["DejaVu Sans", "Noto Sans CJK SC"]

font_manager.fontManager.addfont(CJK_FONT)  # makes the family name findable; changes no setting

#: matplotlib settings of the heatmaps, applied around drawing and saving. Tokens are literal
#: text: "$" in a sentence must not start mathtext, which has no fallback to the CJK font.
_RC = {"font.family": FONT_FAMILY, "text.parse_math": False}


def _attention_figure(
    weights: np.ndarray,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    title: str | None,
    axis_labels: tuple[str, str] = ("source", "target"),
) -> matplotlib.figure.Figure:
    """A labelled heatmap of `(tgt_len, src_len)` weights; the caller closes it."""
    weights = np.asarray(weights, dtype=np.float32)
    if weights.shape != (len(target_tokens), len(source_tokens)):
        raise ValueError(
            "Expected weights of shape (len(target_tokens), len(source_tokens)). "
            f"Received: weights.shape={weights.shape}, {len(target_tokens)} target tokens, "
            f"{len(source_tokens)} source tokens"
        )
    height = max(3.0, 0.35 * len(target_tokens) + 1.5)
    width = max(4.0, 0.45 * len(source_tokens) + 2.0)
    figure, axes = plt.subplots(figsize=(width, height), dpi=DPI)
    image = axes.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(source_tokens)), labels=source_tokens, rotation=90)
    axes.set_yticks(range(len(target_tokens)), labels=target_tokens)
    axes.set_xlabel(axis_labels[0])
    axes.set_ylabel(axis_labels[1])
    if title:
        axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    return figure


@matplotlib.rc_context(_RC)
def plot_attention(
    weights: np.ndarray,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    path: str,
    title: str | None = None,
    axis_labels: tuple[str, str] = ("source", "target"),
) -> None:
    """Writes a heatmap of attention weights as a PNG, atomically.

    Args:
        weights: `(tgt_len, src_len)` weights, rows summing to 1.
        source_tokens: `src_len` labels of the columns.
        target_tokens: `tgt_len` labels of the rows.
        path: Output PNG file.
        title: Optional title (e.g. the source sentence).
        axis_labels: The names of the columns and of the rows.

    Raises:
        ValueError: if the labels do not match the shape of `weights`.
    """
    figure = _attention_figure(weights, source_tokens, target_tokens, title, axis_labels)
    try:
        with atomic_write(path) as file:
            figure.savefig(file, format="png")
    finally:
        plt.close(figure)


@matplotlib.rc_context(_RC)
def attention_image(
    weights: np.ndarray,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    title: str | None = None,
) -> np.ndarray:
    """Renders the heatmap of `plot_attention` to pixels, e.g. for `tf.summary.image`.

    Args:
        weights: `(tgt_len, src_len)` weights.
        source_tokens: `src_len` labels of the columns.
        target_tokens: `tgt_len` labels of the rows.
        title: Optional title.

    Returns:
        uint8 RGB pixels `(height, width, 3)`.

    Raises:
        ValueError: if the labels do not match the shape of `weights`.
    """
    figure = _attention_figure(weights, source_tokens, target_tokens, title)
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return pixels
