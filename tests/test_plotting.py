import logging
import os
import warnings

import matplotlib
import numpy as np
import pytest
from matplotlib import font_manager

from nmt_keras import plotting
from nmt_keras.plotting import CJK_FONT, FONT_FAMILY, attention_image, plot_attention

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SOURCE = ["<s>", "▁un", "▁perro", "</s>"]
TARGET = ["▁a", "▁dog", "</s>"]


def weights(rows=3, columns=4, seed=0):
    values = np.random.default_rng(seed).uniform(size=(rows, columns))
    return values / values.sum(axis=1, keepdims=True)


def test_writes_a_png(tmp_path):
    path = tmp_path / "attention.png"
    plot_attention(weights(), SOURCE, TARGET, str(path), title="un perro")
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 1000
    assert sorted(os.listdir(tmp_path)) == ["attention.png"]  # no temporary file left


def test_creates_missing_directories_and_overwrites(tmp_path):
    path = tmp_path / "a" / "b" / "plot.png"
    plot_attention(weights(), SOURCE, TARGET, str(path))
    first = path.read_bytes()
    plot_attention(weights(seed=1), SOURCE, TARGET, str(path), title="second")
    second = path.read_bytes()
    assert first[:8] == second[:8] == PNG_MAGIC
    assert first != second
    assert os.listdir(path.parent) == ["plot.png"]


def test_image_grows_with_the_sentence(tmp_path):
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    plot_attention(weights(), SOURCE, TARGET, str(small))
    source = [f"▁w{i}" for i in range(12)]
    target = [f"▁t{i}" for i in range(10)]
    plot_attention(weights(10, 12), source, target, str(large))

    def size(path):  # width and height from the PNG IHDR chunk
        data = path.read_bytes()
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")

    assert size(large)[0] > size(small)[0] and size(large)[1] > size(small)[1]


def test_accepts_nested_lists(tmp_path):
    path = tmp_path / "list.png"
    plot_attention(weights().tolist(), SOURCE, TARGET, str(path))
    assert path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    "shape, source, target",
    [
        ((4, 3), SOURCE, TARGET),  # transposed
        ((3, 4), SOURCE[:3], TARGET),
        ((3, 4), SOURCE, TARGET + ["x"]),
        ((12,), SOURCE, TARGET),
    ],
)
def test_shape_mismatch_raises_and_writes_nothing(tmp_path, shape, source, target):
    path = tmp_path / "bad.png"
    with pytest.raises(ValueError, match=r"Expected weights of shape"):
        plot_attention(np.zeros(shape), source, target, str(path))
    assert not path.exists()
    assert os.listdir(tmp_path) == []


def test_attention_image_is_rgb_pixels_of_the_png_size(tmp_path):
    pixels = attention_image(weights(), SOURCE, TARGET, title="un perro")
    path = tmp_path / "attention.png"
    plot_attention(weights(), SOURCE, TARGET, str(path), title="un perro")
    data = path.read_bytes()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert pixels.dtype == np.uint8
    assert pixels.shape == (height, width, 3)
    assert pixels.std() > 10  # a picture, not a blank canvas


def test_attention_image_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="len\\(target_tokens\\)"):
        attention_image(weights(), SOURCE[:2], TARGET)


# Simplified and Traditional Chinese, Japanese kana, Hangul, CJK punctuation.
CJK_SOURCE = ["▁我", "们", "进", "這", "这", "ひら", "カナ", "한글", "。", "，"]
CJK_TARGET = ["▁we", "▁go", "</s>"]


def glyph_font(character):
    """The file matplotlib's per-glyph fallback draws `character` from in the heatmaps."""
    fonts = font_manager.fontManager._find_fonts_by_props(
        font_manager.FontProperties(family=FONT_FAMILY)
    )
    for font in fonts:
        if font_manager.get_font(font).get_char_index(ord(character)):
            return str(font)
    return None


def test_font_family_names_the_bundled_cjk_font():
    assert os.path.isfile(CJK_FONT)
    assert FONT_FAMILY[-1] == font_manager.get_font(CJK_FONT).family_name


@pytest.mark.parametrize("character", sorted(set("".join(CJK_SOURCE)) - {"▁"}))
def test_cjk_characters_fall_back_to_the_cjk_font(character):
    assert glyph_font(character) == CJK_FONT


@pytest.mark.parametrize("character", "a▁<>/é")
def test_latin_characters_keep_dejavu_sans(character):
    assert os.path.basename(glyph_font(character)) == "DejaVuSans.ttf"


def test_cjk_heatmap_has_no_missing_glyphs(tmp_path, caplog):
    title = "我们去学校 $5 和 $10"  # "$" pairs would start mathtext, which lacks the fallback
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" is a UserWarning
        plot_attention(weights(3, 10), CJK_SOURCE, CJK_TARGET, str(tmp_path / "a.png"), title)
        attention_image(weights(3, 10), CJK_SOURCE, CJK_TARGET, title)
    assert "glyph" not in caplog.text.lower()  # mathtext logs its missing glyphs


def one_token_image(token):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the control renders boxes on purpose
        return attention_image(np.ones((1, 1)), [token], ["▁x"])


def test_cjk_glyphs_are_drawn_not_boxes(monkeypatch):
    # Every missing glyph is the same empty box, so two characters render alike only as boxes.
    assert not np.array_equal(one_token_image("进"), one_token_image("这"))
    monkeypatch.setitem(plotting._RC, "font.family", ["DejaVu Sans"])  # the bug, as control
    assert np.array_equal(one_token_image("进"), one_token_image("这"))


def test_user_settings_are_left_alone(tmp_path):
    before = dict(matplotlib.rcParams)
    plot_attention(weights(3, 10), CJK_SOURCE, CJK_TARGET, str(tmp_path / "a.png"))
    attention_image(weights(3, 10), CJK_SOURCE, CJK_TARGET)
    assert dict(matplotlib.rcParams) == before
