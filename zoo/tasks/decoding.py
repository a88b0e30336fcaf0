"""What the tasks that decode with a sampler share: the options they serve and the search.

A serving module of such a task subclasses `SearchDecoder`: it holds the
model (`encode`, `initial_state`, `step`) and the recipe's decoding
settings, and `decode_ids` runs `zoo.samplers.search` over the model in the graph.
"""

from __future__ import annotations

import tensorflow as tf

from zoo.samplers import search
from zoo.tasks.base import Option
from zoo.text.vocabulary import END_ID, START_ID, UNK_ID

DECODE_OPTIONS = (
    Option("beam_size", "decode.beam_size"),
    Option("max_length", "decode.max_length"),
)
"""The options of a decoding signature: beam width and longest output, the recipe's by default."""


class SearchDecoder(tf.Module):
    """A `tf.Module` that decodes `model` with greedy or beam search, as `recipe["decode"]` says."""

    def __init__(self, model, recipe: dict, name: str):
        super().__init__(name=name)
        self.model = model
        decode = recipe["decode"]
        # `decode.precompute`: a model may offer a step for a known memory that reads
        # tables computed once per source (`decoding_step`).
        self.precompute = bool(decode.get("precompute", False)) and hasattr(model, "decoding_step")
        self.beam_size = int(decode["beam_size"])
        self.length_penalty = float(decode["length_penalty"])
        self.coverage_penalty = float(decode.get("coverage_penalty", 0.0))
        self.no_repeat_ngram = int(decode.get("no_repeat_ngram", 0))
        self.allow_unknown = bool(decode.get("allow_unknown", True))
        self.max_length = int(decode["max_length"])

    def decode_options(self, beam_size, max_length):
        """The options a caller sent, or the recipe's; at least one beam and one step."""
        # Serving clients may send anything.
        beam_size = self.beam_size if beam_size is None else tf.maximum(beam_size, 1)
        max_length = self.max_length if max_length is None else tf.maximum(max_length, 1)
        return beam_size, max_length

    def decode_ids(self, inputs, beam_size, max_length, **hooks) -> dict:
        """Encodes `inputs` (a batch) and searches; `hooks` go to the sampler (constraints)."""
        memory = self.model.encode(inputs, training=False)
        state = self.model.initial_state(memory)
        if self.no_repeat_ngram:
            hooks.setdefault("no_repeat_ngram", self.no_repeat_ngram)
        if self.coverage_penalty:
            hooks.setdefault("coverage_penalty", self.coverage_penalty)
            mask = memory.get("mask") if isinstance(memory, dict) else None
            hooks.setdefault("coverage_mask", mask)
        step = self.model.step
        if self.precompute:
            step, memory = self.model.decoding_step(memory)
        if not self.allow_unknown:
            step = _without_unknown(step)
        return search(
            step,
            state,
            memory,
            beam_size=beam_size,
            length_penalty=self.length_penalty,
            # Serving reads only the best hypothesis: without penalties its
            # search may stop as soon as that one is certain.
            stop_at_best=not (self.length_penalty or self.coverage_penalty),
            batch_size=tf.shape(inputs)[0],
            start_id=START_ID,
            end_id=END_ID,
            max_length=max_length,
            **hooks,
        )


def _without_unknown(step):
    """`step` with the [UNK] token never chosen (`decode.allow_unknown: false`)."""

    def step_without_unknown(tokens, state, memory):
        logits, state, extras = step(tokens, state, memory)
        unknown = tf.one_hot(UNK_ID, tf.shape(logits)[-1], on_value=-1e9, dtype=logits.dtype)
        return logits + unknown, state, extras

    return step_without_unknown
