"""The `Example:` of every public layer's and model's docstring runs, as a user copies it."""

import doctest

import pytest

from nmt_keras import behaviour, layers, models
from nmt_keras.behaviour import ranking
from nmt_keras.behaviour.purchase_statistics import purchase_statistics

DOCUMENTED = [getattr(layers, name) for name in layers.__all__] + [
    models.Seq2Seq,
    models.Transformer,
    behaviour.EventFeaturizer,
    behaviour.EventEmbedding,
    behaviour.NextPurchaseModel,
    behaviour.RepeatDecoder,
    purchase_statistics,
    ranking.ranking_metrics,
    ranking.repeat_explore_metrics,
    ranking.paired_randomization_test,
]


@pytest.mark.parametrize("cls", DOCUMENTED, ids=lambda cls: cls.__name__)
def test_docstring_example_runs(cls):
    (test,) = doctest.DocTestFinder(recurse=False).find(cls, globs={})
    assert "    Example:\n" in cls.__doc__ and test.examples, "no Example: section"
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
