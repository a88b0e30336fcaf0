import json

import keras
import numpy as np
import pytest
from keras import ops

from zoo.models import MaskedAccuracy, MaskedSparseCrossentropy
from zoo.models.captioner import Captioner, coverage_loss, doubly_stochastic_penalty
from zoo.samplers import beam_search, greedy_search

VOCAB, SIZE, DEPTH = 13, 8, 6
LOCATIONS = (SIZE // 2) ** 2
START, END = 2, 3


@keras.saving.register_keras_serializable(package="zoo_tests")
class TinyEncoder(keras.layers.Layer):
    """Stand-in for CNNEncoder: one strided conv, cells flattened to (batch_size, L, D)."""

    def __init__(self, depth: int = DEPTH, **kwargs):
        super().__init__(**kwargs)
        self.depth = depth
        self.conv = keras.layers.Conv2D(depth, 3, strides=2, padding="same", name="conv")

    def build(self, images_shape):
        self.conv.build(images_shape)
        self.built = True

    def call(self, images):
        x = self.conv(images)
        return ops.reshape(x, (ops.shape(x)[0], -1, self.depth))

    def get_config(self):
        return {**super().get_config(), "depth": self.depth}


def _model(encoder="tiny", doubly_stochastic=1.0, **kwargs):
    kwargs = {"embedding_dim": 8, "units": 12, "attention_units": 5, **kwargs}
    encoder = TinyEncoder() if encoder == "tiny" else encoder
    return Captioner(encoder, VOCAB, doubly_stochastic=doubly_stochastic, **kwargs)


def _batch(rng, batch=3, length=5):
    """Captions as `zoo.data.seq2seq_dataset` builds them: sliced, then padded."""
    images = rng.uniform(0, 1, (batch, SIZE, SIZE, 3)).astype("float32")
    caption_in = np.zeros((batch, length), "int32")
    caption_out = np.zeros((batch, length), "int32")
    for b in range(batch):
        words = rng.integers(4, VOCAB, 2 if b == 0 else length - 1).tolist()
        tokens = [START, *words, END]
        caption_in[b, : len(tokens) - 1] = tokens[:-1]
        caption_out[b, : len(tokens) - 1] = tokens[1:]
    return images, caption_in, caption_out


def _penalty_by_hand(alpha, mask, weight):
    total = 0.0
    for b in range(alpha.shape[0]):
        if not mask[b].any():
            continue
        for i in range(alpha.shape[2]):
            covered = sum(alpha[b, t, i] for t in range(alpha.shape[1]) if mask[b, t])
            total += (1.0 - covered) ** 2
    return weight * total / max(mask.sum(), 1)


def _hand_attention():
    """Attention `(2 images, 3 steps, 3 locations)` and its mask (image 0's step 2 is padding)."""
    alpha = np.array(
        [
            [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.9, 0.1, 0.0]],
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        ],
        "float32",
    )
    return alpha, np.array([[1, 1, 0], [1, 1, 1]], bool)


def test_doubly_stochastic_penalty_matches_a_hand_computation():
    alpha, mask = _hand_attention()
    # Image 0 over its 2 real steps: coverage (0.7, 0.8, 0.5) -> 0.09 + 0.04 + 0.25.
    # Image 1: coverage exactly 1 everywhere -> 0. Divided by the 5 real steps.
    expected = 0.5 * (0.09 + 0.04 + 0.25) / 5
    got = float(doubly_stochastic_penalty(alpha, mask, 0.5))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(got, _penalty_by_hand(alpha, mask, 0.5), rtol=1e-5)
    every_step = np.ones_like(mask)
    np.testing.assert_allclose(
        float(doubly_stochastic_penalty(alpha, None, 2.0)),
        _penalty_by_hand(alpha, every_step, 2.0),
        rtol=1e-5,
    )


def test_padding_steps_do_not_count_in_the_penalty():
    rng = np.random.default_rng(0)
    alpha = rng.dirichlet(np.ones(4), size=(3, 5)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
    base = float(doubly_stochastic_penalty(alpha, mask, 1.0))
    changed = alpha.copy()
    changed[~mask] = rng.dirichlet(np.ones(4), size=int((~mask).sum()))
    np.testing.assert_allclose(float(doubly_stochastic_penalty(changed, mask, 1.0)), base)
    # The all-padding row adds nothing: same value as the batch without it.
    without = float(doubly_stochastic_penalty(alpha[:2], mask[:2], 1.0))
    np.testing.assert_allclose(base, without, rtol=1e-6)
    np.testing.assert_allclose(base, _penalty_by_hand(alpha, mask, 1.0), rtol=1e-5)


def test_training_call_adds_the_penalty_of_the_models_own_attention():
    rng = np.random.default_rng(1)
    model = _model(doubly_stochastic=0.7)
    images, caption_in, _ = _batch(rng)
    inputs = {"image": images, "caption_in": caption_in}
    model(inputs, training=True)
    assert len(model.losses) == 1
    added = float(model.losses[0])
    _, attention = model.forward_with_attention(inputs)
    attention = np.asarray(attention)
    mask = caption_in != 0
    assert not mask.all(), "the batch must have padding"
    np.testing.assert_allclose(added, _penalty_by_hand(attention, mask, 0.7), rtol=1e-5)
    np.testing.assert_allclose(
        added, float(doubly_stochastic_penalty(attention, mask, 0.7)), rtol=1e-6
    )
    model(inputs)  # inference: no penalty
    assert model.losses == []
    no_penalty = _model(doubly_stochastic=0.0)
    no_penalty(inputs, training=True)
    assert no_penalty.losses == []


def test_with_the_sentinel_the_attention_losses_read_where_not_how_much():
    rng = np.random.default_rng(2)
    model = _model(
        doubly_stochastic=0.7, coverage_loss=0.3, attention_query="current", sentinel=True
    )
    images, caption_in, _ = _batch(rng)
    inputs = {"image": images, "caption_in": caption_in}
    model(inputs, training=True)
    _, attention = model.forward_with_attention(inputs)
    attention = np.asarray(attention)
    totals = attention.sum(-1, keepdims=True)
    assert np.all(totals < 1.0 - 1e-3)  # the sentinel's share
    spatial, mask = attention / totals, caption_in != 0
    penalty, coverage = (float(loss) for loss in model.losses)
    np.testing.assert_allclose(penalty, _penalty_by_hand(spatial, mask, 0.7), rtol=1e-5)
    np.testing.assert_allclose(coverage, float(coverage_loss(spatial, mask, 0.3)), rtol=1e-5)


def test_coverage_loss_matches_a_hand_computation():
    alpha, mask = _hand_attention()
    # Image 0: step 1 against step 0's (0.5, 0.5, 0) -> 0.2 + 0.3 + 0; step 2 is padding.
    # Image 1 looks somewhere new at every step -> 0. Divided by the 5 real steps.
    np.testing.assert_allclose(float(coverage_loss(alpha, mask, 2.0)), 2.0 * 0.5 / 5, rtol=1e-5)
    # Without a mask, image 0's step 2 against (0.7, 0.8, 0.5) -> 0.7 + 0.1 + 0 more.
    np.testing.assert_allclose(float(coverage_loss(alpha, None, 1.0)), (0.5 + 0.8) / 6, rtol=1e-5)
    # The same location at every step pays for every look after the first.
    same = np.zeros((1, 4, 3), "float32")
    same[..., 1] = 1.0
    np.testing.assert_allclose(float(coverage_loss(same, None, 1.0)), 3 / 4, rtol=1e-6)


def test_training_call_adds_the_coverage_loss():
    rng = np.random.default_rng(4)
    model = _model(doubly_stochastic=0.0, coverage_loss=0.5)
    images, caption_in, _ = _batch(rng)
    inputs = {"image": images, "caption_in": caption_in}
    model(inputs, training=True)
    assert len(model.losses) == 1
    _, attention = model.forward_with_attention(inputs)
    expected = float(coverage_loss(np.asarray(attention), caption_in != 0, 0.5))
    assert expected > 0
    np.testing.assert_allclose(float(model.losses[0]), expected, rtol=1e-5)
    assert Captioner.from_config(model.get_config()).coverage_loss == 0.5
    with pytest.raises(ValueError, match="coverage_loss=-1"):
        _model(coverage_loss=-1.0)


@pytest.mark.filterwarnings("ignore:Gradients do not exist")  # no encoder on features
def test_fit_minimises_masked_cross_entropy_plus_penalty_on_images_or_features():
    rng = np.random.default_rng(9)
    model = _model(doubly_stochastic=3.0)
    model.compile(
        optimizer=keras.optimizers.Adam(0.03),
        loss=MaskedSparseCrossentropy(),
        metrics=[MaskedAccuracy()],
    )
    images, caption_in, caption = _batch(rng, batch=4)
    features = model.encoder(images)
    # The model masks with caption_in != 0: the same steps as the target's.
    np.testing.assert_array_equal(caption_in != 0, caption != 0)
    for source in ({"features": features}, {"image": images}):  # one model trains on both
        inputs = {**source, "caption_in": caption_in}
        logits, attention = model.forward_with_attention(inputs)
        cross_entropy = float(MaskedSparseCrossentropy()(caption, logits))
        penalty = float(doubly_stochastic_penalty(attention, caption != 0, 3.0))
        assert penalty > 0.1 * cross_entropy
        # The reported loss is that of the weights before the update.
        loss = model.train_on_batch(inputs, caption, return_dict=True)["loss"]
        np.testing.assert_allclose(loss, cross_entropy + penalty, rtol=1e-5)
    # Memorise the batch (the train function traced above is reused). The
    # penalty has a floor (L > T here), so the cross-entropy is what must fall.
    history = model.fit(inputs, caption, epochs=20, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    logits = model(inputs)
    assert float(MaskedSparseCrossentropy()(caption, logits)) < 0.5 * cross_entropy


def test_images_and_precomputed_features_give_the_same_outputs():
    rng = np.random.default_rng(2)
    model = _model()
    images, caption_in, _ = _batch(rng)
    logits, attention = model.forward_with_attention({"image": images, "caption_in": caption_in})
    assert logits.shape == (3, 5, VOCAB) and logits.dtype == "float32"
    assert attention.shape == (3, 5, LOCATIONS)
    features = model.encoder(images)
    from_features = model({"features": features, "caption_in": caption_in})
    np.testing.assert_allclose(from_features, logits, rtol=1e-5, atol=1e-6)
    for source in (images, features, {"image": images}, {"features": features}):
        memory = model.encode(source)
        np.testing.assert_allclose(memory["values"], features, rtol=1e-6)


@pytest.mark.parametrize("query", ["previous", "current"])
def test_step_reproduces_the_teacher_forced_call(query):
    rng = np.random.default_rng(3)
    model = _model(gate=False, output_previous_word=False, attention_query=query)
    images, caption_in, _ = _batch(rng)
    logits, attention = model.forward_with_attention({"image": images, "caption_in": caption_in})
    memory = model.encode(images)
    state = model.initial_state(memory)
    for t in range(caption_in.shape[1]):
        step_logits, state, step_attention = model.step(caption_in[:, t], state, memory)
        np.testing.assert_allclose(step_logits, logits[:, t], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(step_attention, attention[:, t], rtol=1e-4, atol=1e-6)


def test_keras_file_round_trip_keeps_weights(tmp_path):
    rng = np.random.default_rng(5)
    model = _model(
        dropout=0.1,
        output_activation="tanh",
        doubly_stochastic=0.5,
        attention_query="current",
        sentinel=True,
        attention_score="general",
    )
    model.compile(optimizer="adam", loss=MaskedSparseCrossentropy(), metrics=[MaskedAccuracy()])
    images, caption_in, caption = _batch(rng)
    inputs = {"image": images, "caption_in": caption_in}
    model.fit(inputs, caption, epochs=1, verbose=0)
    path = tmp_path / "captioner.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded, Captioner) and isinstance(reloaded.encoder, TinyEncoder)
    # The reloaded nested encoder config holds lists where the original has tuples.
    assert reloaded.get_config() == json.loads(json.dumps(model.get_config()))
    assert reloaded.decoder.attention_query == "current" and reloaded.decoder.sentinel
    assert reloaded.decoder.attention_score == "general"
    np.testing.assert_allclose(model(inputs), reloaded(inputs), rtol=1e-5, atol=1e-6)
    assert reloaded.optimizer.iterations.numpy() == 1


def test_model_built_from_features_saves_its_encoder_and_decoder(tmp_path):
    rng = np.random.default_rng(6)
    images, caption_in, _ = _batch(rng)
    for encoder in (None, "tiny"):
        model = _model(encoder=encoder, gate=False, output_context=False)
        features = rng.normal(size=(3, LOCATIONS, DEPTH)).astype("float32")
        inputs = {"features": features, "caption_in": caption_in}
        model(inputs)
        path = tmp_path / "features.keras"
        model.save(path)
        reloaded = keras.saving.load_model(path)
        np.testing.assert_allclose(model(inputs), reloaded(inputs), rtol=1e-5, atol=1e-6)
        if encoder is not None:
            np.testing.assert_allclose(
                model.encoder(images), reloaded.encoder(images), rtol=1e-5, atol=1e-6
            )


@pytest.mark.parametrize("sampler", ["greedy", "beam"])
def test_samplers_decode_with_the_models_step(sampler):
    rng = np.random.default_rng(7)
    model = _model()
    images, _, _ = _batch(rng, batch=2)
    memory = model.encode(images)
    state = model.initial_state(memory)
    common = {"batch_size": 2, "start_id": START, "end_id": END, "max_length": 6}
    if sampler == "greedy":
        out = greedy_search(model.step, state, memory, **common)
    else:
        out = beam_search(model.step, state, memory, beam_size=3, length_penalty=0.6, **common)
        assert out["beam_tokens"].shape == (2, 3, 6)
    assert out["tokens"].shape == (2, 6)
    attention = np.asarray(out["attention"])
    assert attention.shape == (2, 6, LOCATIONS)
    lengths = np.asarray(out["lengths"])
    for b in range(2):
        produced = min(lengths[b] + 1, 6)  # the end token's step has attention too
        np.testing.assert_allclose(attention[b, :produced].sum(-1), 1.0, rtol=1e-5)
        assert np.all(attention[b, produced:] == 0.0)


def test_errors_say_what_was_received():
    rng = np.random.default_rng(8)
    images, caption_in, _ = _batch(rng)
    with pytest.raises(ValueError, match="no encoder"):
        _model(encoder=None).encode(images)
    with pytest.raises(ValueError, match=r"shape=\(3, 5\)"):
        _model().encode(caption_in)
    with pytest.raises(ValueError, match="doubly_stochastic=-1"):
        _model(doubly_stochastic=-1)
    with pytest.raises(ValueError, match="depth 6"):
        _model().build({"features": (None, LOCATIONS, 4), "caption_in": (None, None)})
