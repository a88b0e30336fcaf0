"""Greedy and beam search over a decoder step function: `keras.ops` only, in-graph."""

from zoo.samplers.beam_search import beam_search
from zoo.samplers.greedy_search import greedy_search
from zoo.samplers.tree_constraint import TreeConstraint

__all__ = ["TreeConstraint", "beam_search", "greedy_search"]
