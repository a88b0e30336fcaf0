"""Greedy and beam search over a decoder step function: `keras.ops` only, in-graph."""

from zoo.samplers.beam_search import beam_search
from zoo.samplers.greedy_search import greedy_search

__all__ = ["beam_search", "greedy_search"]
