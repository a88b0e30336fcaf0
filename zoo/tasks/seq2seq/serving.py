"""The in-graph decoder the sequence-to-sequence tasks serve (and evaluate with)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from zoo.data.seq2seq_dataset import END_ID
from zoo.models import Seq2Seq
from zoo.tasks.decoding import SearchDecoder

XLA_WIDTH_STEP = 16
"""With `decode.xla`, sources are padded to a multiple of this many positions: one
compiled search serves every length up to it (XLA compiles once per shape)."""

RESULT_DTYPES = {
    "tokens": tf.int32,
    "lengths": tf.int32,
    "scores": tf.float32,
    "attention": tf.float32,
}
"""What `search_ids` returns, in these dtypes."""


class Seq2SeqServing(SearchDecoder):
    """Strings in, token sequences out: tokenizers, encoder, sampler and detokenizer in one graph.

    `generate` is the shared decoding of the sequence-to-sequence tasks; a
    task's serving module names what it serves (`Translator.translate_text`,
    `Parser.parse_text`) on top of it, and adapts decoding with
    `decoding_limits`. Evaluation calls the very function the export serves,
    so the figures describe the exported model.
    """

    def __init__(self, model: Seq2Seq, source_tokenizer, target_tokenizer, recipe: dict, name: str):
        super().__init__(model, recipe, name)
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.reverse_source = bool(recipe["model"]["reverse_source"])
        # XLA compiles the whole search into one program: on a CPU a decoding
        # step then costs tens of microseconds instead of hundreds (one
        # dispatch instead of one per op). Compiled once per batch size,
        # padded source width, beam size and maximum length.
        self.xla = bool(recipe["decode"].get("xla", False))
        # `decode.max_batch_size`: larger batches are sorted by length and searched
        # in groups of this many sentences (`_search_sorted`); 0: all at once.
        self.max_batch_size = int(recipe["decode"].get("max_batch_size", 0))
        if self.xla:
            self._search_xla = tf.function(
                self._fixed_search, jit_compile=True, autograph=False, reduce_retracing=True
            )

    @property
    def tokenizers(self) -> dict:
        """The tokenizers by key, as the export writes their vocabularies."""
        return {"source": self.source_tokenizer, "target": self.target_tokenizer}

    def encode_text(self, text: tf.Tensor):
        """Strings -> padded source ids (with [END]), their lengths, and source pieces."""
        ids = tf.cast(self.source_tokenizer.tokenize(text), tf.int32)
        word_count = ids.row_lengths()
        pieces = self.source_tokenizer.id_to_token(ids)
        end = tf.fill([tf.shape(text)[0], 1], tf.constant(END_ID, tf.int32))
        ids = tf.concat([ids, tf.RaggedTensor.from_tensor(end)], axis=1)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        dense = ids.to_tensor(0)
        # At least 2 positions: a zero-length time axis crashes the encoder RNN.
        dense = tf.pad(dense, [[0, 0], [0, tf.maximum(0, 2 - tf.shape(dense)[1])]])
        if self.reverse_source:
            dense = tf.reverse_sequence(dense, lengths - 1, seq_axis=1, batch_axis=0)
        return dense, lengths, pieces, word_count

    def decoding_limits(self, word_count, max_length, *, fixed: bool = False) -> tuple[Any, dict]:
        """The samplers' `max_length` and extra arguments (a task's decoding hook); none here.

        `fixed`: the samplers' `max_length` must be `max_length` itself (a
        compile-time constant under XLA), not anything computed from the data.
        """
        return max_length, {}

    def length_bound(self, source_width):
        """The most output tokens any source `source_width` positions wide may need, or None."""
        return None

    def search_ids(self, source, word_count, beam_size, max_length) -> dict:
        """The sampler's result for padded source ids; through XLA with `decode.xla`.

        With `decode.max_batch_size`, a larger batch is sorted by length and
        searched that many sentences at a time (`_search_sorted`).
        """
        word_count = tf.cast(word_count, tf.int32)
        max_length = tf.cast(max_length, tf.int32)
        if self.xla:
            bound = self.length_bound(xla_width(tf.shape(source)[1]))
            if bound is not None:
                max_length = tf.minimum(max_length, bound)
            search = self._search_padded
        else:
            max_length, _ = self.decoding_limits(word_count, max_length)
            search = self._fixed_search
        size = self.max_batch_size
        if not size:
            return search(source, word_count, beam_size, max_length)
        return tf.cond(
            tf.shape(source)[0] <= size,
            lambda: search(source, word_count, beam_size, max_length),
            lambda: self._search_sorted(search, source, word_count, beam_size, max_length),
        )

    def _search_sorted(self, search, source, word_count, beam_size, max_length) -> dict:
        """`search` over groups of `max_batch_size` sentences of similar length, in the batch's order.

        A batch's search runs every row until its longest output ends, so
        short sentences batched with long ones cost as much as the long ones.
        Sorted by length (a sentence's output length follows its word count)
        and cut into groups, each group runs only as long as its own longest
        sentence, over a source only as wide as its own. Every group has the
        same number of rows (the first, shortest, is filled with copies of its
        first sentence, whose results are dropped) and the same `max_length`,
        so their outputs stack, and XLA compiles one program per group width.
        Each sentence's search is independent of the others in its batch: the
        results are those of `search` on the whole batch.
        """
        size = self.max_batch_size
        batch = tf.shape(source)[0]
        width = tf.shape(source)[1]
        groups = (batch + size - 1) // size
        extra = groups * size - batch
        order = tf.argsort(word_count, stable=True)
        rows = tf.concat([tf.fill([extra], order[0]), order], 0)

        def body(group, arrays):
            taken = rows[group * size : (group + 1) * size]
            counts = tf.gather(word_count, taken)
            # Reversed sources keep their words first too: a group needs its widest row's width.
            group_width = tf.minimum(tf.maximum(tf.reduce_max(counts) + 1, 2), width)
            result = search(
                tf.gather(source, taken)[:, :group_width], counts, beam_size, max_length
            )
            # Attention over the batch's source width (the positions past the group's are zeros).
            attention = result["attention"]
            missing = (xla_width(width) if self.xla else width) - tf.shape(attention)[2]
            result["attention"] = tf.pad(attention, [[0, 0], [0, 0], [0, missing]])
            return group + 1, {key: arrays[key].write(group, result[key]) for key in arrays}

        arrays = {key: tf.TensorArray(dtype, size=groups) for key, dtype in RESULT_DTYPES.items()}
        _, arrays = tf.while_loop(lambda group, _: group < groups, body, (0, arrays))
        inverse = tf.argsort(order)  # sorted position of each sentence
        results = {}
        for key, array in arrays.items():
            stacked = array.stack()  # (groups, size, ...)
            flat = tf.reshape(stacked, tf.concat([[groups * size], tf.shape(stacked)[2:]], 0))
            results[key] = tf.gather(flat[extra:], inverse)
        return results

    def _search_padded(self, source, word_count, beam_size, max_length) -> dict:
        """The compiled search, the source padded to a multiple of `XLA_WIDTH_STEP` positions."""
        width = tf.shape(source)[1]
        source = tf.pad(source, [[0, 0], [0, xla_width(width) - width]])
        # A Python beam size is traced into the program (1: greedy search).
        greedy = lambda: self._search_xla(source, word_count, 1, max_length)  # noqa: E731
        if isinstance(beam_size, int):
            return self._search_xla(source, word_count, beam_size, max_length)
        beam = lambda: self._search_xla(source, word_count, beam_size, max_length)  # noqa: E731
        if self.length_penalty or self.coverage_penalty:
            # A tensor beam size takes beam search (`zoo.samplers.search`), whose
            # one-beam scores carry the penalties; greedy's would not.
            return beam()
        return tf.cond(tf.equal(beam_size, 1), greedy, beam)

    def _fixed_search(self, source, word_count, beam_size, max_length):
        """`decode_ids` with a `max_length` XLA can size its buffers by (and nothing data-sized).

        Without XLA too: the plain graph's search, for outputs at most `max_length` long.
        """
        max_length, hooks = self.decoding_limits(word_count, max_length, fixed=True)
        return _common(self.decode_ids(source, beam_size, max_length, **hooks))

    def generate(self, text, beam_size: int | None = None, max_length=None) -> dict:
        """Strings -> their decoded outputs, one row per string.

        The outputs: `translation` (detokenised), `tokens`, `source_tokens`,
        `attention`, `score`, `length`, and `truncated`, true where the output
        hit `max_length` without its end token (it was cut).
        """
        beam_size, max_length = self.decode_options(beam_size, max_length)
        text = tf.reshape(tf.convert_to_tensor(text, tf.string), [-1])
        source, source_lengths, source_pieces, word_count = self.encode_text(text)
        result = self.search_ids(source, word_count, beam_size, max_length)
        has_words = word_count > 0
        lengths = tf.where(has_words, tf.cast(result["lengths"], tf.int32), 0)
        # A row that ended has its end token inside the buffer (`max_length` wide);
        # one that never ended filled it.
        truncated = tf.logical_and(
            has_words, tf.cast(result["lengths"], tf.int32) >= tf.shape(result["tokens"])[1]
        )
        width = tf.reduce_max(tf.concat([lengths, [0]], 0))
        tokens = tf.RaggedTensor.from_tensor(
            tf.cast(result["tokens"][:, :width], tf.int32), lengths=lengths
        )
        # Documented result: an empty (or all-whitespace) input translates to "".
        translation = tf.where(has_words, self.target_tokenizer.detokenize(tokens), "")
        attention = tf.cast(result["attention"][:, :width], tf.float32)
        if self.reverse_source:  # report attention over the source in reading order
            attention = tf.reverse_sequence(attention, source_lengths - 1, seq_axis=2, batch_axis=0)
        attention = attention[:, :, : tf.shape(source_pieces.to_tensor(""))[1] + 1]
        zero_if_empty = tf.cast(has_words, tf.float32)
        return {
            "translation": translation,
            "tokens": self.target_tokenizer.id_to_token(tokens).to_tensor(""),
            "source_tokens": tf.concat(
                [
                    source_pieces,
                    tf.RaggedTensor.from_tensor(tf.fill([tf.shape(text)[0], 1], "[END]")),
                ],
                1,
            ).to_tensor(""),
            "attention": attention * zero_if_empty[:, None, None],
            "score": tf.cast(result["scores"], tf.float32) * zero_if_empty,
            "length": lengths,
            "truncated": truncated,
        }


def xla_width(width):
    """`width` rounded up to a multiple of `XLA_WIDTH_STEP`."""
    return (width + XLA_WIDTH_STEP - 1) // XLA_WIDTH_STEP * XLA_WIDTH_STEP


def _common(result: dict) -> dict:
    """What greedy and beam search both return (the two branches of one `tf.cond`)."""
    return {key: tf.cast(result[key], dtype) for key, dtype in RESULT_DTYPES.items()}
