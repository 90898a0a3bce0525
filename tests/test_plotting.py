import os

import numpy as np
import pytest

from nmt_keras.plotting import attention_image, plot_attention

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
