"""Encoders, decoders and task models (keras and keras.ops only)."""

from zoo.models.attention_decoder import AttentionDecoder
from zoo.models.caption_decoder import CaptionDecoder
from zoo.models.captioner import Captioner, doubly_stochastic_penalty
from zoo.models.cnn_encoder import CNNEncoder
from zoo.models.learning_rate_multipliers import LearningRateMultipliers
from zoo.models.rnn_encoder import RNNEncoder
from zoo.models.seq2seq import MaskedAccuracy, MaskedSparseCrossentropy, Seq2Seq

__all__ = [
    "AttentionDecoder",
    "CaptionDecoder",
    "Captioner",
    "CNNEncoder",
    "LearningRateMultipliers",
    "MaskedAccuracy",
    "MaskedSparseCrossentropy",
    "RNNEncoder",
    "Seq2Seq",
    "doubly_stochastic_penalty",
]
