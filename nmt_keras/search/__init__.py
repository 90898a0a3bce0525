"""Search over a model-agnostic `next_fn(tokens, state, step) -> (logits, state, attention)`."""

from nmt_keras.search.greedy import greedy_search
from nmt_keras.search.result import SearchResult

__all__ = ["SearchResult", "greedy_search"]
