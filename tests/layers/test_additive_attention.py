import keras
import numpy as np
import pytest

from tests.layer_checks import masked_softmax_reference, run_attention_layer_checks
from zoo.layers import AdditiveAttention


def _reference(layer, query, value, mask):
    w = layer.query_dense.kernel.numpy()
    u, b = layer.key_dense.kernel.numpy(), layer.key_dense.bias.numpy()
    v = layer.v.numpy()
    if layer.normalize:
        v = layer.g.numpy() * v / np.linalg.norm(v)
    hidden = np.tanh((query @ w)[:, :, None, :] + (value @ u + b)[:, None, :, :])
    weights = masked_softmax_reference(hidden @ v, mask)
    return weights @ value, weights


@pytest.mark.parametrize("normalize", [False, True])
def test_matches_numpy_reference(normalize):
    rng = np.random.default_rng(1)
    query = rng.normal(size=(2, 3, 4)).astype("float32")
    value = rng.normal(size=(2, 6, 5)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)
    layer = AdditiveAttention(units=7, normalize=normalize)
    context, weights = layer(query=query, value=value, mask=mask, return_attention_scores=True)
    ref_context, ref_weights = _reference(layer, query, value, mask)
    np.testing.assert_allclose(weights, ref_weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(context, ref_context, rtol=1e-5, atol=1e-6)


def test_masked_keys_get_exactly_zero_weight_and_all_masked_gives_zeros():
    rng = np.random.default_rng(2)
    layer = AdditiveAttention(units=4)
    value = rng.normal(size=(2, 5, 3)).astype("float32") * 100.0
    mask = np.array([[0, 1, 0, 1, 0], [0, 0, 0, 0, 0]], dtype=bool)
    context, weights = layer(
        query=rng.normal(size=(2, 3)), value=value, mask=mask, return_attention_scores=True
    )
    weights = np.asarray(weights)
    assert weights.shape == (2, 5)
    assert np.all(weights[0, [0, 2, 4]] == 0.0)
    np.testing.assert_allclose(weights[0].sum(), 1.0, rtol=1e-6)
    assert np.all(weights[1] == 0.0) and np.all(np.asarray(context)[1] == 0.0)


def test_single_query_equals_one_step_of_a_sequence():
    rng = np.random.default_rng(3)
    layer = AdditiveAttention(units=4)
    query = rng.normal(size=(2, 1, 3)).astype("float32")
    value = rng.normal(size=(2, 5, 3)).astype("float32")
    np.testing.assert_allclose(
        layer(query=query[:, 0], value=value), layer(query=query, value=value)[:, 0], rtol=1e-6
    )


def test_prepare_then_attend_equals_call():
    rng = np.random.default_rng(4)
    layer = AdditiveAttention(units=4)
    query = rng.normal(size=(2, 3)).astype("float32")
    value = rng.normal(size=(2, 5, 3)).astype("float32")
    expected = layer(query=query, value=value)
    context, _ = layer.attend(query, layer.prepare(value), value)
    np.testing.assert_allclose(context, expected, rtol=1e-6)


def test_mixed_precision_keeps_masked_weights_zero():
    layer = AdditiveAttention(units=4, dtype="mixed_bfloat16")
    mask = np.array([[1, 1, 0]], dtype=bool)
    _, weights = layer(
        query=np.ones((1, 2), "float32"),
        value=np.ones((1, 3, 2), "float32"),
        mask=mask,
        return_attention_scores=True,
    )
    assert keras.backend.standardize_dtype(weights.dtype) == "bfloat16"
    assert float(weights[0, 2]) == 0.0


def test_layer_checks(tmp_path):
    run_attention_layer_checks(
        lambda: AdditiveAttention(units=8, normalize=True, dropout=0.1), tmp_path
    )


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="units=0"):
        AdditiveAttention(units=0)
    with pytest.raises(ValueError, match="dropout=1.5"):
        AdditiveAttention(units=3, dropout=1.5)


def test_registered_for_keras_deserialization():
    config = keras.saving.serialize_keras_object(AdditiveAttention(units=3))
    assert isinstance(keras.saving.deserialize_keras_object(config), AdditiveAttention)
