import gzip

import pytest

from nmt_keras.data.corpus import (
    CorpusError,
    FilterReport,
    ParallelCorpus,
    filter_pairs,
    read_parallel,
    read_tsv,
    subsample,
)


def write(path, text: str | bytes):
    data = text.encode() if isinstance(text, str) else text
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def assert_one_line(error, *parts):
    message = str(error.value)
    assert "\n" not in message
    for part in parts:
        assert str(part) in message


@pytest.mark.parametrize("suffix", [".txt", ".txt.gz"])
def test_read_parallel(tmp_path, suffix):
    src = write(tmp_path / f"train.de{suffix}", "  Ein Hund .\nZwei Katzen\u2028schlafen\n\n")
    tgt = write(tmp_path / f"train.en{suffix}", "A dog .  \r\nTwo cats sleep\n\n")
    corpus = read_parallel(src, tgt)
    assert corpus.sources == ("Ein Hund .", "Zwei Katzen\u2028schlafen", "")
    assert corpus.targets == ("A dog .", "Two cats sleep", "")
    assert len(corpus) == 3


@pytest.mark.parametrize("suffix", [".tsv", ".tsv.gz"])
def test_read_tsv(tmp_path, suffix):
    path = write(tmp_path / f"pairs{suffix}", "Ein Hund .\tA dog .\n我爱你\t I love you \n")
    corpus = read_tsv(path)
    assert corpus.sources == ("Ein Hund .", "我爱你")
    assert corpus.targets == ("A dog .", "I love you")


def test_missing_file(tmp_path):
    tgt = write(tmp_path / "b.txt", "x\n")
    with pytest.raises(CorpusError) as error:
        read_parallel(tmp_path / "a.txt", tgt)
    assert_one_line(error, tmp_path / "a.txt", "not found")
    with pytest.raises(CorpusError) as error:
        read_tsv(tmp_path / "c.tsv")
    assert_one_line(error, tmp_path / "c.tsv")


def test_line_counts_differ(tmp_path):
    src = write(tmp_path / "a.txt", "1\n2\n3\n")
    tgt = write(tmp_path / "b.txt.gz", "1\n2\n")
    with pytest.raises(CorpusError) as error:
        read_parallel(src, tgt)
    assert_one_line(error, src, tgt, "3 lines", "2 lines")


def test_empty_corpus(tmp_path):
    src = write(tmp_path / "a.txt", "")
    tgt = write(tmp_path / "b.txt", "")
    with pytest.raises(CorpusError) as error:
        read_parallel(src, tgt)
    assert_one_line(error, src, "no lines")


def test_invalid_utf8(tmp_path):
    src = write(tmp_path / "a.txt.gz", b"ok\nstill ok\nbad \xff byte\n")
    tgt = write(tmp_path / "b.txt", "1\n2\n3\n")
    with pytest.raises(CorpusError) as error:
        read_parallel(src, tgt)
    assert_one_line(error, f"{src}:3", "UTF-8")


def test_corrupt_gzip(tmp_path):
    src = tmp_path / "a.txt.gz"
    src.write_bytes(b"plain text, not gzip\n")
    with pytest.raises(CorpusError) as error:
        read_parallel(src, src)
    assert_one_line(error, src)


@pytest.mark.parametrize("line", ["no tab here", "a\tb\tc"])
def test_tsv_needs_two_fields(tmp_path, line):
    path = write(tmp_path / "pairs.tsv", f"a\tb\n{line}\n")
    with pytest.raises(CorpusError) as error:
        read_tsv(path)
    assert_one_line(error, f"{path}:2", "2 tab-separated fields")


def test_corpus_error_is_value_error():
    assert issubclass(CorpusError, ValueError)


def test_parallel_corpus_checks_lengths_and_is_frozen():
    corpus = ParallelCorpus(["a"], ["b"])
    assert corpus.sources == ("a",)
    with pytest.raises(ValueError, match="as many sources as targets"):
        ParallelCorpus(["a", "b"], ["c"])
    with pytest.raises(AttributeError):
        corpus.sources = ("x",)


def test_filter_pairs_counts_each_kind():
    corpus = ParallelCorpus(
        ["a b", "", "a b c d e", "x", "a", "ok"],
        ["c d", "y", "e", "", "p q r s t", "fine"],
    )

    def words(sentences):  # Whitespace tokens plus <s> and </s>.
        return [len(s.split()) + 2 for s in sentences]

    kept, report = filter_pairs(corpus, words, words, max_length=5)
    assert kept.sources == ("a b", "ok")
    assert kept.targets == ("c d", "fine")
    assert report == FilterReport(kept=2, empty=2, too_long=2, max_length=5)
    assert report.total == 6
    assert str(report) == "kept 2 of 6 pairs (dropped 2 empty, 2 longer than 5 tokens)"


def test_subsample_keeps_a_seeded_choice_of_pairs_in_corpus_order():
    corpus = ParallelCorpus(tuple(f"s{i}" for i in range(10)), tuple(f"t{i}" for i in range(10)))
    chosen = subsample(corpus, 4, seed=3)
    assert len(chosen) == 4
    assert [int(s[1:]) for s in chosen.sources] == sorted(int(s[1:]) for s in chosen.sources)
    assert [s[1:] for s in chosen.sources] == [t[1:] for t in chosen.targets]
    assert subsample(corpus, 4, seed=3) == chosen
    assert subsample(corpus, 10, seed=3) is corpus
    assert subsample(corpus, 20, seed=3) is corpus
