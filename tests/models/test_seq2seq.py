import keras
import numpy as np
import pytest

from zoo.models import MaskedAccuracy, MaskedSparseCrossentropy, Seq2Seq

VARIANTS = [
    ("gru", "luong", "additive"),
    ("lstm", "luong", "general"),
    ("gru", "bahdanau", "additive"),
    ("lstm", "bahdanau", "concat"),
    ("gru", "bahdanau", "none"),
    ("gru", "luong", "none"),
]


POINTER = 5  # a target token that moves the decoder's word pointer (the parser's XX)


def _model(cell, style, kind, layers=1, pointer=False, reversed_source=True):
    decoder = {"cell": cell, "units": 12, "style": style, "layers": layers}
    if pointer:
        decoder.update(pointer_token=POINTER, pointer_reversed=reversed_source)
    model = Seq2Seq(
        20,
        24,
        embedding_dim=8,
        encoder={"cell": cell, "units": 6, "layers": layers},
        decoder=decoder,
        attention={"kind": kind, "units": 5},
    )
    model.build()
    return model


def _batch(rng, batch=3, source_len=7, target_len=5):
    source = rng.integers(4, 20, (batch, source_len)).astype("int32")
    source[0, 4:] = 0  # padding
    target_in = rng.integers(4, 24, (batch, target_len)).astype("int32")
    return source, target_in


POINTER_VARIANTS = [
    ("gru", "bahdanau", "additive", True),
    ("lstm", "luong", "general", True),
    ("gru", "bahdanau", "none", True),
]


@pytest.mark.parametrize(
    "cell,style,kind,pointer", [(*v, False) for v in VARIANTS] + POINTER_VARIANTS
)
def test_step_function_reproduces_teacher_forced_scan(cell, style, kind, pointer):
    rng = np.random.default_rng(0)
    model = _model(cell, style, kind, layers=2 if cell == "lstm" else 1, pointer=pointer)
    source, target_in = _batch(rng)
    if pointer:
        target_in[:, 1:4] = POINTER  # the pointer moves during the sequence
    logits, attention = model.forward_with_attention(source, target_in)
    memory = model.encode(source)
    state = model.initial_state(memory)
    for t in range(target_in.shape[1]):
        step_logits, state, step_attention = model.step(target_in[:, t], state, memory)
        np.testing.assert_allclose(step_logits, logits[:, t], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(step_attention, attention[:, t], rtol=1e-4, atol=1e-6)
    attention = np.asarray(attention)
    if kind == "none":
        assert np.all(attention == 0.0)
    else:
        np.testing.assert_allclose(attention.sum(-1), 1.0, rtol=1e-5)
        assert np.all(attention[0, :, 4:] == 0.0), "padding must get no attention"


def test_padding_does_not_change_the_result():
    rng = np.random.default_rng(1)
    model = _model("gru", "luong", "additive")
    source, target_in = _batch(rng)
    source = source[:1, :4]
    padded = np.concatenate([source, np.zeros((1, 5), "int32")], 1)
    a = model({"source": source, "target_in": target_in[:1]})
    b = model({"source": padded, "target_in": target_in[:1]})
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_keras_file_round_trip_keeps_weights(tmp_path):
    rng = np.random.default_rng(2)
    model = _model("lstm", "luong", "additive")
    model.compile(optimizer="adam", loss=MaskedSparseCrossentropy(), metrics=[MaskedAccuracy()])
    source, target_in = _batch(rng)
    model.fit({"source": source, "target_in": target_in}, target_in, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded, Seq2Seq)
    inputs = {"source": source, "target_in": target_in}
    np.testing.assert_allclose(model(inputs), reloaded(inputs), rtol=1e-5, atol=1e-6)
    assert reloaded.get_config() == model.get_config()


def test_masked_loss_ignores_padding_and_averages_over_real_tokens():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 4, 6)).astype("float32")
    labels = np.array([[1, 2, 0, 0], [3, 4, 5, 1]])
    loss = float(MaskedSparseCrossentropy()(labels, logits))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = [-log_probs[b, t, labels[b, t]] for b in range(2) for t in range(4) if labels[b, t]]
    np.testing.assert_allclose(loss, np.mean(picked), rtol=1e-5)
    changed = logits.copy()
    changed[0, 2:] = 100.0  # padding positions: any value
    np.testing.assert_allclose(float(MaskedSparseCrossentropy()(labels, changed)), loss, rtol=1e-6)


def test_fit_learns_to_copy_reversed_sequences():
    rng = np.random.default_rng(4)
    n, length = 512, 5
    source = rng.integers(4, 12, (n, length)).astype("int32")
    target = source[:, ::-1]
    target_in = np.concatenate([np.full((n, 1), 2, "int32"), target[:, :-1]], 1)
    model = Seq2Seq(
        12,
        12,
        embedding_dim=16,
        encoder={"units": 24},
        decoder={"units": 32},
        attention={"kind": "additive", "units": 16},
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=MaskedSparseCrossentropy(),
        metrics=[MaskedAccuracy()],
    )
    history = model.fit(
        {"source": source, "target_in": target_in}, target, epochs=12, batch_size=32, verbose=0
    )
    assert history.history["accuracy"][-1] > 0.95, history.history["accuracy"]


def test_dropout_trains_across_traces():
    rng = np.random.default_rng(5)
    model = Seq2Seq(
        20,
        24,
        embedding_dim=8,
        encoder={"units": 6, "dropout": 0.3},
        decoder={"units": 12, "dropout": 0.3},
    )
    model.compile(optimizer="adam", loss=MaskedSparseCrossentropy())
    for length in (5, 7):  # two shapes: two traces
        source, target_in = _batch(rng, target_len=length)
        model.fit({"source": source, "target_in": target_in}, target_in, epochs=1, verbose=0)


@pytest.mark.parametrize("style", ["luong", "bahdanau"])
def test_layernorm_output_steps_like_the_scan_and_round_trips(style, tmp_path):
    model = Seq2Seq(
        20,
        24,
        embedding_dim=8,
        encoder={"units": 6},
        decoder={"units": 12, "style": style, "output": "layernorm"},
        attention={"kind": "additive", "units": 5},
    )
    model.build()
    assert model.decoder.output_norm is not None
    assert model.decoder.output_dense.activation.__name__ == "linear"
    source, target_in = _batch(np.random.default_rng(4))
    logits, _ = model.forward_with_attention(source, target_in)
    memory = model.encode(source)
    state = model.initial_state(memory)
    for t in range(target_in.shape[1]):
        step_logits, state, _ = model.step(target_in[:, t], state, memory)
        np.testing.assert_allclose(step_logits, logits[:, t], rtol=1e-4, atol=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.decoder.output_kind == "layernorm"
    inputs = {"source": source, "target_in": target_in}
    np.testing.assert_allclose(model(inputs), reloaded(inputs), rtol=1e-5, atol=1e-6)


def test_an_unknown_output_is_refused():
    from zoo.models.attention_decoder import AttentionDecoder

    with pytest.raises(ValueError, match="`output` must be one of"):
        AttentionDecoder(10, output="relu")


@pytest.mark.parametrize("reversed_source", [True, False])
def test_pointer_reads_each_word_in_turn_then_rests_on_end(reversed_source):
    model = _model("gru", "bahdanau", "additive", pointer=True, reversed_source=reversed_source)
    decoder = model.decoder
    # Row 0: 3 words then [END] (id 3) and padding; row 1: 1 word then [END].
    source = np.array([[11, 12, 13, 3, 0], [14, 3, 0, 0, 0]], "int32")
    memory = model.encode(source)
    values = np.asarray(memory["values"])
    read = np.array([[0, 1, 2, 3, 9], [0, 1, 2, 2, 2]], "int32")
    pointed = np.asarray(decoder._pointed(read, memory))
    order = [2, 1, 0] if reversed_source else [0, 1, 2]  # where word 1, 2, 3 sit
    np.testing.assert_allclose(pointed[0, :3], values[0, order], rtol=1e-6)
    np.testing.assert_allclose(pointed[0, 3:], values[0, [3, 3]], rtol=1e-6)  # [END]
    np.testing.assert_allclose(pointed[1, 0], values[1, 0], rtol=1e-6)
    np.testing.assert_allclose(pointed[1, 1:], values[1, [1, 1, 1, 1]], rtol=1e-6)
    # The decoding state counts the pointer tokens fed back.
    state = model.initial_state(memory)
    for token in (2, POINTER, 7, POINTER):
        _, state, _ = model.step(np.array([token, token], "int32"), state, memory)
    assert np.asarray(state[2]).tolist() == [2, 2]


def test_the_pointer_moves_only_on_its_token():
    """Same weights, same inputs: a decoder whose pointer token never occurs stays on word 1."""
    rng = np.random.default_rng(3)
    model = _model("gru", "bahdanau", "additive", pointer=True)
    still = Seq2Seq.from_config(
        {**model.get_config(), "decoder": {**model.decoder_config, "pointer_token": 23}}
    )
    still.build()
    still.set_weights(model.get_weights())
    source, target_in = _batch(rng)
    target_in[target_in == 23] = 22
    target_in[:, :2] = 7  # no XX in the first two steps: both read word 1
    target_in[:, 2] = POINTER
    moved = np.asarray(model({"source": source, "target_in": target_in}))
    stayed = np.asarray(still({"source": source, "target_in": target_in}))
    np.testing.assert_allclose(moved[:, :2], stayed[:, :2], rtol=1e-5, atol=1e-6)
    assert np.abs(moved[:, 2] - stayed[:, 2]).max() > 1e-4  # step 2 reads word 2


def test_pointer_survives_keras_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    model = _model("lstm", "luong", "general", pointer=True, reversed_source=False)
    source, target_in = _batch(rng)
    target_in[:, 2] = POINTER
    expected = np.asarray(model({"source": source, "target_in": target_in}))
    model.save(tmp_path / "pointer.keras")
    loaded = keras.saving.load_model(tmp_path / "pointer.keras")
    assert loaded.decoder.pointer_token == POINTER and not loaded.decoder.pointer_reversed
    np.testing.assert_allclose(
        np.asarray(loaded({"source": source, "target_in": target_in})), expected, rtol=1e-5
    )


def test_pointer_token_must_be_a_plain_token_of_the_vocabulary():
    from zoo.models.attention_decoder import AttentionDecoder

    with pytest.raises(ValueError, match="pointer_token=24"):
        AttentionDecoder(24, pointer_token=24)
    with pytest.raises(ValueError, match=r"\[PAD\].*pointer_token=0"):
        AttentionDecoder(24, pointer_token=0)  # padding would move it


@pytest.mark.parametrize(
    "cell,layers,pointer,output,target_vocab",
    [
        ("lstm", 1, True, "layernorm", 24),  # the treebank parser's wiring
        ("lstm", 2, False, "tanh", 24),
        ("gru", 1, True, "tanh", 24),
        ("gru", 2, True, "layernorm", 1500),  # embeddings projected at each step
    ],
)
def test_decoding_step_with_precomputed_projections_matches_step(
    cell, layers, pointer, output, target_vocab
):
    """The tables of `decoding_step` change where the arithmetic happens, not the result."""
    decoder = {"cell": cell, "units": 12, "style": "bahdanau", "layers": layers, "output": output}
    if pointer:
        decoder.update(pointer_token=POINTER, pointer_reversed=True)
    model = Seq2Seq(
        20,
        target_vocab,
        embedding_dim=8,
        encoder={"cell": cell, "units": 6, "layers": 1},
        decoder=decoder,
        attention={"kind": "additive", "units": 5},
    )
    model.build()
    rng = np.random.default_rng(7)
    for weight in model.decoder.weights:  # biases away from zero, so that folding them matters
        weight.assign(weight + rng.normal(0, 0.3, weight.shape).astype("float32"))
    source, target_in = _batch(rng, target_len=6)
    target_in[:, 1:5:2] = POINTER
    memory = model.encode(source)
    fast_step, fast_memory = model.decoding_step(memory)
    assert fast_step != model.decoder.step
    assert fast_memory["context_table"].shape == (3, 7, (4 if cell == "lstm" else 3) * 12 + 12)
    assert ("pointer_table" in fast_memory) == pointer
    state = fast_state = model.initial_state(memory)
    for t in range(target_in.shape[1]):
        logits, state, attention = model.step(target_in[:, t], state, memory)
        fast_logits, fast_state, fast_attention = fast_step(
            target_in[:, t], fast_state, fast_memory
        )
        np.testing.assert_allclose(fast_logits, logits, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(fast_attention, attention, rtol=1e-5, atol=1e-6)
        for fast, plain in zip(
            keras.tree.flatten(fast_state), keras.tree.flatten(state), strict=True
        ):
            np.testing.assert_allclose(fast, plain, rtol=1e-4, atol=1e-5)


def test_luong_decoding_keeps_the_plain_step():
    model = _model("gru", "luong", "additive")
    memory = model.encode(_batch(np.random.default_rng(0))[0])
    step, same = model.decoding_step(memory)
    assert step == model.decoder.step and same is memory


def test_a_search_with_the_projected_step_writes_what_the_plain_step_writes():
    import tensorflow as tf

    from zoo.samplers import search

    decoder = {"cell": "lstm", "units": 12, "style": "bahdanau", "pointer_token": POINTER}
    model = Seq2Seq(
        20,
        24,
        embedding_dim=8,
        encoder={"cell": "lstm", "units": 6},
        decoder={**decoder, "pointer_reversed": True},
        attention={"kind": "additive", "units": 5},
    )
    model.build()

    def decode(precompute):
        # One row, a source width known only when it runs (as the parser pads sources).
        @tf.function(autograph=False, input_signature=[tf.TensorSpec((1, None), tf.int32)])
        def run(source):
            memory = model.encode(source)
            state = model.initial_state(memory)
            step, memory = model.decoding_step(memory) if precompute else (model.step, memory)
            return search(
                step, state, memory, beam_size=1, batch_size=1, start_id=2, end_id=3, max_length=9
            )

        return run(tf.constant([[11, 12, 3]]))

    fast, plain = decode(True), decode(False)
    np.testing.assert_array_equal(fast["tokens"], plain["tokens"])
