import numpy as np
import pytest

from tests.layer_checks import masked_softmax_reference, run_attention_layer_checks
from zoo.layers import MultiplicativeAttention


def _scores(layer, query, value):
    if layer.score_mode == "dot":
        scores = query @ value.transpose(0, 2, 1)
    elif layer.score_mode == "general":
        scores = query @ (value @ layer.key_dense.kernel.numpy()).transpose(0, 2, 1)
    else:
        hq = query @ layer.query_dense.kernel.numpy()
        hk = value @ layer.key_dense.kernel.numpy() + layer.key_dense.bias.numpy()
        scores = np.tanh(hq[:, :, None, :] + hk[:, None, :, :]) @ layer.v.numpy()
    if layer.scale:
        scores = scores * layer.scale_weight.numpy()
    return scores


@pytest.mark.parametrize("score_mode", ["dot", "general", "concat"])
@pytest.mark.parametrize("scale", [False, True])
def test_matches_numpy_reference(score_mode, scale):
    rng = np.random.default_rng(5)
    query = rng.normal(size=(2, 3, 4)).astype("float32")
    value = rng.normal(size=(2, 6, 4 if score_mode == "dot" else 5)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)
    layer = MultiplicativeAttention(score_mode, units=7, scale=scale)
    context, weights = layer(query=query, value=value, mask=mask, return_attention_scores=True)
    if scale:  # move the scale off 1.0 so the test sees it
        layer.scale_weight.assign(2.5)
        context, weights = layer(query=query, value=value, mask=mask, return_attention_scores=True)
    ref_weights = masked_softmax_reference(_scores(layer, query, value), mask)
    np.testing.assert_allclose(weights, ref_weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(context, ref_weights @ value, rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(weights)[0, :, 3:] == 0.0)


@pytest.mark.parametrize("score_mode", ["dot", "general", "concat"])
def test_layer_checks(score_mode, tmp_path):
    run_attention_layer_checks(
        lambda: MultiplicativeAttention(score_mode, units=4, scale=True), tmp_path
    )


def test_dot_with_mismatched_sizes_names_both_sizes():
    layer = MultiplicativeAttention("dot")
    with pytest.raises(ValueError, match="query size 4, key size 5"):
        layer(query=np.zeros((1, 4), "float32"), value=np.zeros((1, 3, 5), "float32"))


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="score_mode='cosine'"):
        MultiplicativeAttention("cosine")
    with pytest.raises(ValueError, match="units=None"):
        MultiplicativeAttention("concat")
