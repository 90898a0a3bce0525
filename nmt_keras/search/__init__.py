"""Search over a model-agnostic `next_fn(tokens, state, step) -> (logits, state, attention)`."""

from nmt_keras.search.beam import beam_search
from nmt_keras.search.greedy import greedy_search
from nmt_keras.search.result import BeamSearchResult, SearchResult
from nmt_keras.search.sampling import sample

__all__ = ["BeamSearchResult", "SearchResult", "beam_search", "greedy_search", "sample"]
