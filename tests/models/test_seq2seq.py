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


def _model(cell, style, kind, layers=1):
    model = Seq2Seq(
        20,
        24,
        embedding_dim=8,
        encoder={"cell": cell, "units": 6, "layers": layers},
        decoder={"cell": cell, "units": 12, "style": style, "layers": layers},
        attention={"kind": kind, "units": 5},
    )
    model.build()
    return model


def _batch(rng, batch=3, source_len=7, target_len=5):
    source = rng.integers(4, 20, (batch, source_len)).astype("int32")
    source[0, 4:] = 0  # padding
    target_in = rng.integers(4, 24, (batch, target_len)).astype("int32")
    return source, target_in


@pytest.mark.parametrize("cell,style,kind", VARIANTS)
def test_step_function_reproduces_teacher_forced_scan(cell, style, kind):
    rng = np.random.default_rng(0)
    model = _model(cell, style, kind, layers=2 if cell == "lstm" else 1)
    source, target_in = _batch(rng)
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
