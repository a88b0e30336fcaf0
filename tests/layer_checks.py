"""The gauntlet every zoo layer goes through: config, symbolic and eager calls, fit, .keras."""

from __future__ import annotations

import keras
import numpy as np


def attention_model(
    layer: keras.layers.Layer, query_dim: int, key_dim: int, keys: int
) -> keras.Model:
    query = keras.Input((None, query_dim), name="query")
    value = keras.Input((keys, key_dim), name="value")
    mask = keras.Input((keys,), dtype="bool", name="mask")
    context, weights = layer(query=query, value=value, mask=mask, return_attention_scores=True)
    return keras.Model([query, value, mask], [context, weights])


def run_attention_layer_checks(layer_factory, tmp_path, query_dim=6, key_dim=6, keys=5) -> None:
    """Config round trip, symbolic + eager call, one fit step, `.keras` save/reload equal."""
    rng = np.random.default_rng(0)
    layer = layer_factory()
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()

    model = attention_model(layer, query_dim, key_dim, keys)
    query = rng.normal(size=(3, 4, query_dim)).astype("float32")
    value = rng.normal(size=(3, keys, key_dim)).astype("float32")
    mask = np.ones((3, keys), dtype=bool)
    mask[1, 3:] = False
    context, weights = model.predict([query, value, mask], verbose=0)
    assert context.shape == (3, 4, key_dim) and weights.shape == (3, 4, keys)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    assert np.all(weights[1, :, 3:] == 0.0)

    model.compile(optimizer="sgd", loss=["mse", None])
    before = [w.numpy().copy() for w in layer.trainable_weights]
    model.fit([query, value, mask], [np.ones_like(context), weights], epochs=1, verbose=0)
    changed = [
        not np.allclose(b, w.numpy()) for b, w in zip(before, layer.trainable_weights, strict=True)
    ]
    assert all(changed), "every weight of the layer should get a gradient"

    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    for a, b in zip(
        model.predict([query, value, mask], verbose=0),
        reloaded.predict([query, value, mask], verbose=0),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def masked_softmax_reference(scores: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if mask is not None:
        scores = np.where(mask[:, None, :], scores, -np.inf)
    scores = scores - scores.max(-1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(-1, keepdims=True)
