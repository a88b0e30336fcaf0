"""The recipe sections the sequence-to-sequence tasks (translation, parsing) share."""

from __future__ import annotations

from zoo.config import (
    COUNT,
    Field,
    RecipeError,
    Section,
    increasing,
    rnn_section,
    training_fields,
    validate_no_jit,
)
from zoo.config.schema import _join

SEQ2SEQ_PARTS = ("encoder", "decoder", "attention", "embeddings")
"""The parts of a `Seq2Seq` a fine-tuning can freeze or slow down."""


def _validate_seq2seq_model(model: dict, path: str) -> None:
    encoder, decoder = model["encoder"], model["decoder"]
    if model["attention"]["kind"] == "dot":
        factor = 2 if encoder["bidirectional"] else 1
        size = encoder["units"] * factor
        if size != decoder["units"]:
            how = (
                f"encoder.units {encoder['units']} x 2 directions = {size}"
                if factor == 2
                else f"encoder.units {encoder['units']}"
            )
            raise RecipeError(
                "'dot' attention scores the decoder state against the encoder outputs "
                "directly, so the encoder output size must equal decoder.units; "
                f"got {how} but decoder.units {decoder['units']}. Set "
                f"{_join(path, 'decoder.units')}={size}, change encoder.units, or use "
                "'general' or 'additive' attention",
                key=_join(path, "attention.kind"),
            )


def seq2seq_model_section(*, reverse_source: bool = False, **decoder_extras: Field) -> Section:
    """The `model` section of the sequence-to-sequence tasks (translation, parsing).

    `decoder_extras` are a task's own `model.decoder` settings.
    """
    return Section(
        {
            "embedding_dim": Field(int, 128, check=COUNT),
            "reverse_source": Field(bool, reverse_source, doc="feed the source reversed"),
            "encoder": rnn_section(
                bidirectional=Field(bool, True, doc="BiRNN (Bahdanau et al. 2015)")
            ),
            "attention": {
                "kind": Field(
                    str,
                    "additive",
                    choices=("additive", "dot", "general", "concat", "none"),
                ),
                "units": Field(int, 256, check=COUNT, doc="additive/concat: hidden size"),
                "normalize": Field(bool, False, doc="additive: weight-normalised v"),
                "scale": Field(bool, False, doc="dot/general: learned scale"),
            },
            "decoder": rnn_section(
                style=Field(
                    str,
                    "luong",
                    choices=("luong", "bahdanau"),
                    doc="luong: input feeding; bahdanau: attend before the RNN",
                ),
                output=Field(
                    str,
                    "tanh",
                    choices=("tanh", "layernorm"),
                    doc="the output vector: tanh(W x) as in the papers, or LayerNorm(W x), "
                    "which learns real text several times faster",
                ),
                **decoder_extras,
            ),
        },
        validate=_validate_seq2seq_model,
    )


def precompute_field() -> Field:
    """`decode.precompute`: a Bahdanau decoder's input projections computed once per source."""
    return Field(
        bool,
        False,
        doc="Bahdanau decoders: compute the input projections of the embeddings, the context "
        "and the pointer once per source (AttentionDecoder.decoding_step): about 1.2-1.4x "
        "faster decoding steps in batches of 64, none for single sentences",
    )


def seq2seq_train_section() -> Section:
    """The `train` section of the sequence-to-sequence tasks (translation, parsing)."""
    fields = training_fields()
    fields["batch_tokens"] = Field(
        int,
        None,
        check=COUNT,
        doc="if set, a bucket's batch holds about this many tokens "
        "(more sentences when they are short), never fewer than batch_size sentences",
    )
    fields["bucket_boundaries"] = Field(
        list[int], [8, 12, 16, 20, 25, 30, 40, 50, 60], check=increasing()
    )
    order = ("batch_size", "batch_tokens", "epochs", "max_minutes", "steps_per_epoch", "optimizer")
    order += ("learning_rate", "schedule", "clipnorm", "label_smoothing", "bucket_boundaries")
    order += ("mixed_precision", "jit_compile", "seed", "patience")
    return Section({name: fields[name] for name in order}, validate=validate_no_jit)
