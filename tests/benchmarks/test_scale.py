"""Tests of benchmarks/scale.py: the corpus generator, and the whole script on tiny sizes."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "benchmarks"
)
SCRIPT = os.path.join(BENCHMARKS, "scale.py")


@pytest.fixture
def scale(monkeypatch):
    """The script as a module (it imports `script_tools` from its own folder)."""
    monkeypatch.syspath_prepend(BENCHMARKS)
    spec = importlib.util.spec_from_file_location("scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lines(path):
    with open(path, encoding="utf-8") as file:
        return file.read().split("\n")


def test_generated_corpora_are_aligned_deterministic_prefixes(scale, tmp_path):
    folders = scale.generate(str(tmp_path / "a"), [150, 400], seed=3)
    scale.generate(str(tmp_path / "b"), [150], seed=3)
    scale.generate(str(tmp_path / "c"), [150], seed=4)
    for size, folder in folders.items():
        for split, count in (("train", size), ("valid", scale.VALID_PAIRS)):
            source = _lines(os.path.join(folder, f"{split}.src"))
            target = _lines(os.path.join(folder, f"{split}.tgt"))
            assert source[-1] == target[-1] == ""  # Every line ends with a newline.
            source, target = source[:-1], target[:-1]
            assert len(source) == len(target) == count
            for source_line, target_line in zip(source, target, strict=True):
                source_words, target_words = source_line.split(" "), target_line.split(" ")
                assert len(source_words) == len(target_words)
                assert scale.MIN_WORDS <= len(source_words) <= scale.MAX_WORDS
                assert all(word.isalpha() and word.islower() for word in source_words)
                assert all(word.isalpha() and word.islower() for word in target_words)
    small, large = (_lines(os.path.join(folders[size], "train.tgt")) for size in (150, 400))
    assert large[:150] == small[:-1]
    for name in ("train.src", "train.tgt", "valid.src"):
        text = (tmp_path / "b" / "pairs-150" / name).read_bytes()
        assert text == (tmp_path / "a" / "pairs-150" / name).read_bytes()
        assert text != (tmp_path / "c" / "pairs-150" / name).read_bytes()


def test_target_is_a_word_substitution_with_neighbours_swapped(scale):
    source_words, target_words = scale.make_vocabularies(scale.np.random.default_rng(0))
    translation = dict(zip(source_words, target_words, strict=True))
    generator = scale.PairGenerator(seed=0)
    source, target = generator.chunk(scale.np.random.default_rng(1), 50)
    for source_line, target_line in zip(
        source.decode().splitlines(), target.decode().splitlines(), strict=True
    ):
        words = [translation[word] for word in source_line.split()]
        for index in range(0, len(words) - 1, 2):
            words[index], words[index + 1] = words[index + 1], words[index]
        assert target_line.split() == words


@pytest.mark.slow
def test_runs_end_to_end_and_writes_json(tmp_path):
    out = tmp_path / "scale.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, SCRIPT, "--sizes", "300,600", "--steps", "5",
         "--work-dir", str(tmp_path / "work"), "--json", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| 300 |" in result.stdout and "| 600 |" in result.stdout
    assert list((tmp_path / "work").iterdir()) == []  # Removed without --keep.
    results = json.loads(out.read_text())
    assert results["settings"]["sizes"] == [300, 600]
    assert results["command"][-2:] == ["--json", str(out)]
    assert results["machine"]["cpu_count"] >= 1 and "loadavg_end" in results["machine"]
    assert [target["name"] for target in results["targets"]] == [
        "peak_rss", "time_to_first_step", "steady_steps_per_s",
    ]  # fmt: skip
    assert all(isinstance(target["met"], bool) for target in results["targets"])
    for size, run in results["runs"].items():
        assert run["pairs"] == int(size)
        assert run["files"]["train.src"] > 0 and run["files"]["valid.tgt"] > 0
        assert 0 < run["startup_s"] < run["first_step_from_launch_s"]
        assert 0 < run["first_step_s"] < run["first_step_from_launch_s"]
        assert run["steady_steps"] == 4 and run["steady_steps_per_s"] > 0
        assert run["peak_rss_mib"] > 100
    smallest = results["runs"]["300"]
    assert smallest["rss_ratio"] == smallest["steps_per_s_ratio"] == 1.0
    assert smallest["first_step_delta_s"] == 0.0
