"""SearchDecoder's recipe options, on a stub model whose favourite word is [UNK]."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.tasks.decoding import SearchDecoder
from zoo.text.vocabulary import END_ID, UNK_ID

VOCAB = 6


class _PrefersUnknown:
    """Scores [UNK] highest, then word 4, then [END]; attention over one position."""

    def encode(self, inputs, training=False):
        return {"x": tf.cast(inputs, tf.float32)}

    def initial_state(self, memory):
        return tf.zeros([tf.shape(memory["x"])[0], 1])

    def step(self, tokens, state, memory):
        batch = tf.shape(tokens)[0]
        row = tf.constant([[-9.0, 3.0, -9.0, 1.0, 2.0, -9.0]])
        return tf.tile(row, [batch, 1]), state + 1.0, tf.ones([batch, 1])


def _decode(allow_unknown, beam_size):
    decode = {"beam_size": beam_size, "length_penalty": 0.0, "max_length": 3}
    if allow_unknown is not None:
        decode["allow_unknown"] = allow_unknown
    decoder = SearchDecoder(_PrefersUnknown(), {"decode": decode}, name="stub")
    return np.asarray(decoder.decode_ids(tf.zeros([2, 1]), beam_size, 3)["tokens"])


@pytest.mark.parametrize("beam_size", [1, 3])
def test_unknown_is_written_unless_the_recipe_forbids_it(beam_size):
    assert (_decode(None, beam_size)[:, 0] == UNK_ID).all()  # the default: allowed
    tokens = _decode(False, beam_size)
    assert UNK_ID not in tokens
    assert (tokens[:, 0] == 4).all()  # the next best word instead
    assert END_ID in tokens or tokens.shape[1] == 3


@pytest.mark.parametrize("beam_size", [1, 3])
def test_decode_precompute_searches_with_the_decoders_tables(beam_size):
    from zoo.models import Seq2Seq

    model = Seq2Seq(
        20,
        VOCAB + 20,
        embedding_dim=8,
        encoder={"cell": "lstm", "units": 6},
        decoder={"cell": "lstm", "units": 12, "style": "bahdanau"},
        attention={"kind": "additive", "units": 5},
    )
    model.build()
    source = tf.constant([[11, 12, 13, END_ID], [14, END_ID, 0, 0]])
    calls = []
    plain_step = model.decoder.step
    model.decoder.step = lambda *args: calls.append(1) or plain_step(*args)
    results = {}
    for precompute in (False, True):
        decode = {"beam_size": beam_size, "length_penalty": 0.0, "max_length": 6}
        decoder = SearchDecoder(model, {"decode": {**decode, "precompute": precompute}}, "s2s")
        assert decoder.precompute == precompute
        calls.clear()
        results[precompute] = decoder.decode_ids(source, beam_size, 6)
        assert bool(calls) != precompute  # the plain step runs only without the tables
    for key in ("tokens", "lengths"):
        np.testing.assert_array_equal(results[True][key], results[False][key])
    # A model without `decoding_step` decodes with its step whatever the recipe says.
    stub = SearchDecoder(_PrefersUnknown(), {"decode": {**decode, "precompute": True}}, "stub")
    assert not stub.precompute
