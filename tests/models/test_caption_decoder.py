import itertools

import numpy as np
import pytest

from zoo.models.caption_decoder import CaptionDecoder

SWITCHES = list(itertools.product([True, False], repeat=3))  # gate, previous word, context
VOCAB, EMBED, UNITS, ATT, LOCATIONS, DEPTH = 11, 6, 8, 5, 9, 7


def _decoder(gate=True, output_previous_word=True, output_context=True, **kwargs):
    decoder = CaptionDecoder(
        VOCAB,
        embedding_dim=EMBED,
        units=UNITS,
        attention_units=ATT,
        gate=gate,
        output_previous_word=output_previous_word,
        output_context=output_context,
        **kwargs,
    )
    decoder.build((None, LOCATIONS, DEPTH))
    return decoder


def _inputs(rng, batch=3, length=5):
    features = rng.normal(size=(batch, LOCATIONS, DEPTH)).astype("float32")
    tokens = rng.integers(2, VOCAB, (batch, length)).astype("int32")
    tokens[0, 3:] = 0  # padding
    return features, tokens


def _assert_steps_match_scan(decoder, seed):
    """`step` after `step` gives the teacher-forced call's logits and attention; returns those."""
    features, tokens = _inputs(np.random.default_rng(seed))
    memory = decoder.prepare_memory(features)
    logits, attention = decoder(tokens, memory)
    state = decoder.initial_state(memory)
    for t in range(tokens.shape[1]):
        step_logits, state, step_attention = decoder.step(tokens[:, t], state, memory)
        assert step_logits.dtype == "float32"
        np.testing.assert_allclose(step_logits, logits[:, t], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(step_attention, attention[:, t], rtol=1e-4, atol=1e-6)
    return logits, attention


def _weights(layer):
    return [np.asarray(w) for w in layer.weights]


def _reference_attention(decoder, h, features):
    """Additive attention `softmax(v^T tanh(W h + U a + b))` by hand."""
    (w,), (u, b) = (
        _weights(decoder.attention_layer.query_dense),
        _weights(decoder.attention_layer.key_dense),
    )
    v = np.asarray(decoder.attention_layer.v)
    scores = np.tanh((h @ w)[:, None, :] + features @ u + b) @ v
    alpha = np.exp(scores - scores.max(-1, keepdims=True))
    alpha /= alpha.sum(-1, keepdims=True)
    return alpha, np.einsum("bl,bld->bd", alpha, features)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize(
    "query,sentinel", [("previous", False), ("current", False), ("current", True)]
)
@pytest.mark.parametrize("gate,previous_word,context", SWITCHES)
def test_step_function_reproduces_teacher_forced_scan(
    gate, previous_word, context, query, sentinel
):
    decoder = _decoder(gate, previous_word, context, attention_query=query, sentinel=sentinel)
    logits, attention = _assert_steps_match_scan(decoder, 0)
    assert logits.shape == (3, 5, VOCAB) and logits.dtype == "float32"
    assert attention.shape == (3, 5, LOCATIONS)
    totals = np.asarray(attention).sum(-1)
    if sentinel:  # the sentinel takes its share
        assert np.all(totals < 1.0 - 1e-3)
    else:
        np.testing.assert_allclose(totals, 1.0, rtol=1e-5)


def test_step_matches_scan_with_tanh_output_activation():
    _assert_steps_match_scan(_decoder(output_activation="tanh"), 1)


def test_initial_state_comes_from_the_mean_annotation_vector():
    rng = np.random.default_rng(2)
    decoder = _decoder()
    features, _ = _inputs(rng)
    h0, c0 = decoder.initial_state(decoder.prepare_memory(features))
    mean = features.mean(1)
    for layer, got in ((decoder.init_h, h0), (decoder.init_c, c0)):
        kernel, bias = _weights(layer)
        np.testing.assert_allclose(got, np.tanh(mean @ kernel + bias), rtol=1e-5, atol=1e-6)


def test_initial_state_without_the_image_is_the_learned_constant():
    rng = np.random.default_rng(3)
    decoder = _decoder(init_from_image=False)
    features, tokens = _inputs(rng)
    for layer in (decoder.init_h, decoder.init_c):  # the biases start at zero
        layer.bias.assign(rng.normal(size=UNITS).astype("float32"))
    memory = decoder.prepare_memory(features)
    h0, c0 = decoder.initial_state(memory)
    for layer, got in ((decoder.init_h, h0), (decoder.init_c, c0)):
        _, bias = _weights(layer)
        np.testing.assert_allclose(got, np.tile(np.tanh(bias), (3, 1)), rtol=1e-6)
    # The same weights reading the image: a state per image.
    decoder.init_from_image = True
    h0, _ = decoder.initial_state(memory)
    assert not np.allclose(h0[0], h0[1])


@pytest.mark.parametrize("gate", [True, False])
def test_gate_scales_the_context_in_the_lstm_input(gate):
    rng = np.random.default_rng(3)
    decoder = _decoder(gate=gate)
    features, _ = _inputs(rng)
    memory = decoder.prepare_memory(features)
    embedded = rng.normal(size=(3, EMBED)).astype("float32")
    h = rng.normal(size=(3, UNITS)).astype("float32")
    x, context, attention = decoder.lstm_input(embedded, h, memory)
    alpha, z = _reference_attention(decoder, h, features)
    np.testing.assert_allclose(attention, alpha, rtol=1e-5, atol=1e-6)
    if gate:
        kernel, bias = _weights(decoder.beta_dense)
        beta = _sigmoid(h @ kernel + bias)  # (3, 1): one scalar per example
        assert beta.shape == (3, 1) and not np.allclose(beta, 1.0)
        expected = beta * z
    else:
        assert decoder.beta_dense is None
        expected = z
    np.testing.assert_allclose(x[:, :EMBED], embedded, rtol=1e-6)
    np.testing.assert_allclose(x[:, EMBED:], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(context, expected, rtol=1e-5, atol=1e-6)


def _lstm_by_hand(decoder, x, h0, c0):
    kernel, recurrent, bias = _weights(decoder.cell)
    gates = x @ kernel + h0 @ recurrent + bias
    i, f, g, o = np.split(gates, 4, axis=-1)  # Keras LSTM gate order
    c = _sigmoid(f) * c0 + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def _first_step(decoder, seed):
    """The decoder's first step on random inputs: `(features, E y_0, (h_0, c_0), step outputs)`."""
    features, tokens = _inputs(np.random.default_rng(seed))
    memory = decoder.prepare_memory(features)
    state = decoder.initial_state(memory)
    outputs = decoder.step(tokens[:, 0], state, memory)
    (table,) = _weights(decoder.embedding)
    return features, table[tokens[:, 0]], tuple(np.asarray(s) for s in state), outputs


@pytest.mark.parametrize("query,image", [("previous", True), ("current", True), ("current", False)])
@pytest.mark.parametrize("gate,previous_word,context", SWITCHES)
def test_first_step_by_hand(gate, previous_word, context, query, image):
    """Xu et al.: attention on h_0, LSTM on [E y; beta z]. Lu et al.: LSTM on
    [E y; mean a] (zeros without init_from_image), then attention on h_1.
    Both: L_o(E y + L_h h_1 + L_z z)."""
    decoder = _decoder(gate, previous_word, context, attention_query=query, init_from_image=image)
    features, embedded, (h0, c0), (logits, (h1, c1), attention) = _first_step(decoder, 4)

    def gated_attention(query_state):
        alpha, z = _reference_attention(decoder, query_state, features)
        if gate:
            kernel, bias = _weights(decoder.beta_dense)
            z = _sigmoid(query_state @ kernel + bias) * z
        return alpha, z

    if query == "previous":
        alpha, z = gated_attention(h0)
        h, c = _lstm_by_hand(decoder, np.concatenate([embedded, z], -1), h0, c0)
    else:
        mean = features.mean(1) if image else np.zeros_like(features.mean(1))
        h, c = _lstm_by_hand(decoder, np.concatenate([embedded, mean], -1), h0, c0)
        alpha, z = gated_attention(h)
    kernel, bias = _weights(decoder.hidden_to_output)
    output = h @ kernel + bias
    if previous_word:
        output += embedded
    if context:
        (kernel,) = _weights(decoder.context_to_output)
        output += z @ kernel
    else:
        assert decoder.context_to_output is None
    kernel, bias = _weights(decoder.logits_dense)
    np.testing.assert_allclose(attention, alpha, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c1, c, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h1, h, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logits, output @ kernel + bias, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("gate", [True, False])
def test_sentinel_step_by_hand(gate):
    """Lu et al.: s = sigmoid(W [x; h_0]) * tanh(c_1), softmax over the cells and s,
    context sum_i alpha_i a_i + beta W_v s; the cells' weights sum to 1 - beta."""
    decoder = _decoder(gate, attention_query="current", sentinel=True)
    features, embedded, (h0, c0), (logits, (h1, c1), attention) = _first_step(decoder, 8)
    x = np.concatenate([embedded, features.mean(1)], -1)
    h, c = _lstm_by_hand(decoder, x, h0, c0)
    kernel, bias = _weights(decoder.sentinel_gate)
    sentinel = _sigmoid(np.concatenate([x, h0], -1) @ kernel + bias) * np.tanh(c)
    (w,), (u, b) = (
        _weights(decoder.attention_layer.query_dense),
        _weights(decoder.attention_layer.key_dense),
    )
    kernel, bias = _weights(decoder.sentinel_key)
    keys = np.concatenate([features @ u + b, (sentinel @ kernel + bias)[:, None]], 1)
    scores = np.tanh((h @ w)[:, None, :] + keys) @ np.asarray(decoder.attention_layer.v)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    alpha, beta = weights[:, :-1], weights[:, -1:]
    assert np.all(beta > 1e-3)  # the sentinel takes a share
    (kernel,) = _weights(decoder.sentinel_value)
    z = np.einsum("bl,bld->bd", alpha, features) + beta * (sentinel @ kernel)
    if gate:
        kernel, bias = _weights(decoder.beta_dense)
        z = _sigmoid(h @ kernel + bias) * z
    kernel, bias = _weights(decoder.hidden_to_output)
    (context_kernel,) = _weights(decoder.context_to_output)
    output = h @ kernel + bias + embedded + z @ context_kernel
    kernel, bias = _weights(decoder.logits_dense)
    np.testing.assert_allclose(h1, h, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(c1, c, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(attention, alpha, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(attention).sum(-1), 1.0 - beta[:, 0], rtol=1e-4)
    np.testing.assert_allclose(logits, output @ kernel + bias, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("query,sentinel", [("previous", False), ("current", True)])
def test_general_score_by_hand(query, sentinel):
    """Luong's general score h^T W_a a: the first step's attention, and the step against the scan."""
    decoder = _decoder(attention_query=query, sentinel=sentinel, attention_score="general")
    features, _, (h0, _), (_, (h1, _), attention) = _first_step(decoder, 10)
    (kernel,) = _weights(decoder.attention_layer.key_dense)
    assert kernel.shape == (DEPTH, UNITS)
    h = h0 if query == "previous" else h1
    scores = np.einsum("bu,blu->bl", h, features @ kernel)
    expected = np.exp(scores - scores.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    cells = np.asarray(attention)
    if sentinel:
        kernel, _ = _weights(decoder.sentinel_key)
        assert kernel.shape == (UNITS, UNITS)  # into the keys' space, the query's size
        # The cells' weights are the softmax of their scores, scaled by 1 - beta.
        assert np.all(cells.sum(-1) < 1.0 - 1e-3)
        cells = cells / cells.sum(-1, keepdims=True)
    np.testing.assert_allclose(cells, expected, rtol=1e-4, atol=1e-6)
    _assert_steps_match_scan(decoder, 11)


def test_sentinel_config_round_trip():
    rng = np.random.default_rng(9)
    decoder = _decoder(attention_query="current", sentinel=True, attention_score="general")
    features, tokens = _inputs(rng)
    logits, _ = decoder(tokens, decoder.prepare_memory(features))
    clone = CaptionDecoder.from_config(decoder.get_config())
    clone.build((None, LOCATIONS, DEPTH))
    assert clone.attention_score == "general"
    assert clone.sentinel and len(clone.weights) == len(decoder.weights)
    clone.set_weights(decoder.get_weights())
    np.testing.assert_allclose(clone(tokens, clone.prepare_memory(features))[0], logits, rtol=1e-5)


def test_dropout_acts_only_in_training():
    rng = np.random.default_rng(5)
    decoder = _decoder(dropout=0.5)
    features, tokens = _inputs(rng)
    memory = decoder.prepare_memory(features)
    inference, attention = decoder(tokens, memory, training=False)
    trained, trained_attention = decoder(tokens, memory, training=True)
    assert not np.allclose(inference, trained)
    # Dropout sits after the recurrence: the attention is unchanged.
    np.testing.assert_allclose(attention, trained_attention, rtol=1e-6)
    state = decoder.initial_state(memory)
    step_logits, _, _ = decoder.step(tokens[:, 0], state, memory)
    np.testing.assert_allclose(step_logits, inference[:, 0], rtol=1e-4, atol=1e-5)


def test_config_round_trip():
    decoder = CaptionDecoder(
        VOCAB,
        embedding_dim=EMBED,
        units=UNITS,
        attention_units=ATT,
        dropout=0.25,
        gate=False,
        output_previous_word=False,
        output_context=True,
        output_activation="tanh",
        init_from_image=False,
        attention_query="current",
        name="caption_decoder",
    )
    clone = CaptionDecoder.from_config(decoder.get_config())
    assert clone.get_config() == decoder.get_config()
    assert clone.get_config()["output_activation"] == "tanh"
    assert clone.init_from_image is False
    assert clone.attention_query == "current"


def test_errors_say_what_was_received():
    with pytest.raises(ValueError, match="units=0"):
        CaptionDecoder(VOCAB, units=0)
    with pytest.raises(ValueError, match="dropout=1.5"):
        CaptionDecoder(VOCAB, dropout=1.5)
    with pytest.raises(ValueError, match="attention_query='next'"):
        CaptionDecoder(VOCAB, attention_query="next")
    with pytest.raises(ValueError, match="attention_score='dot'"):
        CaptionDecoder(VOCAB, attention_score="dot")
    with pytest.raises(ValueError, match="needs attention_query='current'"):
        CaptionDecoder(VOCAB, sentinel=True)
    with pytest.raises(ValueError, match=r"features_shape=\(None, 5\)"):
        CaptionDecoder(VOCAB).build((None, 5))
