"""Greedy and beam search over a decoder step function: `keras.ops` only, in-graph."""

from zoo.samplers.beam_search import beam_search
from zoo.samplers.greedy_search import greedy_search
from zoo.samplers.tree_constraint import TreeConstraint


def search(
    step_fn,
    initial_state,
    memory,
    *,
    beam_size,
    length_penalty: float = 0.0,
    coverage_penalty: float = 0.0,
    coverage_mask=None,
    stop_at_best: bool = False,
    **kwargs,
):
    """Greedy search when `beam_size` is the Python int 1, beam search otherwise.

    A tensor `beam_size` (a serving signature's argument) always takes beam
    search, which with one beam finds what greedy search finds. `kwargs` go to
    both (`batch_size`, `start_id`, `end_id`, `max_length`, `no_repeat_ngram`,
    hooks); the penalties, which only rank hypotheses, and `stop_at_best`
    (stop once the best hypothesis is certain), only to beam search.
    """
    if isinstance(beam_size, int) and beam_size == 1:
        return greedy_search(step_fn, initial_state, memory, **kwargs)
    return beam_search(
        step_fn,
        initial_state,
        memory,
        beam_size=beam_size,
        length_penalty=length_penalty,
        coverage_penalty=coverage_penalty,
        coverage_mask=coverage_mask,
        stop_at_best=stop_at_best,
        **kwargs,
    )


__all__ = ["TreeConstraint", "beam_search", "greedy_search", "search"]
