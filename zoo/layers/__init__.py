"""Reusable attention layers: `keras.ops` only, so they run on any Keras backend."""

from zoo.layers.additive_attention import AdditiveAttention
from zoo.layers.attention import Attention
from zoo.layers.multiplicative_attention import MultiplicativeAttention

__all__ = ["Attention", "AdditiveAttention", "MultiplicativeAttention", "attention_from_config"]

ATTENTION_KINDS = ("additive", "dot", "general", "concat", "none")


def attention_from_config(
    kind: str, units: int = 256, normalize: bool = False, scale: bool = False, **kwargs
):
    """Builds the attention layer a recipe names; `"none"` gives `None` (no attention)."""
    if kind == "none":
        return None
    if kind == "additive":
        return AdditiveAttention(units=units, normalize=normalize, **kwargs)
    if kind in ("dot", "general", "concat"):
        return MultiplicativeAttention(kind, units=units, scale=scale, **kwargs)
    raise ValueError(
        f"Unknown attention kind. Expected one of {ATTENTION_KINDS}. Received: kind={kind!r}"
    )
