import gzip

import pytest

from nmt_keras.config import CorpusFiles
from nmt_keras.data.corpus import (
    CorpusError,
    FilterReport,
    ParallelCorpus,
    corpus_shards,
    filter_pairs,
    iter_pairs,
    read_corpus,
    read_parallel,
    read_tsv,
    scan_corpus,
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


def test_shards_pair_sorted_matches_and_read_in_order(tmp_path):
    for index in (1, 0):
        write(tmp_path / f"part{index}.de.gz", f"de {index}a\nde {index}b\n")
        write(tmp_path / f"part{index}.en", f"en {index}a\nen {index}b\n")
    files = CorpusFiles(source=str(tmp_path / "part*.de.gz"), target=str(tmp_path / "part*.en"))
    shards = corpus_shards(files)
    assert [shard.source for shard in shards] == [
        str(tmp_path / "part0.de.gz"),
        str(tmp_path / "part1.de.gz"),
    ]
    assert list(iter_pairs(files)) == [
        ("de 0a", "en 0a"),
        ("de 0b", "en 0b"),
        ("de 1a", "en 1a"),
        ("de 1b", "en 1b"),
    ]
    assert read_corpus(files).sources == ("de 0a", "de 0b", "de 1a", "de 1b")


def test_shard_patterns_must_match_alike(tmp_path):
    write(tmp_path / "a.de", "x\n")
    files = CorpusFiles(source=str(tmp_path / "*.de"), target=str(tmp_path / "*.en"))
    with pytest.raises(CorpusError) as error:
        corpus_shards(files)
    assert_one_line(error, tmp_path / "*.en", "none")
    write(tmp_path / "a.en", "y\n")
    write(tmp_path / "b.en", "z\n")
    with pytest.raises(CorpusError) as error:
        corpus_shards(files)
    assert_one_line(error, "matches 1 files", "matches 2")


def test_errors_name_the_line_past_the_first_chunk(tmp_path):
    lines = [f"line {i}" for i in range(20_000)]
    write(tmp_path / "a.txt", "\n".join(lines) + "\n")
    (tmp_path / "b.txt").write_bytes(("\n".join(lines[:-1]) + "\n").encode() + b"bad \xff\n")
    with pytest.raises(CorpusError) as error:
        read_parallel(tmp_path / "a.txt", tmp_path / "b.txt")
    assert_one_line(error, f"{tmp_path / 'b.txt'}:20000", "UTF-8", "column 5")
    write(tmp_path / "c.txt", "\n".join(lines[:-3]) + "\n")
    with pytest.raises(CorpusError) as error:
        read_parallel(tmp_path / "a.txt", tmp_path / "c.txt")
    assert_one_line(error, "20000 lines", "19997 lines")


def test_scan_counts_and_samples_uniformly_in_corpus_order(tmp_path):
    count = 30_000
    write(tmp_path / "a.txt", "".join(f"s{i}\n" for i in range(count)))
    write(tmp_path / "b.txt", "".join(f"t{i}\n" for i in range(count)))
    files = CorpusFiles(source=str(tmp_path / "a.txt"), target=str(tmp_path / "b.txt"))
    scan = scan_corpus(files, sample_size=3000, seed=0)
    assert scan.pairs == count and len(scan.sample) == 3000
    rows = [int(source[1:]) for source in scan.sample.sources]
    assert rows == sorted(set(rows))
    assert [f"t{row}" for row in rows] == list(scan.sample.targets)
    # Uniform: each tenth of the corpus holds about a tenth of the sample.
    tenths = [sum(row * 10 // count == tenth for row in rows) for tenth in range(10)]
    assert min(tenths) > 220 and max(tenths) < 380
    assert scan_corpus(files, sample_size=3000, seed=0) == scan
    assert scan_corpus(files, sample_size=3000, seed=1) != scan
    assert scan_corpus(files, sample_size=count, seed=0).sample == read_corpus(files)
